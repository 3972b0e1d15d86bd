"""The reproducible tarballs a release carries its DAG code and migrations in."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dataops.core.archive import digest, pack, unpack


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


FILES = {
    "pipeline_orders.py": "from acme.dags import build\n",
    "pipelines/orders.yml": "pipeline: orders\n",
    "pipelines/customers.yml": "pipeline: customers\n",
}


def test_the_same_files_give_the_same_bytes_whatever_their_times_and_order(
    tmp_path: Path,
) -> None:
    first = tree(tmp_path / "a", FILES)
    second = tree(tmp_path / "b", dict(reversed(FILES.items())))
    os.utime(second / "pipelines" / "orders.yml", (1, 1))
    (second / "__pycache__").mkdir()
    (second / "__pycache__" / "pipeline_orders.cpython-311.pyc").write_bytes(b"\0")
    assert pack(first) == pack(second)
    assert digest(pack(first)).startswith("sha256:") and len(digest(b"")) == 71


def test_a_changed_byte_changes_the_digest(tmp_path: Path) -> None:
    folder = tree(tmp_path / "a", FILES)
    before = digest(pack(folder))
    (folder / "pipelines" / "orders.yml").write_text("pipeline: orders \n")
    assert digest(pack(folder)) != before


def test_unpack_gives_back_the_files_and_is_idempotent(tmp_path: Path) -> None:
    data = pack(tree(tmp_path / "src", FILES))
    dest = unpack(data, tmp_path / "out" / "sha256-abc")
    assert {p.relative_to(dest).as_posix(): p.read_text() for p in dest.rglob("*.*")} == FILES
    assert unpack(b"not even gzip", dest) == dest  # already there: nothing is read again
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no scratch left


def pack_truncated(tmp_path: Path) -> bytes:
    data = pack(tree(tmp_path / "src", FILES))
    return data[: len(data) // 2]  # a download cut off halfway


def test_an_interrupted_unpack_leaves_no_half_folder(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "v1"
    with pytest.raises(ValueError, match="not a complete release archive"):
        unpack(pack_truncated(tmp_path), dest)
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_tarball_escaping_its_folder_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../etc/cron.d/evil")
        payload = b"* * * * * root true\n"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(tarfile.OutsideDestinationError):
        unpack(buffer.getvalue(), tmp_path / "out" / "v1")
    assert not (tmp_path / "etc").exists() and not (tmp_path / "out" / "v1").exists()
