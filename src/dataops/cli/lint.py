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
    (too large) or cannot parse is a finding. Exit 1 when there is any finding."""
    from dataops.quality.lint import lint as run_lint

    findings, counts = run_lint(
        ctx.project(), all_files=all_files, base=base, fix=fix, timeout=timeout
    )
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
