"""The spec cache of DAG parsing: a spec whose bytes were validated is not loaded again; any
change of its bytes, of the validating code, or a torn or foreign cache is a full load."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from dataops.airflow import spec_cache
from dataops.errors import ConfigError
from tests.dags.conftest import copy_dags, parse

# Another team's spec: its own names, a merge on a composite key, no dbt.
SPEC = """\
pipeline: ledger_entries
description: Ledger entries from the finance export.
owner: finance-eng
tags: [finance]
schedule: "@daily"
start_date: 2024-03-01
source:
  path: exports/ledger/{interval_start:%Y/%m/%d}.csv
target:
  table: finance_raw.ledger_entries
  mode: merge
  key: [entry_id, book]
  columns:
    entry_id: bigint
    book: text
    amount_cents: bigint
"""


def entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / spec_cache.SUBDIR).glob("*.pickle"))


def write(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "pipelines" / "ledger_entries.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_validated_spec_is_not_loaded_again(tmp_path: Path, loads: list[Path]) -> None:
    path = write(tmp_path)
    first = spec_cache.load(path)
    second = spec_cache.load(path)
    assert loads == [path]
    assert second == first
    assert second.target.key == ["entry_id", "book"]
    assert len(entries(tmp_path)) == 1
    assert (tmp_path / "cache" / spec_cache.SUBDIR).stat().st_mode & 0o777 == 0o700


def test_changed_bytes_are_loaded_and_validated_again(tmp_path: Path, loads: list[Path]) -> None:
    path = write(tmp_path)
    spec_cache.load(path)
    write(tmp_path, SPEC.replace("owner: finance-eng", "owner: treasury"))
    assert spec_cache.load(path).owner == "treasury"
    assert len(loads) == 2


def test_a_bad_spec_fails_on_every_parse_and_is_not_kept(tmp_path: Path, loads: list[Path]) -> None:
    path = write(tmp_path, SPEC.replace("mode: merge", "mode: mergee"))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"ledger_entries.yml:\d+:\d+.*mode"):
            spec_cache.load(path)
    assert len(loads) == 2
    assert entries(tmp_path) == []


def test_other_validating_code_is_a_miss(
    tmp_path: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path)
    spec_cache.load(path)
    monkeypatch.setattr(spec_cache, "_code_key", lambda: b"an edited validator")
    spec_cache.load(path)
    assert len(loads) == 2
    assert len(entries(tmp_path)) == 2


def test_a_torn_entry_is_a_miss_and_is_replaced(tmp_path: Path, loads: list[Path]) -> None:
    path = write(tmp_path)
    spec_cache.load(path)
    (entry,) = entries(tmp_path)
    entry.write_bytes(entry.read_bytes()[:40])
    assert spec_cache.load(path).pipeline == "ledger_entries"
    assert spec_cache.load(path).pipeline == "ledger_entries"
    assert len(loads) == 2  # the torn one missed once, its replacement hit


def test_a_folder_others_may_write_is_not_used(tmp_path: Path, loads: list[Path]) -> None:
    path = write(tmp_path)
    spec_cache.load(path)
    folder = tmp_path / "cache" / spec_cache.SUBDIR
    (entry,) = entries(tmp_path)
    folder.chmod(0o777)
    planted = entry.read_bytes()
    for _ in range(2):
        spec_cache.load(path)
    assert len(loads) == 3  # every load validated, the entry (anyone's now) never read
    assert entry.read_bytes() == planted
    folder.chmod(0o700)


def test_a_symlinked_folder_is_not_used(tmp_path: Path, loads: list[Path]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "cache").mkdir()
    os.symlink(elsewhere, tmp_path / "cache" / spec_cache.SUBDIR)
    path = write(tmp_path)
    spec_cache.load(path)
    spec_cache.load(path)
    assert len(loads) == 2
    assert list(elsewhere.iterdir()) == []


def test_dag_folder_parses_the_same_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole folder parsed by Airflow's DagBag twice over one cache folder: the second parse
    makes the same DAGs, and it read them from the cache (an entry planted with another owner
    shows up in its DAG)."""
    folder = copy_dags(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("DATAOPS_CACHE_DIR", str(cache))
    env = {"DATAOPS_CACHE_DIR": str(cache)}
    cold = parse(folder, env)
    kept = sorted(p.name for p in (cache / spec_cache.SUBDIR).glob("*.pickle"))
    assert len(kept) == len(list((folder / "pipelines").glob("*.yml"))) > 1
    warm = parse(folder, env)

    def shape(result: dict[str, Any]) -> dict[str, Any]:
        return {k: result[k] for k in ("dag_ids", "import_errors", "dags")}

    assert shape(warm) == shape(cold)
    assert not cold["import_errors"]
    assert sorted(p.name for p in (cache / spec_cache.SUBDIR).glob("*.pickle")) == kept

    spec_path = folder / "pipelines" / "weather.yml"
    entry = spec_cache.entry_for(spec_path, spec_path.read_bytes())
    assert entry.name in kept
    planted = spec_cache.load(spec_path).model_copy(update={"owner": "planted-owner"})
    entry.write_bytes(pickle.dumps(planted))
    assert parse(folder, env)["dags"]["weather"]["owner"] == "planted-owner"
