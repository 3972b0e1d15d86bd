"""Files a command generates and the project checks in (Helm values, JSON Schemas): written
only when they changed, or checked for CI."""

from __future__ import annotations

from pathlib import Path

import click

from dataops.cli.context import Context
from dataops.errors import ExitCode


def sync_files(
    ctx: Context, root: Path, files: dict[str, str], check: bool, source: str, fix: str
) -> None:
    """Write each of `files` (path relative to `root` -> text) that differs, saying which;
    with `check`, write nothing and exit 1 naming the stale ones (made from `source`; `fix` is
    the command that brings them up to date)."""
    from dataops.project.state import atomic_write

    stale = []
    for relative, text in files.items():
        path = root / relative
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            ctx.console.print(f"[green]ok[/] {relative} is up to date")
        elif check:
            stale.append(relative)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text, 0o644)
            ctx.console.print(f"[green]wrote[/] {relative}")
    if stale:
        click.echo(
            f"error: {', '.join(stale)} differ(s) from what {source} makes; run `{fix}` and "
            "commit the result",
            err=True,
        )
        raise SystemExit(int(ExitCode.FAILED))
