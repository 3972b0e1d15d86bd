"""The Releases page's data and HTML (pure)."""

from __future__ import annotations

from dataops.core.release_page import page_data, render

RECORD = {
    "git_commit": "abc123",
    "dbt_manifest_sha256": "f" * 64,
    "migration_version": "3",
    "images": {"load": {"digest": "sha256:" + "1" * 64, "tag": "t1"}},
}


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
