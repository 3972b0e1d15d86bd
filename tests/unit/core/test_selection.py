"""Slim CI's rules: a branch's CI schema, and why each node of state:modified+ was selected."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from dataops.core.selection import Selected, ci_schema_name, selection_reasons


@pytest.mark.parametrize(
    ("branch", "schema"),
    [
        ("main", "ci_main"),
        ("feature/orders-revenue", "ci_feature_orders_revenue"),
        ("Feature/ABC-123_Fix", "ci_feature_abc_123_fix"),
        ("release/2.4.1", "ci_release_2_4_1"),
        ("dependabot/pip/dbt-core-1.9.2", "ci_dependabot_pip_dbt_core_1_9_2"),
        ("--hotfix--", "ci_hotfix"),
        ("/refs/heads/x/", "ci_refs_heads_x"),
        ("maria.k/fix  spaces", "ci_maria_k_fix_spaces"),
        ("fëature", "ci_f_ature"),
        ("", "ci_detached"),
        ("///", "ci_detached"),
        ("a" * 60, "ci_" + "a" * 37),
        # The 40th character is an underscore: it is dropped, not kept as a trailing one.
        ("f" * 36 + "/xyz", "ci_" + "f" * 36),
        ("feature/" + "x" * 28 + "-" + "tail", "ci_feature_" + "x" * 28),
    ],
)
def test_ci_schema_name(branch: str, schema: str) -> None:
    name = ci_schema_name(branch)
    assert name == schema
    assert re.fullmatch(r"ci_[a-z0-9_]*[a-z0-9]", name)
    assert len(name) <= 40


# -- selection_reasons -------------------------------------------------------------------------


def model(
    checksum: str,
    *,
    config: dict[str, Any] | None = None,
    description: str = "",
    columns: dict[str, Any] | None = None,
    macros: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "checksum": {"name": "sha256", "checksum": checksum},
        "config": config or {"materialized": "view"},
        "description": description,
        "columns": columns or {},
        "depends_on": {"macros": macros or [], "nodes": []},
    }


BASELINE: dict[str, Any] = {
    "nodes": {
        "model.shop.stg_orders": model("a1", description="One row per order."),
        "model.shop.stg_customers": model("b2", macros=["macro.shop.cents_to_dollars"]),
        "model.shop.orders": model(
            "c3",
            config={"materialized": "table"},
            columns={"order_id": {"name": "order_id", "description": "key"}},
        ),
        "model.shop.customers": model("d4", config={"materialized": "table"}),
        "model.shop.customer_ltv": model("e5", macros=["macro.shop.money"]),
        "seed.shop.countries": model("f6", config={"materialized": "seed"}),
        "snapshot.shop.customers_snapshot": model("g7", config={"strategy": "timestamp"}),
        "test.shop.unique_orders_order_id.9f1c": model("h8"),
    },
    "macros": {
        "macro.shop.cents_to_dollars": {"macro_sql": "({{ col }} / 100)::numeric(16, 2)"},
        "macro.shop.money": {"macro_sql": "round({{ col }}, 2)"},
    },
    "parent_map": {
        "model.shop.stg_orders": [],
        "model.shop.stg_customers": ["seed.shop.countries"],
        "model.shop.orders": ["model.shop.stg_orders"],
        "model.shop.customers": ["model.shop.stg_customers", "model.shop.orders"],
        "model.shop.customer_ltv": ["model.shop.customers"],
        "snapshot.shop.customers_snapshot": ["model.shop.customers"],
        "test.shop.unique_orders_order_id.9f1c": ["model.shop.orders"],
    },
}


def current_from(baseline: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(baseline)


def reasons(current: dict[str, Any], selected: list[str]) -> dict[str, str]:
    found = selection_reasons(current, BASELINE, selected)
    assert all(isinstance(s, Selected) for s in found)
    assert [s.unique_id for s in found] == [u for u in selected if not u.startswith("test.")]
    return {s.unique_id: s.reason for s in found}


def test_a_new_node_is_new() -> None:
    current = current_from(BASELINE)
    current["nodes"]["model.shop.payments"] = model("p1")
    current["parent_map"]["model.shop.payments"] = ["model.shop.stg_orders"]
    assert reasons(current, ["model.shop.payments"]) == {"model.shop.payments": "new"}


@pytest.mark.parametrize(
    ("node", "change", "reason"),
    [
        ("model.shop.orders", {"checksum": {"name": "sha256", "checksum": "zz"}},
         "modified: SQL changed"),
        ("seed.shop.countries", {"checksum": {"name": "sha256", "checksum": "zz"}},
         "modified: SQL changed"),
        ("model.shop.orders", {"config": {"materialized": "incremental"}},
         "modified: config changed"),
        ("snapshot.shop.customers_snapshot", {"config": {"strategy": "check"}},
         "modified: config changed"),
        ("model.shop.stg_orders", {"description": "One row per order, deduplicated."},
         "modified: description or columns changed"),
        ("model.shop.orders", {"columns": {}},
         "modified: description or columns changed"),
    ],
)  # fmt: skip
def test_what_changed_in_a_node(node: str, change: dict[str, Any], reason: str) -> None:
    current = current_from(BASELINE)
    current["nodes"][node].update(change)
    assert reasons(current, [node]) == {node: reason}


def test_the_first_change_found_wins() -> None:
    current = current_from(BASELINE)
    current["nodes"]["model.shop.orders"].update(
        {
            "checksum": {"name": "sha256", "checksum": "zz"},
            "config": {"materialized": "incremental"},
            "description": "new",
        }
    )
    current["nodes"]["model.shop.customers"].update({"config": {}, "description": "new"})
    assert reasons(current, ["model.shop.orders", "model.shop.customers"]) == {
        "model.shop.orders": "modified: SQL changed",
        "model.shop.customers": "modified: config changed",
    }


@pytest.mark.parametrize(
    "macros",
    [
        {"macro.shop.cents_to_dollars": {"macro_sql": "({{ col }} / 100.0)"}},
        {},  # the macro is gone
    ],
)
def test_a_changed_macro_marks_the_nodes_that_use_it(macros: dict[str, Any]) -> None:
    current = current_from(BASELINE)
    current["macros"] = {"macro.shop.money": BASELINE["macros"]["macro.shop.money"], **macros}
    found = reasons(current, ["model.shop.stg_customers", "model.shop.customer_ltv"])
    assert found["model.shop.stg_customers"] == "modified: a macro it uses changed"
    # customer_ltv uses only an unchanged macro: it is selected as stg_customers' descendant.
    assert found["model.shop.customer_ltv"] == "downstream of stg_customers"
    alone = reasons(current, ["model.shop.customer_ltv"])
    assert alone == {"model.shop.customer_ltv": "modified (dbt state:modified)"}


def test_an_unchanged_child_is_downstream_of_its_modified_ancestors() -> None:
    current = current_from(BASELINE)
    current["nodes"]["model.shop.stg_orders"]["checksum"] = {"name": "sha256", "checksum": "x"}
    current["nodes"]["seed.shop.countries"]["checksum"] = {"name": "sha256", "checksum": "y"}
    selected = [
        "model.shop.stg_orders",
        "seed.shop.countries",
        "model.shop.stg_customers",
        "model.shop.orders",
        "test.shop.unique_orders_order_id.9f1c",
        "model.shop.customers",
        "model.shop.customer_ltv",
        "snapshot.shop.customers_snapshot",
    ]
    assert reasons(current, selected) == {
        "model.shop.stg_orders": "modified: SQL changed",
        "seed.shop.countries": "modified: SQL changed",
        "model.shop.stg_customers": "downstream of countries",
        "model.shop.orders": "downstream of stg_orders",
        "model.shop.customers": "downstream of countries, stg_orders",
        "model.shop.customer_ltv": "downstream of countries, stg_orders",
        "snapshot.shop.customers_snapshot": "downstream of countries, stg_orders",
    }


def test_a_modified_node_is_not_also_reported_as_downstream() -> None:
    current = current_from(BASELINE)
    current["nodes"]["model.shop.stg_orders"]["checksum"] = {"name": "sha256", "checksum": "x"}
    current["nodes"]["model.shop.customers"]["config"] = {"materialized": "incremental"}
    assert reasons(current, ["model.shop.stg_orders", "model.shop.customers"]) == {
        "model.shop.stg_orders": "modified: SQL changed",
        "model.shop.customers": "modified: config changed",
    }


def test_tests_and_other_resources_are_not_listed() -> None:
    current = current_from(BASELINE)
    current["nodes"]["test.shop.unique_orders_order_id.9f1c"]["checksum"] = "changed"
    selected = [
        "test.shop.unique_orders_order_id.9f1c",
        "test.shop.not_null_orders_order_id.1a2b",
        "unit_test.shop.orders.test_totals",
        "source.shop.raw.orders",
    ]
    assert selection_reasons(current, BASELINE, selected) == []


def test_a_selected_node_without_a_detectable_reason() -> None:
    current = current_from(BASELINE)
    assert reasons(current, ["model.shop.orders", "model.shop.customer_ltv"]) == {
        "model.shop.orders": "modified (dbt state:modified)",
        "model.shop.customer_ltv": "modified (dbt state:modified)",
    }


def test_empty_manifests_make_every_selected_node_new() -> None:
    found = selection_reasons({}, {}, ["model.shop.orders", "seed.shop.countries"])
    assert [(s.unique_id, s.reason) for s in found] == [
        ("model.shop.orders", "new"),
        ("seed.shop.countries", "new"),
    ]
