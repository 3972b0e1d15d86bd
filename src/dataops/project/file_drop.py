"""An environment's file drop (`incoming/`, the task containers' /data/incoming): deliveries.

`put` copies files into it at the relative paths the pipeline specs' `source.path` names,
atomically (a reader sees the old file or the new one, never half of one) and idempotently (a
file already there with the same bytes is left alone).
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dataops.errors import ConfigError


@dataclass(frozen=True)
class Delivery:
    source: Path
    relative: str  # where it lands in the drop, e.g. reference/airlines.csv


def deliveries(paths: list[Path]) -> list[Delivery]:
    """Each file to deliver: a file lands at its name, a folder's files at their paths under
    the folder (hidden files skipped). Refuses a path that does not exist or holds no file."""
    found: dict[str, Delivery] = {}
    for path in paths:
        if path.is_file():
            items = [(path, path.name)]
        elif path.is_dir():
            items = [
                (p, p.relative_to(path).as_posix())
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            if not items:
                raise ConfigError(f"{path}: the folder holds no file to deliver")
        else:
            raise ConfigError(f"{path}: no such file or folder")
        for source, relative in items:
            earlier = found.get(relative)
            if earlier is not None and earlier.source.resolve() != source.resolve():
                raise ConfigError(
                    f"{source} and {earlier.source} would both land at {relative}: deliver them "
                    "in separate commands or rename one"
                )
            found[relative] = Delivery(source, relative)
    return list(found.values())


def put(items: list[Delivery], drop: Path) -> tuple[int, int]:
    """Copy the deliveries into `drop`; returns (written, unchanged)."""
    written = unchanged = 0
    for item in items:
        target = drop / item.relative
        if target.is_file() and filecmp.cmp(item.source, target, shallow=False):
            unchanged += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.part")
        shutil.copyfile(item.source, part)
        os.chmod(part, 0o644)  # the task containers (uid 10001) read it
        os.replace(part, target)
        written += 1
    return written, unchanged
