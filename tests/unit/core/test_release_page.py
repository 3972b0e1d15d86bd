"""The Releases page's data and HTML (pure)."""

from __future__ import annotations

from dataops.core import promotion
from dataops.core.release_page import page_data, render, render_dbt_results
from dataops.core.release_record import ReleaseRecord

FIELDS = {
    "schema": 1,
    "project": "acme",
    "git_commit": "abc123",
    "dbt_manifest_sha256": "f" * 64,
    "migration_version": "3",
    "images": {"load": {"digest": "sha256:" + "1" * 64, "tag": "t1"}},
}
RECORD = ReleaseRecord.parse(FIELDS, "test")


def record(**changes: object) -> ReleaseRecord:
    return ReleaseRecord.parse({**FIELDS, **changes}, "test")


def test_the_page_names_the_release_its_images_and_escapes_what_it_shows() -> None:
    history = [
        {
            "id": 2,
            "release_id": "sha256:" + "a" * 64,
            "action": "promoted",
            "actor": "<script>alert(1)</script>",
            "at": "2026-12-01T10:00:00+00:00",
            "ok": True,
            "detail": {"from": "staging"},
        },
        {
            "id": 1,
            "release_id": "sha256:" + "b" * 64,
            "action": "check",
            "actor": "ci",
            "at": "2026-12-01T09:00:00+00:00",
            "ok": False,
            "detail": {},
        },
    ]
    data = page_data("prod", "sha256:" + "a" * 64, RECORD, history)
    assert [c["id"] for c in data["checks"]] == [1]
    html = render(data, "127.0.0.1:5003")
    assert "sha256:" + "a" * 64 in html
    assert "127.0.0.1:5003/dataops/load@sha256:" + "1" * 64 in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'class="refused"' in html


def test_an_environment_with_no_release_says_so() -> None:
    html = render(page_data("staging", None, None, []), "127.0.0.1:5002")
    assert "No release is active in this environment yet." in html


def test_the_page_says_when_an_older_release_did_not_record_its_changed_files() -> None:
    old = render(page_data("prod", "sha256:" + "a" * 64, RECORD, []), "r")
    assert "not recorded (an older release)" in old
    new = render(page_data("prod", "sha256:" + "a" * 64, record(git_dirty=["x.sql"]), []), "r")
    assert "<code>x.sql</code>" in new


def candidate_row(release_id: str, detail: dict) -> dict:
    return {
        "id": 9,
        "release_id": release_id,
        "action": "candidate",
        "actor": "ci@host",
        "at": "2026-12-01T11:00:00+00:00",
        "ok": True,
        "detail": detail,
    }


def test_the_page_shows_what_the_upstream_environment_runs_and_this_one_does_not_yet() -> None:
    ours = record(migration_checksums={"V3__c.sql": "3"})
    entry = promotion.HistoryEntry(
        4,
        "sha256:" + "c" * 64,
        "check",
        "qa",
        "2026-12-01T10:30:00+00:00",
        True,
        {"check": "smoke", "detail": "<b>4 runs</b>"},
    )
    theirs = record(
        git_commit="def456",
        migration_version="4",
        migration_checksums={"V3__c.sql": "3", "V4__d.sql": "4"},
        images={
            "load": {"digest": "sha256:" + "2" * 64, "tag": "t2"},
            "transform": {"digest": "sha256:" + "3" * 64, "tag": "t3"},
        },
    )
    detail = promotion.candidate_detail("staging", theirs, [entry])
    assert detail["checks"] == [
        {"check": "smoke", "ok": True, "actor": "qa", "at": entry.at, "detail": "<b>4 runs</b>"}
    ]
    history = [candidate_row("sha256:" + "c" * 64, detail)]
    data = page_data("prod", "sha256:" + "a" * 64, ours, history)
    up = data["upstream"]
    assert up["from"] == "staging" and up["pending"] is True
    assert [(i["name"], i["upstream"][-1], i["here"] and i["here"][-1]) for i in up["images"]] == [
        ("load", "2", "1"),
        ("transform", "3", None),
    ]
    assert [c["what"] for c in up["changes"]] == ["git commit", "migration version"]
    assert up["new_migrations"] == ["V4__d.sql"]
    html = render(data, "127.0.0.1:5003")
    assert "What staging has that prod does not yet" in html
    assert "V4__d.sql" in html and "def456" in html
    assert "&lt;b&gt;4 runs&lt;/b&gt;" in html and "<b>4 runs" not in html


def test_an_environment_that_runs_its_candidate_says_so() -> None:
    detail = promotion.candidate_detail("staging", RECORD, [])
    data = page_data(
        "prod", "sha256:" + "a" * 64, RECORD, [candidate_row("sha256:" + "a" * 64, detail)]
    )
    assert data["upstream"]["pending"] is False
    assert data["upstream"]["images"] == [] and data["upstream"]["changes"] == []
    assert "prod runs what staging runs" in render(data, "r")
    assert page_data("dev", None, None, [])["upstream"] is None


def test_the_dbt_results_page_lists_every_node_and_escapes_messages() -> None:
    html = render_dbt_results(
        {
            "dag_id": "flights",
            "run_id": "manual__2013-01-01T00:00:00+00:00",
            "task_id": "dbt",
            "models": 1,
            "tests": 1,
            "published": [],
            "results": [
                {"unique_id": "model.f.daily", "status": "success", "seconds": 0.4, "message": ""},
                {"unique_id": "test.f.nn", "status": "fail", "seconds": "<i>", "message": "<x> 3"},
            ],
        }
    )
    assert "model.f.daily" in html and "test.f.nn" in html
    assert 'class="fail"' in html and "&lt;x&gt; 3" in html
    assert "<i>" not in html and "&lt;i&gt;" in html  # every field is escaped
    assert "1 fail, 1 success" in html
    assert "Published: nothing" in html
