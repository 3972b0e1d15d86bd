"""dbt's internal API the baked manifests use (dataops.patches.dbt.manifest), on the dbt
installed: a parsed Manifest saved and restored is the same, the relations are renamed, the
derived maps are rebuilt, the deferral is merged as `--defer` does, and run_results is written.

A real `dbt parse` of a small project (no warehouse: parsing connects to none)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataops.patches.dbt import manifest as internals

PROFILE = """
shop:
  target: dev
  outputs:
    dev:
      type: postgres
      host: 127.0.0.1
      port: 5432
      user: nobody
      password: unused
      dbname: shop_db
      schema: analytics
      threads: 1
"""
FILES = {
    "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\nconfig-version: 2\n",
    "profiles.yml": PROFILE,
    "models/sources.yml": (
        "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: orders\n"
        "models:\n  - name: stg_orders\n    columns:\n      - name: id\n"
        "        data_tests: [not_null]\n"
    ),
    "models/stg_orders.sql": "select id, amount from {{ source('raw', 'orders') }}",
    "models/orders.sql": (
        "select id, amount * 2 as doubled, '{{ env_var(\"SHOP_REGION\") }}' as region"
        " from {{ ref('stg_orders') }}"
    ),
}


def parse(project: Path, target: Path) -> Any:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [
            "parse",
            "--no-partial-parse",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(target),
            "--quiet",
        ]
    )
    assert result.success and result.result is not None, result.exception
    return result.result


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    project = tmp_path_factory.mktemp("shop")
    for name, text in FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    saved = dict(os.environ)
    os.environ.update(
        DBT_LOG_PATH=str(project / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        SHOP_REGION="emea",
    )
    try:
        yield project, parse(project, project / "target")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def relations(manifest: Any) -> dict[str, tuple[Any, ...]]:
    return {
        uid: (node.database, node.schema, getattr(node, "relation_name", None))
        for uid, node in [*manifest.nodes.items(), *manifest.sources.items()]
    }


def test_a_saved_manifest_restores_the_same(parsed: tuple[Path, Any]) -> None:
    _, manifest = parsed
    restored = internals.loads(internals.dumps(manifest))
    assert type(restored) is type(manifest)
    assert relations(restored) == relations(manifest)
    assert restored.nodes.keys() == manifest.nodes.keys()
    assert restored.macros.keys() == manifest.macros.keys()
    internals.rebuild_derived(restored)
    assert restored.child_map == manifest.child_map  # what `dbt build` skips children by
    assert restored.parent_map == manifest.parent_map
    assert restored.flat_graph["nodes"].keys() == manifest.nodes.keys()
    assert internals.env_vars(manifest) == {"SHOP_REGION": "emea"}  # read by a model


def test_relations_are_renamed_everywhere(parsed: tuple[Path, Any]) -> None:
    _, manifest = parsed
    restored = internals.loads(internals.dumps(manifest))
    internals.rename_relations(restored, lambda value: value.replace("shop_db", "prod_db"))
    renamed = relations(restored)
    assert renamed and all(db == "prod_db" for db, _, _ in renamed.values()), renamed
    orders = restored.nodes["model.shop.orders"]
    assert orders.relation_name == '"prod_db"."analytics"."orders"'
    assert "shop_db" not in json.dumps({uid: [str(v) for v in rel] for uid, rel in renamed.items()})


def test_the_deferral_merges_as_defer_does(parsed: tuple[Path, Any], tmp_path: Path) -> None:
    project, manifest = parsed
    state = internals.deferral_state(project / "target", tmp_path / "target", project)
    restored = internals.loads(internals.dumps(manifest))
    internals.merge_deferral(restored, state)
    deferred = restored.nodes["model.shop.stg_orders"].defer_relation
    assert deferred is not None and deferred.database == "shop_db"
    assert deferred.relation_name == '"shop_db"."analytics"."stg_orders"'
    internals.rename_relations(restored, lambda value: value.replace("shop_db", "prod_db"))
    assert restored.nodes["model.shop.stg_orders"].defer_relation.database == "prod_db"


def test_run_results_are_written_when_the_result_has_them(tmp_path: Path) -> None:
    class Executed:
        def write(self, path: str) -> None:
            Path(path).write_text("{}")

    out = tmp_path / "target" / "run_results.json"
    assert internals.write_run_results(Executed(), out) and out.read_text() == "{}"
    assert not internals.write_run_results(None, tmp_path / "other.json")
