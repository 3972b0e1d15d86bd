"""`dataops data put`: deliveries into a file drop (project/file_drop.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataops.errors import ConfigError
from dataops.project.file_drop import deliveries, put


def test_a_folder_lands_at_its_relative_paths_and_a_second_put_changes_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "reference").mkdir(parents=True)
    (data / "customers.csv").write_text("id\n1\n")
    (data / "reference" / "countries.csv").write_text("code\nGB\n")
    (data / ".hidden").write_text("x")
    drop = tmp_path / "drop"
    assert put(deliveries([data]), drop) == (2, 0)
    assert sorted(p.relative_to(drop).as_posix() for p in drop.rglob("*") if p.is_file()) == [
        "customers.csv",
        "reference/countries.csv",
    ]
    assert oct(os.stat(drop / "customers.csv").st_mode & 0o777) == "0o644"
    before = (drop / "customers.csv").stat().st_mtime_ns
    assert put(deliveries([data]), drop) == (0, 2)
    assert (drop / "customers.csv").stat().st_mtime_ns == before
    (data / "customers.csv").write_text("id\n1\n2\n")
    assert put(deliveries([data / "customers.csv"]), drop) == (1, 0)
    assert (drop / "customers.csv").read_text() == "id\n1\n2\n"
    assert not list(drop.rglob(".*.part"))


def test_a_missing_path_an_empty_folder_and_a_clash_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or folder"):
        deliveries([tmp_path / "nope.csv"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no file"):
        deliveries([tmp_path / "empty"])
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.csv").write_text(folder)
    with pytest.raises(ConfigError, match=r"would both land at x\.csv"):
        deliveries([tmp_path / "a", tmp_path / "b"])
