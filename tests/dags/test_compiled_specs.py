"""Specs compiled into a release's DAG layer: the DAG factory takes a compiled spec without
loading its YAML when the key matches, and anything else (changed bytes, other validating
code, a torn or edited entry, a broken spec) is the YAML path with its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dataops.airflow import spec_cache
from dataops.core import archive, compiled_specs
from dataops.core.pipeline import load_spec
from dataops.errors import ConfigError
from tests.dags.conftest import DAGS, copy_dags, parse
from tests.dags.test_spec_cache import SPEC

# Another team's second spec: a dbt selection of its own, a queue, a tab-separated drop.
SHIPMENTS = """\
pipeline: shipments
description: |
  Parcel shipments from the carrier's nightly drop.
owner: logistics-data
tags: [logistics, carrier]
schedule: "0 4 * * *"
start_date: 2025-01-15
catchup: true
max_active_runs: 3
queue: {dbt: marts}
source:
  type: file_drop
  path: "carrier/{interval_start:%Y%m%d}.tsv"
  delimiter: "\\t"
  null: ""
target:
  table: logistics_raw.shipments
  mode: replace_partition
  partition: [ship_date]
  columns:
    shipment_id: text
    ship_date: date
    weight_g: integer
dbt:
  select: "tag:shipments+"
"""


def project(tmp_path: Path, broken: bool = False) -> Path:
    """A stranger's dags/ folder: two specs and their stubs (and a broken third one)."""
    dags = tmp_path / "dags"
    (dags / "pipelines").mkdir(parents=True)
    specs = {"ledger_entries": SPEC, "shipments": SHIPMENTS}
    if broken:
        specs["returns"] = SPEC.replace("ledger_entries", "returns").replace("merge", "mergee")
    stub = (DAGS / "pipeline_flights.py").read_text()
    for name, text in specs.items():
        (dags / "pipelines" / f"{name}.yml").write_text(text)
        (dags / f"pipeline_{name}.py").write_text(stub.replace("flights", name))
    return dags


def released(dags: Path, dest: Path) -> Path:
    """`dags` packed as `dataops release create` packs it and extracted as the bundle does."""
    return archive.unpack(compiled_specs.pack_dags(dags), dest)


def test_a_compiled_spec_is_the_spec_and_skips_the_yaml(tmp_path: Path, loads: list[Path]) -> None:
    dags = project(tmp_path)
    bundle = released(dags, tmp_path / "bundle")
    assert sorted(p.name for p in (bundle / "pipelines" / ".compiled").iterdir()) == [
        "ledger_entries.json",
        "shipments.json",
    ]
    for name in ("ledger_entries", "shipments"):
        got = spec_cache.load(bundle / "pipelines" / f"{name}.yml")
        assert got == load_spec(dags / "pipelines" / f"{name}.yml")
    assert loads == []  # both from their compiled entries
    assert not (tmp_path / "cache" / spec_cache.SUBDIR).exists()  # and no pickle made
    shipments = spec_cache.load(bundle / "pipelines" / "shipments.yml")
    assert shipments.source.delimiter == "\t" and shipments.queue == {"dbt": "marts"}


def test_every_shipped_spec_round_trips(tmp_path: Path) -> None:
    bundle = released(DAGS, tmp_path / "bundle")
    specs = sorted((DAGS / "pipelines").glob("*.yml"))
    assert len(specs) >= 5
    for path in specs:
        shipped = bundle / "pipelines" / path.name
        assert compiled_specs.load(shipped, shipped.read_bytes()) == load_spec(path)


def test_changed_bytes_or_other_code_are_the_yaml_path(
    tmp_path: Path, loads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = released(project(tmp_path), tmp_path / "bundle")
    path = bundle / "pipelines" / "ledger_entries.yml"
    path.write_text(SPEC.replace("owner: finance-eng", "owner: treasury"))  # edited in place
    assert spec_cache.load(path).owner == "treasury"
    assert loads == [path]
    other = bundle / "pipelines" / "shipments.yml"
    monkeypatch.setattr(compiled_specs, "code_key", lambda: b"another toolkit version")
    assert spec_cache.load(other).owner == "logistics-data"
    assert loads == [path, other]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:70],  # torn inside the JSON
        lambda data: data.split(b"\n")[0],  # the key alone
        lambda data: data.replace(b'"owner":"finance-eng"', b'"owner":"finance-eng","x":1'),
        lambda data: data.replace(b'"pipeline":"ledger_entries"', b'"pipeline":"other"'),
        lambda data: b"",
    ],
    ids=["torn", "no-body", "unknown-field", "other-pipeline", "empty"],
)
def test_a_damaged_entry_is_the_yaml_path(tmp_path: Path, loads: list[Path], damage: Any) -> None:
    bundle = released(project(tmp_path), tmp_path / "bundle")
    path = bundle / "pipelines" / "ledger_entries.yml"
    entry = compiled_specs.entry_of(path)
    damaged = damage(entry.read_bytes())
    assert damaged != entry.read_bytes()
    entry.write_bytes(damaged)
    assert compiled_specs.load(path, path.read_bytes()) is None
    assert spec_cache.load(path) == load_spec(tmp_path / "dags" / "pipelines" / path.name)
    assert loads == [path]


def test_a_broken_spec_has_no_entry_and_its_dag_names_the_line(tmp_path: Path) -> None:
    bundle = released(project(tmp_path, broken=True), tmp_path / "bundle")
    assert not compiled_specs.entry_of(bundle / "pipelines" / "returns.yml").exists()
    result = parse(bundle)
    assert sorted(result["dag_ids"]) == ["ledger_entries", "shipments"]
    (error,) = result["import_errors"].values()
    assert "returns.yml:" in error and "mergee" in error


def test_a_project_may_not_ship_its_own_compiled_folder(tmp_path: Path) -> None:
    dags = project(tmp_path)
    (dags / "pipelines" / ".compiled").mkdir()
    (dags / "pipelines" / ".compiled" / "shipments.json").write_text("{}")
    members = {k: v for k, (v, _) in archive.read_members(dags).items()}
    with pytest.raises(ConfigError, match=r"dags/pipelines/\.compiled/shipments\.json"):
        compiled_specs.compile_members(dags, members)


def test_a_release_parses_to_the_same_dags_as_its_folder(tmp_path: Path) -> None:
    """Airflow's DagBag over the shipped dags/ and over its release: the same DAGs, the release's
    from the compiled specs (an entry planted with another owner, under the right key, shows
    up in its DAG)."""
    folder = copy_dags(tmp_path)
    bundle = released(folder, tmp_path / "bundle")

    def shape(result: dict[str, Any]) -> dict[str, Any]:
        return {k: result[k] for k in ("dag_ids", "import_errors", "dags")}

    plain = parse(folder)
    assert not plain["import_errors"]
    assert shape(parse(bundle)) == shape(plain)
    path = bundle / "pipelines" / "weather.yml"
    raw = path.read_bytes()
    planted = load_spec(path).model_copy(update={"owner": "planted-owner"})
    compiled_specs.entry_of(path).write_bytes(
        compiled_specs.key(path.name, raw).encode() + b"\n" + planted.model_dump_json().encode()
    )
    assert parse(bundle)["dags"]["weather"]["owner"] == "planted-owner"


def test_extra_members_never_replace_the_folders_files(tmp_path: Path) -> None:
    dags = project(tmp_path)
    members = archive.read_members(dags)
    with pytest.raises(ValueError, match=r"pipelines/shipments\.yml"):
        archive.pack_members(members, {"pipelines/shipments.yml": b"pipeline: x\n"})
    assert archive.pack_members(members) == archive.pack(dags)
