"""How long work reports progress: services call a `Report` with one line a step, never print."""

from __future__ import annotations

from collections.abc import Callable

Report = Callable[[str], None]
