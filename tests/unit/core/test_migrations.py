"""Migration files: names, checksums, statement splitting, destructive-change lint."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops.core.migrations import (
    Kind,
    checksum,
    destructive_changes,
    read_migration,
    read_migrations,
    split_statements,
)
from dataops.errors import ConfigError
from tests.conftest import PROJECT


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_bytes(text.encode())
    return path


def test_checksum_ignores_line_endings_only() -> None:
    assert checksum("a\nb\n") == checksum("a\r\nb\r\n") == checksum("a\rb\r")
    assert checksum("a\nb\n") != checksum("a\nb \n")


def test_split_minds_strings_dollar_quotes_and_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    create table t (x text default 'a;b');
    /* block; comment */
    create function f() returns int as $body$ select 1; $body$ language sql;
    insert into t values ('it''s; fine'), ($$;$$);
    """
    statements = split_statements(sql)
    assert len(statements) == 3
    assert statements[1].startswith("/* block; comment */\n    create function")
    assert statements[2].endswith("($$;$$)")
    assert split_statements("-- only a comment\n;\n") == []


def test_kinds_versions_order_and_headers(tmp_path: Path) -> None:
    write(tmp_path, "V10__later.sql", "create table b (x int);")
    write(tmp_path, "V2__first.sql", "create table a (x int);\n-- verify\nselect true;\n")
    write(
        tmp_path,
        "V2_1__between.sql",
        "-- dataops:no-transaction\ncreate index concurrently i on a (x);",
    )
    write(tmp_path, "R__views.sql", "create or replace view v as select 1;")
    write(tmp_path, "U2__first.sql", "drop table a;")
    found = read_migrations(tmp_path)
    assert [m.version for m in found.versioned] == [(2,), (2, 1), (10,)]
    assert [m.version_label for m in found.versioned] == ["2", "2.1", "10"]
    first, between, _ = found.versioned
    assert first.verify == ("select true",) and first.statements == ("create table a (x int)",)
    assert first.transactional and not between.transactional
    assert found.repeatable[0].kind is Kind.REPEATABLE and found.repeatable[0].version is None
    assert found.undo[(2,)].kind is Kind.UNDO


def test_duplicate_versions_name_both_files(tmp_path: Path) -> None:
    write(tmp_path, "V3__one.sql", "select 1;")
    write(tmp_path, "V3__two.sql", "select 2;")
    with pytest.raises(ConfigError, match=r"duplicate version 3: .*V3__one.sql and .*V3__two.sql"):
        read_migrations(tmp_path)


def test_a_bad_file_name_says_how_to_name_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"V<version>__<description>\.sql"):
        read_migration(write(tmp_path, "add_table.sql", "select 1;"))


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("drop table raw.x;", "DROP"),
        ("alter table raw.x drop column y;", "DROP COLUMN"),
        ("truncate raw.x;", "TRUNCATE"),
        ("alter table raw.x rename to y;", "RENAME"),
        ("alter table raw.x alter column y type integer;", "TYPE CHANGE"),
        ("alter table raw.x alter column y set data type varchar(10);", "TYPE CHANGE"),
        ("delete from raw.x;", "DELETE without WHERE"),
    ],
)
def test_destructive_changes_are_flagged_with_file_and_line(
    tmp_path: Path, sql: str, what: str
) -> None:
    path = write(tmp_path, "V5__change.sql", f"create table raw.keep (a int);\n{sql}\n")
    findings = destructive_changes(read_migration(path))
    assert [f.rule for f in findings] == ["MIG01"]
    assert findings[0].line == 2
    assert f"({what})" in str(findings[0])
    assert str(findings[0]).startswith(f"{path}:2:1 MIG01")


def test_the_allow_annotation_widening_and_filtered_deletes_pass(tmp_path: Path) -> None:
    allowed = "-- dataops:allow-destructive the column was never used\nalter table t drop column c;"
    assert destructive_changes(read_migration(write(tmp_path, "V1__a.sql", allowed))) == []
    widening = "alter table t alter column c type text;\nalter table t alter column d type bigint;"
    assert destructive_changes(read_migration(write(tmp_path, "V2__b.sql", widening))) == []
    scoped = "delete from t where c is null;"
    assert destructive_changes(read_migration(write(tmp_path, "V3__c.sql", scoped))) == []


def test_the_reference_migrations_read_and_are_not_destructive() -> None:
    found = read_migrations(PROJECT / "migrations")
    assert [m.script for m in found.versioned][:2] == [
        "V1__dataops_schema.sql",
        "V2__raw_tables.sql",
    ]
    for migration in [*found.versioned, *found.repeatable]:
        assert destructive_changes(migration) == []
