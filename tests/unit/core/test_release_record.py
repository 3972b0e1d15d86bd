"""The typed release record: stored bytes that never change, older schemas, precise errors."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from dataops.core.release_record import SCHEMA, SCHEMA_CHANGES, ReleaseRecord
from dataops.errors import DataOpsError, ExitCode

DIGEST = "sha256:" + "1" * 64

# A schema-2 record as `release create` wrote it before the record was typed (a dict dumped
# with sorted keys): the typed record must give the same bytes, so the same release id.
STORED = {
    "schema": 2,
    "project": "acme_analytics",
    "git_commit": "0" * 40,
    "git_dirty": ["dags/pipelines/orders.yml"],
    "sources": {
        "dags": {"digest": "sha256:" + "a" * 64, "size": 5120},
        "migrations": {"digest": "sha256:" + "b" * 64, "size": 900},
    },
    "images": {
        "extract": {"digest": DIGEST, "tag": "c1"},
        "transform": {"digest": "sha256:" + "2" * 64, "tag": "c2"},
    },
    "dbt_manifest_sha256": "f" * 64,
    "migration_version": "2",
    "migration_checksums": {"V1__init.sql": "x", "V2__orders.sql": "y"},
}
# What `release create` wrote before releases carried their DAG code (schema 1).
SCHEMA_1 = {key: value for key, value in STORED.items() if key not in ("git_dirty", "sources")} | {
    "schema": 1
}


def old_payload(record: dict[str, object]) -> bytes:
    return json.dumps(record, indent=2, sort_keys=True).encode()


@pytest.mark.parametrize("stored", [STORED, SCHEMA_1], ids=["schema-2", "schema-1"])
def test_a_stored_record_reads_and_writes_back_the_same_bytes(stored: dict) -> None:
    record = ReleaseRecord.parse(old_payload(stored), "test")
    assert record.payload() == old_payload(stored)
    assert record.tag() == "release-" + hashlib.sha256(old_payload(stored)).hexdigest()[:20]
    assert record.document() == stored


def test_a_new_record_is_written_as_before_whatever_the_key_order() -> None:
    shuffled = dict(reversed(list(STORED.items())))
    built = ReleaseRecord(
        **{("record_schema" if k == "schema" else k): v for k, v in STORED.items()}
    )
    assert built.payload() == ReleaseRecord.parse(shuffled, "test").payload() == old_payload(STORED)
    assert re.fullmatch(r"release-[0-9a-f]{20}", built.tag())
    assert built.record_schema == SCHEMA


def test_the_tag_changes_with_the_content() -> None:
    tags = {
        ReleaseRecord.parse({**STORED, "git_commit": commit}, "test").tag()
        for commit in ("a", "b", "c")
    }
    assert len(tags) == 3


def test_a_schema_1_record_reads_with_the_meaning_of_its_schema() -> None:
    record = ReleaseRecord.parse(SCHEMA_1, "test")
    assert not record.carries_code and record.sources is None
    assert record.git_dirty is None  # not recorded then, which is not "no changed files"
    assert record.image_digests() == {"extract": DIGEST, "transform": "sha256:" + "2" * 64}
    # Every key the table names as added is one a schema-1 record lacks.
    assert {key for since, key, change in SCHEMA_CHANGES if change == "added"} == set(STORED) - set(
        SCHEMA_1
    )


def test_a_renamed_key_of_an_older_schema_reads_under_its_new_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataops.core import release_record

    monkeypatch.setattr(
        release_record,
        "SCHEMA_CHANGES",
        (*SCHEMA_CHANGES, (2, "dbt_manifest_sha256", "renamed:manifest_sha256")),
    )
    old = {k: v for k, v in SCHEMA_1.items() if k != "dbt_manifest_sha256"}
    record = ReleaseRecord.parse({**old, "manifest_sha256": "e" * 64}, "test")
    assert record.dbt_manifest_sha256 == "e" * 64


def test_a_record_from_a_newer_toolkit_is_refused_with_what_to_do() -> None:
    with pytest.raises(DataOpsError, match="has schema 3") as caught:
        ReleaseRecord.parse({**STORED, "schema": 3}, "sha256:abc in prod's registry")
    assert "prod's registry" in caught.value.reason
    assert "upgrade dataops" in caught.value.instruction
    assert caught.value.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"imagez": {}}, "imagez: Extra inputs are not permitted"),
        ({"images": {"load": {"digest": "latest", "tag": "t"}}}, "images.load.digest"),
        ({"git_commit": None}, "git_commit"),
    ],
)
def test_a_record_that_is_not_a_release_names_the_key(change: dict, named: str) -> None:
    with pytest.raises(DataOpsError, match="cannot be read") as caught:
        ReleaseRecord.parse({**STORED, **change}, "sha256:abc in dev's registry")
    assert named in caught.value.reason
    assert "dev's registry" in caught.value.reason


def test_bytes_that_are_not_json_are_refused_naming_where_they_came_from() -> None:
    with pytest.raises(DataOpsError, match="cannot be read: it is not JSON") as caught:
        ReleaseRecord.parse(b"\x1f\x8b not json", "sha256:abc in staging's registry")
    assert "staging's registry" in caught.value.reason
