"""The Releases page the dataops plugin adds to every deployment's Airflow UI."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import airflow_token, releases_json

pytestmark = pytest.mark.integration
DEV = "http://127.0.0.1:8080"


def test_anonymous_requests_to_the_plugin_are_refused(pipelines_ready: dict[str, str]) -> None:
    for accept in ("text/html", "application/json"):
        response = httpx.get(f"{DEV}/dataops/releases", headers={"Accept": accept})
        assert response.status_code == 401, response.text[:300]
    forged = httpx.get(f"{DEV}/dataops/releases", headers={"Authorization": "Bearer forged"})
    assert forged.status_code in (401, 403)
    assert "sha256:" not in forged.text


def test_the_releases_page_shows_the_active_release_its_digests_and_history(
    pipelines_ready: dict[str, str],
) -> None:
    active = json.loads((ROOT / ".dataops" / "releases" / "active-dev.json").read_text())
    release_id = active["release"]
    headers = {"Authorization": f"Bearer {airflow_token('dev', pipelines_ready)}"}
    data = releases_json("dev", pipelines_ready)
    assert data["environment"] == "dev" and data["active_release"] == release_id
    digests = {i["name"]: i["digest"] for i in data["images"]}
    assert sorted(digests) == ["extract", "load", "transform"]
    assert any(h["release_id"] == release_id and h["action"] == "created" for h in data["history"])

    page = httpx.get(f"{DEV}/dataops/releases", headers={**headers, "Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert release_id in page.text
    for name, digest in digests.items():
        assert f"127.0.0.1:5001/dataops/{name}@{digest}" in page.text

    # The UI lists the page in its navigation (the plugin's external view).
    plugins = httpx.get(f"{DEV}/api/v2/plugins", headers=headers).json()["plugins"]
    ours = [p for p in plugins if p["name"] == "dataops"]
    assert ours and ours[0]["external_views"][0]["href"] == "/dataops/releases"
