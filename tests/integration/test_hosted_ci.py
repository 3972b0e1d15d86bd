"""The hosted CI definitions: pinned and least-privilege, lint-clean, and their steps work here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

from dataops.quality.ci_files import actionlint, gitlab_schema
from tests.conftest import ROOT, run_dataops

pytestmark = pytest.mark.integration
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
GITLAB = ROOT / ".gitlab-ci.yml"
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_actions_are_pinned_and_permissions_least_privilege() -> None:
    document = workflow()
    on = document[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request_target" not in on
    assert document["permissions"] == {"contents": "read"}
    uses = re.findall(r"uses:\s*(\S+)", WORKFLOW.read_text())
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses
    assert "${{ secrets." not in WORKFLOW.read_text()  # nothing a fork's pull request could read
    promote = document["jobs"]["promote-prod"]
    assert promote["needs"] == "ci" and promote["environment"] == "production"
    assert "refs/heads/main" in promote["if"] and "push" in promote["if"]
    # The prod runner's checkout removes ignored files (.venv): the job installs the toolkit
    # before it uses it, and keeps the platform's state outside the workspace.
    assert promote["steps"][0]["with"]["clean"] is True
    runs = [step.get("run", "") for step in promote["steps"]]
    assert runs.index("sudo -E make setup") < next(i for i, r in enumerate(runs) if ".venv" in r)
    assert promote["env"]["DATAOPS_STATE_DIR"].startswith("/var/lib/")
    gitlab = yaml.safe_load(GITLAB.read_text())
    assert gitlab["promote-prod"]["rules"][0]["when"] == "manual"
    script = gitlab["promote-prod"]["script"]
    assert script[0] == "make setup" and gitlab["promote-prod"]["variables"]["GIT_CLEAN_FLAGS"]
    assert gitlab["ci"]["artifacts"]["reports"]["junit"] == "reports/junit.xml"


def test_actionlint_and_the_gitlab_schema_pass_and_catch_mistakes(tmp_path: Path) -> None:
    cache = ROOT / ".dataops" / "cache"
    assert actionlint(cache, [WORKFLOW], 120) == []
    bad = tmp_path / "bad.yml"
    bad.write_text(
        WORKFLOW.read_text().replace(
            "run: sudo -E make up", 'run: echo "${{ github.event.pull_request.title }}"'
        )
    )
    findings = actionlint(cache, [bad], 120)
    assert [f["kind"] for f in findings] == ["expression"]
    assert "potentially untrusted" in str(findings[0]["message"])
    assert gitlab_schema(CHECK_JSONSCHEMA, GITLAB, 120) == []
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(GITLAB.read_text().replace("when: manual", "when: by-hand"))
    assert gitlab_schema(CHECK_JSONSCHEMA, broken, 120) != []


def test_the_workflow_run_steps_work_in_order_in_a_clean_checkout(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(checkout)], check=True)
    shims = tmp_path / "bin"
    shims.mkdir()
    sudo = shims / "sudo"  # root here: sudo just runs the command
    sudo.write_text('#!/bin/sh\n[ "$1" = "-E" ] && shift\nexec "$@"\n')
    sudo.chmod(0o755)
    summary = tmp_path / "step-summary.md"
    job = workflow()["jobs"]["ci"]
    env = {
        **os.environ,
        "PATH": f"{shims}:{os.environ['PATH']}",
        "BASE_REF": "",  # a push: lint compares with origin/main
        "DATAOPS_CI_BRANCH": "workflow-test",  # not main: no promotion
        "IMAGE_CACHE": str(tmp_path / "image-cache"),
        "GITHUB_STEP_SUMMARY": str(summary),
        "DATAOPS_STATE_DIR": str(ROOT / ".dataops"),  # the platform the suite runs
    }
    assert set(job["env"]) <= set(env)
    ran = []
    try:
        for step in job["steps"]:
            if "run" not in step:
                continue
            done = subprocess.run(
                ["bash", "-e", "-c", step["run"]],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            assert done.returncode == 0, f"{step['name']}:\n{output}"
            ran.append(step["name"])
    finally:
        # The deployments run releases, never a checkout's dags/: `make up` in the checkout
        # left their configuration pointing at nothing of the checkout.
        restored = run_dataops("up", "--no-install")
        assert restored.returncode == 0, restored.stderr[-2000:]
        for env in ("dev", "staging", "prod"):
            config = (ROOT / ".dataops" / "airflow" / env / "airflow.cfg").read_text()
            assert str(checkout) not in config and "dataops.airflow.bundle" in config
    assert ran == [
        "Set up the platform",
        "Load cached images",
        "Run the CI stages",
        "Summary",
        "Save images for the cache",
    ]
    assert "## dataops CI passed" in summary.read_text()
    assert (checkout / "reports" / "junit.xml").read_text().count("<testcase") == 9
    assert (tmp_path / "image-cache" / "base.tar").stat().st_size > 10_000_000
