"""A feature branch of a clone pushes a different transform image to dev and tries to release
it: main's build record (what main's next `release create` ships) stays byte for byte, and dev's
active release and history do not move."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import DATAOPS, ROOT
from tests.integration.conftest import dataops_ok
from tests.integration.test_ci_remote import git

pytestmark = pytest.mark.integration
BRANCH = "feature/branch-isolation"
MODEL = "dbt_project/models/staging/nycflights/stg_nycflights__planes.sql"
STATE = ROOT / ".dataops"


def on_branch(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dataops ARGS` in the clone, as a person on the branch runs it (no CI variable)."""
    env = {k: v for k, v in os.environ.items() if k != "DATAOPS_CI_BRANCH"}
    env |= {"DATAOPS_STATE_DIR": str(STATE), "DATAOPS_CONFIG": str(clone / "dataops.yml")}
    return subprocess.run(
        [*DATAOPS, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=1200
    )


def dev_release() -> tuple[str, int]:
    listed = json.loads(dataops_ok("release", "list", "--env", "dev", "--json").stdout)
    return listed["active"], max((e["id"] for e in listed["history"]), default=0)


def test_a_branch_build_and_release_leave_dev_and_mains_build_record_alone(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(ROOT), str(clone), cwd=tmp_path)
    git("checkout", "--quiet", "-b", BRANCH, cwd=clone)
    model = clone / MODEL  # a transform image only this branch has
    model.write_text("-- a branch-only change\n" + model.read_text())
    main_record = STATE / "builds" / "dev.json"
    record_before, active_file_before = (
        main_record.read_bytes(),
        (STATE / "releases" / "active-dev.json").read_bytes(),
    )
    release_before = dev_release()

    built = on_branch(clone, "images", "build", "--push", "--env", "dev", "--json")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    branch_record = Path(json.loads(built.stdout)["record"])
    assert branch_record.parent.parent == STATE / "builds" / "branches"
    mains = json.loads(record_before)["images"]["transform"]["digest"]
    assert json.loads(branch_record.read_text())["images"]["transform"]["digest"] != mains
    assert main_record.read_bytes() == record_before

    refused = on_branch(clone, "release", "create", "--env", "dev")
    assert refused.returncode == 2, refused.stdout[-3000:] + refused.stderr[-3000:]
    said = " ".join(refused.stderr.split())  # as printed, wrapped to the console's width
    assert BRANCH in said and "only main makes or activates a release" in said
    assert dev_release() == release_before  # same active release, not one history row more
    assert (STATE / "releases" / "active-dev.json").read_bytes() == active_file_before
    assert main_record.read_bytes() == record_before
