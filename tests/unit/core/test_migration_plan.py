"""Migration planning: what the history and the files say about an apply, before any DDL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dataops.core.migration_plan import (
    HistoryRow,
    applied_versions,
    baseline_version,
    pending,
    problems,
)
from dataops.core.migrations import MigrationSet, checksum, read_migrations

_RANKS = itertools.count(1)
AT = datetime(2025, 2, 17, 14, 5, 33, tzinfo=UTC)

FILES = {
    "V1__dataops_schema.sql": "create schema if not exists dataops;\n",
    "V2__raw_orders.sql": "create table raw.orders (id bigint primary key, placed_at date);\n",
    "V2_1__orders_index.sql": (
        "-- dataops:no-transaction\ncreate index concurrently orders_placed on raw.orders "
        "(placed_at);\n"
    ),
    "V10__raw_customers.sql": "create table raw.customers (id bigint, name text);\n",
    "R__reporting_views.sql": (
        "create or replace view reporting.orders as select * from raw.orders;\n"
    ),
    "R__grants.sql": "grant usage on schema reporting to analyst;\n",
}


def write(folder: Path, files: dict[str, str]) -> MigrationSet:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return read_migrations(folder)


def row(
    script: str,
    *,
    version: str | None = None,
    type: str = "versioned",
    text: str | None = None,
    success: bool = True,
) -> HistoryRow:
    """A history row for `script`; its checksum is that of `text` (default: the file in FILES)."""
    digest = None if type == "baseline" else checksum(text if text is not None else FILES[script])
    return HistoryRow(
        rank=next(_RANKS),
        version=version,
        description=script.split("__", 1)[-1].removesuffix(".sql").replace("_", " "),
        type=type,
        script=script,
        checksum=digest,
        installed_by="maria.k",
        installed_at=AT,
        execution_ms=412,
        success=success,
    )


def applied(*scripts: str) -> list[HistoryRow]:
    """Successful rows for the versioned files of FILES named."""
    rows = []
    for script in scripts:
        version = script[1:].split("__", 1)[0].replace("_", ".")
        rows.append(row(script, version=version))
    return rows


def test_clean_history_has_no_problems_and_pending_is_in_order(tmp_path: Path) -> None:
    found = write(tmp_path, FILES)
    history = applied("V1__dataops_schema.sql", "V2__raw_orders.sql")
    assert problems(found, history, "qa", tmp_path, strict_destructive=True) == ([], [])
    assert [m.script for m in pending(found, history)] == [
        "V2_1__orders_index.sql",
        "V10__raw_customers.sql",
        "R__grants.sql",
        "R__reporting_views.sql",
    ]


def test_everything_pending_on_an_empty_history(tmp_path: Path) -> None:
    found = write(tmp_path, FILES)
    assert problems(found, [], "qa", tmp_path, strict_destructive=True) == ([], [])
    assert [m.version_label or m.script for m in pending(found, [])] == [
        "1",
        "2",
        "2.1",
        "10",
        "R__grants.sql",
        "R__reporting_views.sql",
    ]


def test_nothing_pending_when_all_applied_and_repeatables_unchanged(tmp_path: Path) -> None:
    found = write(tmp_path, FILES)
    history = [
        *applied(
            "V1__dataops_schema.sql",
            "V2__raw_orders.sql",
            "V2_1__orders_index.sql",
            "V10__raw_customers.sql",
        ),
        row("R__grants.sql", type="repeatable"),
        row("R__reporting_views.sql", type="repeatable"),
    ]
    assert problems(found, history, "preprod", tmp_path, strict_destructive=True) == ([], [])
    assert pending(found, history) == []


def test_a_failed_row_blocks_and_says_how_to_repair(tmp_path: Path) -> None:
    found = write(tmp_path, FILES)
    history = [
        *applied("V1__dataops_schema.sql", "V2__raw_orders.sql"),
        row("V2_1__orders_index.sql", version="2.1", success=False),
    ]
    errors, warnings = problems(found, history, "preprod", tmp_path, strict_destructive=False)
    assert warnings == []
    assert len(errors) == 1
    assert errors[0].startswith("V2.1 (V2_1__orders_index.sql) failed on 2025-02-17 14:05")
    assert "`dataops migrate repair --env preprod --version 2.1`" in errors[0]
    # A failed migration is not applied: it is still what an apply would run first.
    assert [m.script for m in pending(found, history)][:2] == [
        "V2_1__orders_index.sql",
        "V10__raw_customers.sql",
    ]


def test_a_deleted_applied_file_is_an_error(tmp_path: Path) -> None:
    files = {k: v for k, v in FILES.items() if k != "V2__raw_orders.sql"}
    found = write(tmp_path, files)
    history = applied("V1__dataops_schema.sql", "V2__raw_orders.sql")
    errors, _ = problems(found, history, "qa", tmp_path, strict_destructive=True)
    assert errors == [
        f"V2 (V2__raw_orders.sql) was applied but its file is gone from {tmp_path}; "
        "restore it (applied migrations are never deleted)"
    ]


def test_an_edited_applied_file_is_an_error(tmp_path: Path) -> None:
    found = write(tmp_path, FILES)
    history = [
        row("V1__dataops_schema.sql", version="1"),
        row("V2__raw_orders.sql", version="2", text="create table raw.orders (id int);\n"),
    ]
    errors, _ = problems(found, history, "qa", tmp_path, strict_destructive=True)
    assert len(errors) == 1
    file_sum = checksum(FILES["V2__raw_orders.sql"])
    assert errors[0].startswith(f"{tmp_path / 'V2__raw_orders.sql'}: V2 was edited after it")
    assert "was edited after it was applied" in errors[0]
    assert f"file checksum {file_sum}" in errors[0]
    assert f"applied checksum {history[1].checksum}" in errors[0]
    assert "`dataops migrate repair --env qa --version 2`" in errors[0]


def test_a_line_ending_only_change_is_not_an_edit(tmp_path: Path) -> None:
    found = write(tmp_path, {"V1__dataops_schema.sql": "create schema dataops;\r\n"})
    history = [row("V1__dataops_schema.sql", version="1", text="create schema dataops;\n")]
    assert problems(found, history, "qa", tmp_path, strict_destructive=True) == ([], [])


def test_a_new_file_older_than_the_newest_applied_is_out_of_order(tmp_path: Path) -> None:
    found = write(tmp_path, FILES)
    history = applied("V1__dataops_schema.sql", "V2__raw_orders.sql", "V10__raw_customers.sql")
    errors, _ = problems(found, history, "qa", tmp_path, strict_destructive=True)
    assert errors == [
        f"{tmp_path / 'V2_1__orders_index.sql'}: V2.1 is older than the applied V10 "
        "(out of order); give it a version above 10"
    ]


def test_baseline_takes_older_versions_as_applied(tmp_path: Path) -> None:
    files = {
        **FILES,
        "V3__legacy_sales.sql": "create table raw.sales (id bigint);\n",
        "V11__raw_payments.sql": "create table raw.payments (id bigint);\n",
    }
    found = write(tmp_path, files)
    history = [row("<< baseline >>", version="3", type="baseline")]
    assert applied_versions(history) == [(3,)]
    assert baseline_version(history) == (3,)
    assert problems(found, history, "preprod", tmp_path, strict_destructive=True) == ([], [])
    assert [m.script for m in pending(found, history) if m.version] == [
        "V10__raw_customers.sql",
        "V11__raw_payments.sql",
    ]


def test_baseline_plus_applied_still_catches_out_of_order_above_it(tmp_path: Path) -> None:
    found = write(tmp_path, FILES)
    history = [
        row("<< baseline >>", version="1", type="baseline"),
        *applied("V10__raw_customers.sql"),
    ]
    errors, _ = problems(found, history, "qa", tmp_path, strict_destructive=True)
    assert [e.split(": ", 1)[1].split(" (")[0] for e in errors] == [
        "V2 is older than the applied V10",
        "V2.1 is older than the applied V10",
    ]


@pytest.mark.parametrize(
    ("history_text", "is_pending"),
    [
        (None, True),  # never ran
        (FILES["R__reporting_views.sql"], False),  # unchanged since the last run
        ("create or replace view reporting.orders as select 1;\n", True),  # changed
    ],
)
def test_a_repeatable_is_pending_when_new_or_changed(
    tmp_path: Path, history_text: str | None, is_pending: bool
) -> None:
    found = write(tmp_path, {"R__reporting_views.sql": FILES["R__reporting_views.sql"]})
    history = (
        []
        if history_text is None
        else [row("R__reporting_views.sql", type="repeatable", text=history_text)]
    )
    assert bool(pending(found, history)) is is_pending


def test_the_last_successful_run_of_a_repeatable_counts(tmp_path: Path) -> None:
    found = write(tmp_path, {"R__grants.sql": FILES["R__grants.sql"]})
    old = "grant usage on schema reporting to public;\n"
    ran_then_reverted = [
        row("R__grants.sql", type="repeatable"),
        row("R__grants.sql", type="repeatable", text=old),
    ]
    assert [m.script for m in pending(found, ran_then_reverted)] == ["R__grants.sql"]
    current_then_failed = [
        row("R__grants.sql", type="repeatable"),
        row("R__grants.sql", type="repeatable", text=old, success=False),
    ]
    assert pending(found, current_then_failed) == []


def test_destructive_change_is_a_warning_when_not_strict(tmp_path: Path) -> None:
    files = {**FILES, "V11__drop_legacy.sql": "drop table raw.legacy_orders;\n"}
    found = write(tmp_path, files)
    errors, warnings = problems(found, [], "qa", tmp_path, strict_destructive=False)
    assert errors == []
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{tmp_path / 'V11__drop_legacy.sql'}:1:1 MIG01")
    assert "(DROP)" in warnings[0]


def test_destructive_change_is_an_error_naming_the_env_when_strict(tmp_path: Path) -> None:
    files = {
        **FILES,
        "V11__drop_legacy.sql": "create table raw.keep (a int);\ntruncate raw.legacy_orders;\n",
        "R__cleanup.sql": "delete from reporting.cache;\n",
    }
    found = write(tmp_path, files)
    errors, warnings = problems(found, [], "preprod", tmp_path, strict_destructive=True)
    assert warnings == []
    assert len(errors) == 2
    assert all(e.endswith("(preprod requires the annotation)") for e in errors)
    assert any("V11__drop_legacy.sql:2:1 MIG01" in e and "(TRUNCATE)" in e for e in errors)
    assert any("R__cleanup.sql:1:1 MIG01" in e and "(DELETE without WHERE)" in e for e in errors)


def test_annotated_destructive_change_is_neither_error_nor_warning(tmp_path: Path) -> None:
    text = "-- dataops:allow-destructive replaced by raw.orders in V2\ndrop table raw.legacy;\n"
    found = write(tmp_path, {**FILES, "V11__drop_legacy.sql": text})
    assert problems(found, [], "preprod", tmp_path, strict_destructive=True) == ([], [])
    assert problems(found, [], "preprod", tmp_path, strict_destructive=False) == ([], [])


def test_applied_versions_count_successful_versioned_and_baseline_rows() -> None:
    history = [
        row("<< baseline >>", version="1", type="baseline"),
        row("V2__raw_orders.sql", version="2"),
        row("V2_1__orders_index.sql", version="2.1", success=False),
        row("R__grants.sql", type="repeatable"),
        row("V10__raw_customers.sql", version="10"),
    ]
    assert applied_versions(history) == [(1,), (2,), (10,)]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], None),
        ([("V2__raw_orders.sql", "2", "versioned")], None),
        ([("<< baseline >>", "4", "baseline")], (4,)),
        ([("<< baseline >>", "4", "baseline"), ("<< baseline >>", "7.2", "baseline")], (7, 2)),
        ([("<< baseline >>", None, "baseline")], None),
    ],
)
def test_baseline_version_is_the_last_baseline(
    rows: list[tuple[str, str | None, str]], expected: tuple[int, ...] | None
) -> None:
    history = [row(s, version=v, type=t) for s, v, t in rows]
    assert baseline_version(history) == expected
