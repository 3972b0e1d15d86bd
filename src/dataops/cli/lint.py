"""`dataops lint`."""

from __future__ import annotations

import json

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import ExitCode


@click.command()
@click.option(
    "--all", "all_files", is_flag=True, help="Lint every file, not only the changed ones."
)
@click.option("--fix", is_flag=True, help="Let sqlfluff fix what it can, then lint again.")
@click.option(
    "--base",
    default="main",
    show_default=True,
    help="Changed files are those since the merge base of this ref and HEAD.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="github: workflow-command annotations for CI.",
)
@click.option("--timeout", default=300, show_default=True, help="Seconds each tool may run.")
@pass_context
def lint(ctx: Context, all_files: bool, fix: bool, base: str, fmt: str, timeout: int) -> None:
    """Lint the dbt models (sqlfluff), the Dockerfiles (hadolint) and the pipeline specs (schema).

    By default only files changed since the merge base with --base (plus uncommitted and
    untracked files); --all for everything. Every finding is printed as
    `file:line:col rule message`. Needs no warehouse and no credentials. A model sqlfluff skips
    (too large) or cannot parse is a finding. Exit 1 when there is any finding, 2 when a tool
    or its config is broken (the tool's own message is shown).

    sqlfluff runs with the dbt project's own .sqlfluff (dbt.sqlfluff_config) and nothing else:
    no config of a parent folder or of the home folder leaks in. Its jinja templater renders
    the project's macros and its packages' (`dbt_utils.star(...)`), so a project that uses
    packages lints as it is."""
    from dataops.quality.lint import lint as run_lint

    findings, counts, notes = run_lint(
        ctx.project(), all_files=all_files, base=base, fix=fix, timeout=timeout
    )
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if fmt == "json":
        click.echo(
            json.dumps({"checked": counts, "findings": [f.to_json() for f in findings]}, indent=2)
        )
    else:
        for finding in findings:
            click.echo(finding.github() if fmt == "github" else finding.text())
    checked = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    scope = "all files" if all_files else f"files changed since {base}"
    summary = f"{len(findings)} finding(s) in {checked} ({scope})"
    if findings:
        click.echo(summary, err=True)
        raise SystemExit(int(ExitCode.FAILED))
    click.echo(f"ok: {summary}", err=True)


def register(group: click.Group) -> None:
    group.add_command(lint)
