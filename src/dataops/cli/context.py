"""What every command shares: the loaded project config and the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console

from dataops.core.config import LoadedConfig, find_config, load_config


@dataclass
class Context:
    config_path: Path | None = None
    console: Console = field(default_factory=lambda: Console(highlight=False))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    _loaded: LoadedConfig | None = None

    def loaded(self) -> LoadedConfig:
        if self._loaded is None:
            self._loaded = load_config(self.config_path or find_config())
        return self._loaded

    def report(self, message: str) -> None:
        """Progress of long work, one line a step (services never print; they call this)."""
        self.err.print(f"[dim]·[/dim] {message}")


pass_context = click.make_pass_decorator(Context)
