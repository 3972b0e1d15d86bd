"""The dbt step's baked manifests (dataops.task.dbt_manifest), on another team's project: the
manifest loaded for a target, an audit name and a database equals what a full `dbt parse` of
the project makes for them, node by node; a parse-time environment variable whose value
changed makes the step parse instead."""

from __future__ import annotations

import json
import marshal
from pathlib import Path

import pytest

from dataops.clients import dbt
from dataops.task import dbt_manifest, jinja_cache
from tests.integration.test_byo_dbt import acme_copy, prepared

pytestmark = pytest.mark.integration
FIELDS = ("database", "schema", "relation_name")


def relations(data: dict) -> dict[str, tuple]:
    """(database, schema, relation_name) of every node and source."""
    found = {}
    for group in ("nodes", "sources", "unit_tests"):
        for uid, node in data.get(group, {}).items():
            found[uid] = tuple(node.get(f) for f in FIELDS)
    return found


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> tuple[dbt.PreparedProject, Path]:
    tmp = tmp_path_factory.mktemp("baked")
    copy = prepared(tmp, acme_copy(tmp / "acme") / "analytics")
    state = tmp / "dbt_state"
    written = dbt_manifest.bake(copy.path, state)
    assert sorted(p.name for p in written) == [
        "jinja-code.marshal",
        "runtime-dev.msgpack",
        "runtime-production.msgpack",
        "runtime-staging.msgpack",
    ]
    return copy, state


@pytest.mark.parametrize("target", ["dev", "production"])
def test_the_loaded_manifest_is_what_a_full_parse_makes(
    baked: tuple[dbt.PreparedProject, Path],
    target: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy, state = baked
    monkeypatch.setenv("DBT_TARGET", target)  # the profile's target (the dbt step's --target)
    truth = dbt.parse_manifest(
        copy.path, tmp_path / "parsed", tmp_path / "logs", {"dataops_audit": "orders"}
    )
    expected = relations(json.loads(truth.read_text()))
    manifest = dbt_manifest.load(state, target, "orders", "unused")  # parse_manifest's database
    assert manifest is not None
    written = manifest.writable_manifest().to_dict()
    loaded = relations(written)
    assert loaded == expected
    # The graph too: `dbt build` skips the children of a failed test through these maps.
    parsed = json.loads(truth.read_text())
    assert written["child_map"] == parsed["child_map"] and parsed["child_map"]
    assert written["parent_map"] == parsed["parent_map"]
    schemas = {v[1] for k, v in loaded.items() if k.startswith(("model.", "seed.", "snapshot."))}
    assert schemas and all(s.endswith("__audit_orders") for s in schemas)
    # production names the custom schemas verbatim (the team's macro): the targets differ
    if target == "production":
        assert "ref_data__audit_orders" in schemas
    else:
        assert "analytics_ref_data__audit_orders" in schemas
    text = json.dumps(manifest.writable_manifest().to_dict(), default=str)
    assert dbt_manifest.PLACEHOLDER_AUDIT not in text
    assert dbt_manifest.PLACEHOLDER_DATABASE not in text


def test_a_changed_parse_time_variable_or_a_missing_target_means_a_parse(
    baked: tuple[dbt.PreparedProject, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, state = baked
    assert dbt_manifest.load(state, "no_such_target", "orders", "db") is None
    copy = tmp_path / "state"
    copy.mkdir()
    for path in state.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    dbt_manifest.env_file(copy).write_text(json.dumps({"ACME_REGION": "emea"}))
    monkeypatch.setenv("ACME_REGION", "apac")
    assert dbt_manifest.changed_env(copy) == ["ACME_REGION"]
    assert dbt_manifest.load(copy, "dev", "orders", "db") is None
    monkeypatch.setenv("ACME_REGION", "emea")
    assert dbt_manifest.load(copy, "dev", "orders", "db") is not None
    dbt_manifest.env_file(copy).unlink()  # an image whose bake left no record: parse
    assert dbt_manifest.load(copy, "dev", "orders", "db") is None


def test_the_jinja_code_of_every_macro_and_node_is_baked(
    baked: tuple[dbt.PreparedProject, Path],
) -> None:
    """acme's own macros, its packages' and dbt's, and its models' SQL: all compiled at bake,
    each to the code a fresh compile makes."""
    from dbt_common.clients.jinja import get_environment

    _, state = baked
    codes = marshal.loads(jinja_cache.cache_path(state).read_bytes())
    manifest = dbt_manifest.load(state, "dev", "orders", "db")
    assert manifest is not None
    env = get_environment(None, capture_macros=False)
    sources = list(jinja_cache.sources(manifest))
    own = [m.macro_sql for m in manifest.macros.values() if m.package_name == "acme_analytics"]
    assert own and len(sources) > len(own)
    for source in sources:
        assert marshal.loads(codes[jinja_cache.key(type(env), source)]) == env.compile(source)
