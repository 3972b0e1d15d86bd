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
from pathlib import Path

# What never belongs in a release's sources: caches and editor droppings.
SKIP_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".DS_Store"}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pack(folder: Path) -> bytes:
    """The files under `folder` as a gzipped tar with stable bytes (paths relative to it)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in _files(folder):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
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
