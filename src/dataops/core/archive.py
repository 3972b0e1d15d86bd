"""A folder as reproducible bytes (the DAG code and migrations a release carries), and back.

The same files give the same bytes: entries sorted, owners and times zeroed, gzip without a
timestamp. So a release made twice from the same tree has the same id, and a release's id
(its OCI manifest digest) covers the exact DAG code and migrations it ships.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path

# What never belongs in a release's sources: caches and editor droppings.
SKIP_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".DS_Store"}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pack(folder: Path, extra: Mapping[str, bytes] | None = None) -> bytes:
    """The files under `folder` as a gzipped tar with stable bytes (paths relative to it), plus
    `extra` files (path -> bytes, mode 0644) that are not in the folder."""
    return pack_members(read_members(folder), extra)


def read_members(folder: Path) -> dict[str, tuple[bytes, int]]:
    """What `pack` takes from `folder`: each file's relative path -> (bytes, mode)."""
    return {
        path.relative_to(folder).as_posix(): (
            path.read_bytes(),
            0o755 if os.access(path, os.X_OK) else 0o644,
        )
        for path in _files(folder)
    }


def pack_members(
    members: Mapping[str, tuple[bytes, int]], extra: Mapping[str, bytes] | None = None
) -> bytes:
    """`members` (and `extra`, none of whose paths may be among them) as `pack`'s archive."""
    every = dict(members)
    for name, data in (extra or {}).items():
        if name in every:
            raise ValueError(f"{name} is in the folder already")
        every[name] = (data, 0o644)
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(every):
            data, mode = every[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _files(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_NAMES)
        for name in sorted(files):
            if name not in SKIP_NAMES and not name.endswith((".pyc", ".pyo")):
                found.append(Path(root) / name)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def unpack(data: bytes, dest: Path) -> Path:
    """Extract `pack()` bytes into `dest`, atomically: a scratch folder renamed into place, so
    an interrupted extraction never leaves a half folder (a later call starts over)."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                tar.extractall(scratch, filter="data")  # no absolute paths, links or devices
        except (tarfile.ReadError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise ValueError(f"not a complete release archive ({exc})") from None
        try:
            os.rename(scratch, dest)
        except OSError:
            if not dest.exists():  # not a concurrent extraction of the same bytes
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return dest
