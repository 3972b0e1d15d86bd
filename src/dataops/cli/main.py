"""Entry point: the `dataops` command group, error rendering and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dataops import __version__
from dataops.cli.context import Context
from dataops.errors import DataOpsError, ExitCode

EPILOG = """Exit codes: 0 ok, 1 a check failed, 2 usage or config error,
3 host or platform not ready. Docs: docs/ in the project (`make docs` serves them: CLI
reference, troubleshooting)."""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dataops")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="DATAOPS_CONFIG",
    help="Project file (default: the nearest dataops.yml at or above the cwd).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """DataOps toolkit: Airflow 3 pipelines of containerized tasks, dbt quality gates,
    versioned warehouse migrations, and promotion of images by digest from dev to prod.

    Start with `dataops doctor`, then `dataops up`."""
    ctx.obj = Context(config_path=config_path)


def _register() -> None:
    from dataops.cli import (
        ci,
        data,
        docs,
        doctor,
        helm,
        images,
        init,
        lint,
        migrate,
        platform,
        release,
        run,
        schema,
        validate,
    )

    modules = (
        init,
        doctor,
        platform,
        validate,
        schema,
        lint,
        images,
        run,
        data,
        docs,
        ci,
        migrate,
        release,
        helm,
    )
    for module in modules:
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="dataops", standalone_mode=False)
    except DataOpsError as exc:
        _render_error(exc)
        sys.exit(int(exc.exit_code))
    except click.exceptions.Abort:
        click.echo("Interrupted. Run the command again: it picks up where it stopped.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("\nInterrupted. Run the command again: it picks up where it stopped.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


def _render_error(exc: DataOpsError) -> None:
    click.secho("error: ", fg="red", bold=True, err=True, nl=False)
    click.echo(exc.reason, err=True)
    if exc.instruction:
        click.secho("  fix: ", fg="yellow", err=True, nl=False)
        click.echo(exc.instruction, err=True)
    if exc.log:
        click.secho("  logs: ", fg="cyan", err=True, nl=False)
        click.echo(exc.log, err=True)


if __name__ == "__main__":
    main()
