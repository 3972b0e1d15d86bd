"""`dataops docs`: the dbt docs site."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context
from dataops.cli.options import env_option


@click.command()
@env_option("Warehouse to document.")
@click.option("--serve", is_flag=True, help="Serve the site on 127.0.0.1 after generating it.")
@click.option("--port", default=8090, show_default=True, help="Port for --serve (not 8080-8082).")
@pass_context
def docs(ctx: Context, env: str, serve: bool, port: int) -> None:
    """Generate the dbt docs site (models, columns, tests, lineage) for an environment.

    Runs `dbt docs generate` against the environment's warehouse (credentials from the
    variables dataops.yml names) into .dataops/dbt-docs/ENV/. Open its index.html, or pass
    --serve to browse it on http://127.0.0.1:PORT."""
    from dataops.quality import dbt_docs as site

    index = site.generate(ctx.environment(env), ctx.report)
    ctx.console.print(f"[green]ok[/] docs site: {index}")
    if serve:
        ctx.console.print(f"serving on http://127.0.0.1:{port} (Ctrl-C to stop)")
        site.serve(index.parent, port)
    else:
        ctx.console.print(
            f"browse it: dataops docs --env {env} --serve   (http://127.0.0.1:{port})"
        )


def register(group: click.Group) -> None:
    group.add_command(docs)
