"""The data folder shared by the task containers: the file drop and the staged batches."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
# A staged file at least this big is recorded in two parts split at a row boundary, so the load
# can COPY them on two sessions at once (DATAOPS_SPLIT_MIN_BYTES overrides it, e.g. in tests).
SPLIT_MIN_BYTES = 64 * 1024 * 1024


class TaskError(Exception):
    """A task failure with a message for the task log."""


@dataclass(frozen=True)
class Part:
    """A byte range of the staged file that COPY can read on its own: `line` is the file's line
    number (1-based) where it starts; the second part starts on a row (never inside quotes)."""

    offset: int
    bytes: int
    line: int
    sha256: str


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
    # Empty, or two parts that cover the file end to end, the second starting at a row boundary.
    parts: list[Part] = field(default_factory=list)

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise TaskError(
                f"no staged batch at {path.parent}: run the extract task first"
            ) from None
        data["parts"] = [Part(**part) for part in data.get("parts", [])]  # older manifests: none
        return cls(**data)


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


class StagedDigest:
    """The sha256 of a file fed to it chunk by chunk, and (for a file of at least `split_min`
    bytes) of its two parts, split at the first row boundary past the middle.

    A row boundary is a newline outside quotes: PostgreSQL's CSV reader toggles "in quotes" at
    every quote character (a doubled quote toggles twice), so an even count of quotes before a
    newline means the newline ends a row. A file with no such newline past the middle has no
    parts (it is loaded in one stream).
    """

    def __init__(self, size: int, split_min: int | None = None) -> None:
        if split_min is None:
            split_min = int(os.environ.get("DATAOPS_SPLIT_MIN_BYTES", SPLIT_MIN_BYTES))
        self.size = size
        self.whole = hashlib.sha256()
        self._halves = [hashlib.sha256()]
        self._middle = size // 2 if size >= max(split_min, 2) else None
        self._split: tuple[int, int] | None = None  # (offset, line) of the second part
        self.position = 0
        self.newlines = 0
        self._quotes = 0

    def update(self, chunk: bytes) -> None:
        self.whole.update(chunk)
        cut = None
        if (
            self._middle is not None
            and self._split is None
            and self.position + len(chunk) > self._middle
        ):
            cut = self._cut(chunk)
        if cut is None:
            self._halves[-1].update(chunk)
        else:
            self._halves[-1].update(chunk[:cut])
            self._halves.append(hashlib.sha256(chunk[cut:]))
            self._split = (self.position + cut, self.newlines + chunk.count(b"\n", 0, cut) + 1)
        self._quotes += chunk.count(b'"')
        self.newlines += chunk.count(b"\n")
        self.position += len(chunk)

    def _cut(self, chunk: bytes) -> int | None:
        """Where in `chunk` the second part starts (just past a row's newline), if it does."""
        assert self._middle is not None
        start = max(0, self._middle - self.position)
        quotes = self._quotes + chunk.count(b'"', 0, start)
        while (newline := chunk.find(b"\n", start)) != -1:
            quotes += chunk.count(b'"', start, newline)
            if quotes % 2 == 0:
                return newline + 1
            start = newline + 1
        return None

    @property
    def sha256(self) -> str:
        return self.whole.hexdigest()

    def parts(self) -> list[Part]:
        if self._split is None or self._split[0] >= self.position:
            return []
        offset, line = self._split
        return [
            Part(0, offset, 1, self._halves[0].hexdigest()),
            Part(offset, self.position - offset, line, self._halves[1].hexdigest()),
        ]
