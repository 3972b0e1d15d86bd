"""`dataops ci run` in a clean clone: a rerun with no change skips every stage for the right
reason, and a one-model change runs lint, the image build and slim dbt CI again, not the unit
tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT
from tests.integration.test_ci_remote import git

pytestmark = pytest.mark.integration
MODEL = "dbt_project/models/staging/nycflights/stg_nycflights__planes.sql"
CACHED = ("validate", "lint", "unit", "build", "migrate", "integration")


def ci_run(checkout: Path, *args: str) -> tuple[dict[str, dict], str]:
    """`dataops ci run` with the checkout's own code; (stage -> result, printed output)."""
    done = subprocess.run(
        [sys.executable, "-m", "dataops.cli.main", "ci", "run", *args],
        cwd=checkout,
        env={
            **os.environ,
            "PYTHONPATH": str(checkout / "src"),
            "DATAOPS_STATE_DIR": str(ROOT / ".dataops"),
            "DATAOPS_CI_BRANCH": "cache-test",
        },
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = re.search(r"report: (\S+)", done.stdout)
    assert report, done.stdout
    result = json.loads((Path(report.group(1)) / "result.json").read_text())
    return {s["name"]: s for s in result["stages"]}, done.stdout


def test_a_rerun_skips_by_key_and_a_model_change_reruns_lint_build_and_dbt_only(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(ROOT), str(checkout), cwd=tmp_path)
    git("checkout", "--quiet", "-b", "cache-test", cwd=checkout)
    git("config", "user.email", "ci-test@example.com", cwd=checkout)
    git("config", "user.name", "CI test", cwd=checkout)

    first, _ = ci_run(checkout)  # earlier runs of this content may already have passed stages
    assert all(first[s]["status"] in ("passed", "skipped") for s in CACHED), first
    again, output = ci_run(checkout)
    for name in CACHED:
        assert again[name]["status"] == "skipped", again[name]
        note = again[name]["note"]
        assert note.startswith("unchanged since run ") or "already runs this dbt project" in note
    assert "already runs this dbt project" in again["integration"]["note"] or re.search(
        r"unchanged since run \S+ passed it \(commit \w+, key [0-9a-f]{12}\)",
        again["integration"]["note"],
    )
    assert "integration  skipped:" in output

    # One model changes (a comment: its SQL text changed, state:modified sees it).
    builds = ROOT / ".dataops" / "builds" / "branches" / "cache-test" / "dev.json"
    mains = ROOT / ".dataops" / "builds" / "dev.json"
    before, mains_before = json.loads(builds.read_text())["images"], mains.read_bytes()
    model = checkout / MODEL
    model.write_text("-- a reviewed change\n" + model.read_text())
    git("commit", "--quiet", "-am", "touch the planes model", cwd=checkout)
    changed, output = ci_run(checkout)
    after = json.loads(builds.read_text())["images"]
    assert mains.read_bytes() == mains_before  # the branch's build is the branch's own
    # The project's tests parse the dbt project (every spec's selection must match a node).
    for name in ("validate", "lint", "unit", "build", "integration"):
        assert changed[name]["status"] == "passed", changed[name]
    # A new transform image (its content hash covers the dbt project; it may already be in
    # the local engine from an earlier run of this test, then it is pushed, not rebuilt) and
    # the same extract and load images: nothing unchanged is rebuilt.
    assert after["transform"]["content_hash"] != before["transform"]["content_hash"]
    assert after["extract"] == before["extract"] and after["load"] == before["load"]
    assert "built extract" not in changed["build"]["note"]
    assert "built load" not in changed["build"]["note"]
    assert re.match(r"built \d+ model\(s\) \(state:modified\+\)", changed["integration"]["note"])
    assert changed["migrate"]["status"] == "skipped"  # the migrations and dev's release: same
