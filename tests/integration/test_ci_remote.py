"""`git push` to a bare repository made a CI remote by `dataops ci install-hook`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, run_dataops

pytestmark = pytest.mark.integration
MODEL = "dbt_project/models/staging/nycflights/stg_nycflights__airlines.sql"


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_for(repo: Path, commit: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run_dataops("ci", "status", "--repo", str(repo), "--json")
        assert status.returncode == 0, status.stderr
        for result in json.loads(status.stdout):
            if result["commit"] == commit and result["status"] in ("passed", "failed"):
                return result
        time.sleep(3)
    pytest.fail(f"no CI result for {commit} within {timeout}s")


def dev_state(conn: psycopg.Connection) -> tuple[object, ...]:
    """What a branch's CI must leave alone in dev: its release history and migrations."""
    releases = conn.execute("select count(*), max(id) from dataops.release_history").fetchone()
    migrations = conn.execute("select count(*) from dataops.schema_history").fetchone()
    return (releases, migrations)


def test_pushes_run_ci_in_a_clean_checkout_one_after_the_other(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    dev_before = dev_state(ready)
    remote = tmp_path / "remote.git"
    git("clone", "--quiet", "--bare", str(ROOT), str(remote), cwd=tmp_path)
    installed = run_dataops("ci", "install-hook", str(remote))
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    git("config", "user.email", "ci-test@example.com", cwd=work)
    git("config", "user.name", "CI test", cwd=work)
    git("checkout", "--quiet", "-b", "feature", cwd=work)

    # 1. a model that breaks the SQL rules: CI must fail at lint, naming the file and rule.
    model = work / MODEL
    original = model.read_text()
    model.write_text(original.replace("select * from {{ source(", "SELECT * FROM {{ source("))
    assert model.read_text() != original
    git("commit", "--quiet", "-am", "shout in a model", cwd=work)
    broken = git("rev-parse", "HEAD", cwd=work)
    pushed = subprocess.run(
        ["git", "push", "--quiet", "origin", "feature"], cwd=work, capture_output=True, text=True
    )
    assert pushed.returncode == 0, pushed.stderr
    assert f"dataops ci: queued {broken[:12]}" in pushed.stderr  # the hook answered at once

    # 2. right after it, the fix: it must wait for the first run, then pass.
    model.write_text(original)
    git("commit", "--quiet", "-am", "calm down", cwd=work)
    fixed = git("rev-parse", "HEAD", cwd=work)
    git("push", "--quiet", "origin", "feature", cwd=work)

    first = wait_for(remote, broken)
    second = wait_for(remote, fixed)
    assert first["status"] == "failed"
    log = run_dataops("ci", "status", "--repo", str(remote), "--log", broken[:12]).stdout
    assert "lint         FAILED" in log
    assert "stg_nycflights__airlines.sql" in log and "CP01" in log

    assert second["status"] == "passed", Path(second["log"]).read_text()[-4000:]
    assert second["started_at"] >= first["finished_at"]  # queued, not run on top of it
    log = Path(second["log"]).read_text()
    # Each stage ran, or was skipped because a run of the same content passed it (the first
    # push's earlier stages; the suite's other CI runs of this commit: test_ci_cache).
    for stage in ("validate", "lint", "unit", "build", "migrate", "integration"):
        assert (
            f"{stage:<12} PASSED" in log
            or f"- {stage:<12} skipped: unchanged since" in log
            or (
                stage == "integration"
                and "- integration  skipped: dev already runs this dbt" in log
            )
        ), stage
    assert (
        "unchanged since the last build (content hash)" in log
        or "- build        skipped: unchanged since" in log
    )
    assert "already runs this dbt project" in log or "skipped dbt: no model changed" in log
    # A branch never changes shared dev: no migration applied, no release activated there.
    assert "release      skipped: branch 'feature' is not main" in log
    assert "promote      skipped: branch 'feature' is not main" in log
    assert dev_state(ready) == dev_before
    # The developer's working tree was never touched by CI.
    assert git("status", "--porcelain", cwd=work) == ""
