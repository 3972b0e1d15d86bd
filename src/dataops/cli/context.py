"""What every command shares: the project (loaded once), its environments, and the console."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from dataops.core.config import LoadedConfig, find_config, load_config

if TYPE_CHECKING:
    from dataops.project.environment import Environment, Project


def _console(stderr: bool = False) -> Console:
    # Logs and CI are not terminals: rich would wrap tables at 80 columns there.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 150
    return Console(stderr=stderr, highlight=False, width=width)


@dataclass
class Context:
    config_path: Path | None = None
    console: Console = field(default_factory=_console)
    err: Console = field(default_factory=lambda: _console(stderr=True))
    _loaded: LoadedConfig | None = None
    _project: Project | None = None

    def loaded(self) -> LoadedConfig:
        if self._loaded is None:
            self._loaded = load_config(self.config_path or find_config())
        return self._loaded

    def project(self) -> Project:
        """The project of this command: dataops.yml, state dir and secrets, made once."""
        if self._project is None:
            from dataops.project.environment import Project

            self._project = Project.of(self.loaded())
        return self._project

    def environment(self, name: str) -> Environment:
        """The environment `name` (--env), resolved once for the whole command."""
        return self.project().environment(name)

    def report(self, message: str) -> None:
        """Progress of long work, one line a step (services never print; they call this)."""
        self.err.print(f"[dim]·[/dim] {message}")


pass_context = click.make_pass_decorator(Context)
