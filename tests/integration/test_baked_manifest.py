"""The dbt step's baked manifests (dataops.task.dbt_manifest), on another team's project: the
manifest loaded for a target, an audit name and a database equals what a full `dbt parse` of
the project makes for them, node by node; a parse-time environment variable whose value
changed makes the step parse instead."""

from __future__ import annotations

import json
import marshal
import shutil
from pathlib import Path

import pytest

from dataops.clients import dbt
from dataops.core.dbt_artifacts import retarget_manifest
from dataops.patches.dbt import jinja_cache
from dataops.task import dbt_manifest
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
    # The image's compiled manifest, made as `dataops images build` makes it: what the step
    # defers to, merged into the baked manifests.
    dbt.parse_manifest(copy.path, state, tmp / "logs")
    written = dbt_manifest.bake(copy.path, state)
    assert sorted(p.name for p in written) == [
        "jinja-code.marshal",
        "manifest.json",  # defer-baked/: the empty --state
        "runtime-dev.msgpack",
        "runtime-production.msgpack",
        "runtime-staging.msgpack",
    ]
    return copy, state


def full_parse(
    copy: dbt.PreparedProject, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The manifest dbt's own parse makes for `target` (the dbt step's --target), audit `orders`."""
    monkeypatch.setenv("DBT_TARGET", target)
    return dbt.parse_manifest(
        copy.path, tmp_path / "parsed", tmp_path / "logs", {"dataops_audit": "orders"}
    )


@pytest.mark.parametrize("target", ["dev", "production"])
def test_the_loaded_manifest_is_what_a_full_parse_makes(
    baked: tuple[dbt.PreparedProject, Path],
    target: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy, state = baked
    truth = full_parse(copy, target, tmp_path, monkeypatch)
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


@pytest.mark.parametrize("target", ["dev", "production"])
def test_the_baked_deferral_is_what_dbt_merges_from_the_state_at_run_time(
    baked: tuple[dbt.PreparedProject, Path],
    target: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `--defer --state <the image's manifest, retargeted>` makes of a fresh parse, node
    by node: each node's defer_relation (the published relation an unselected ref resolves to)
    in the run's database."""
    from dbt.contracts.state import PreviousState

    copy, state = baked
    truth = full_parse(copy, target, tmp_path, monkeypatch)
    expected = PreviousState(truth.parent, tmp_path / "t", tmp_path).manifest
    run_state = retarget_manifest(
        dbt_manifest.state_manifest(state), tmp_path / "state", "warehouse_x"
    )
    expected.merge_from_artifact(PreviousState(run_state.parent, tmp_path / "t", tmp_path).manifest)
    loaded = dbt_manifest.load(state, target, "orders", "warehouse_x")
    assert loaded is not None

    def deferrals(manifest: object) -> dict[str, dict | None]:
        return {
            uid: relation.to_dict() if relation else None
            for uid, node in manifest.nodes.items()  # type: ignore[attr-defined]
            for relation in [getattr(node, "defer_relation", None)]
        }

    assert deferrals(loaded) == deferrals(expected)
    relations = [d for d in deferrals(loaded).values() if d]
    assert len(relations) >= 5  # acme's models and seeds, each with its published relation
    assert all(d["database"] == "warehouse_x" and "__audit_" not in d["schema"] for d in relations)
    assert all(d["relation_name"].startswith('"warehouse_x".') for d in relations)
    # The step hands dbt the empty --state, for this image's manifest only.
    defer_state = dbt_manifest.baked_defer_state(state, dbt_manifest.state_manifest(state))
    assert defer_state is not None
    assert json.loads((defer_state / "manifest.json").read_text())["nodes"] == {}
    other = tmp_path / "other.json"
    other.write_text(dbt_manifest.state_manifest(state).read_text().replace("acme", "acmf"))
    assert dbt_manifest.baked_defer_state(state, other) is None


def test_a_changed_parse_time_variable_or_a_missing_target_means_a_parse(
    baked: tuple[dbt.PreparedProject, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, state = baked
    assert dbt_manifest.load(state, "no_such_target", "orders", "db") is None
    copy = tmp_path / "state"
    shutil.copytree(state, copy)
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
