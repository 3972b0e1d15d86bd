"""The data folder shared by the task containers: the file drop and the staged batches."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

CHUNK = 1 << 20


class TaskError(Exception):
    """A task failure with a message for the task log."""


@dataclass(frozen=True)
class Manifest:
    pipeline: str
    interval_start: str
    interval_end: str
    source: str
    columns: list[str]
    rows: int
    bytes: int
    sha256: str

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise TaskError(
                f"no staged batch at {path.parent}: run the extract task first"
            ) from None


def staged_dir(data_dir: Path, pipeline: str, interval_start: datetime) -> Path:
    return data_dir / "staged" / pipeline / interval_start.strftime("%Y%m%dT%H%M%S")


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
