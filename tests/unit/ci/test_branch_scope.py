"""`dataops ci run` hands its branch to every stage's command, so a branch's build goes to the
branch's own build record and its stages read that record, whatever git says of the checkout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dataops.ci import stages as ci_stages
from dataops.ci.stages import CiContext, Stage, run_stages

PRINT_BRANCH = "import os; print(os.environ['DATAOPS_CI_BRANCH'])"


@pytest.mark.parametrize("branch", ["feature/orders-v2", "main"])
def test_each_stage_command_acts_for_the_runs_branch(
    branch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAOPS_CI_BRANCH", "something-else")  # the run's own branch wins
    probe = Stage("probe", "print the branch", lambda c: [sys.executable, "-c", PRINT_BRANCH])
    monkeypatch.setattr(ci_stages, "STAGES", (probe,))
    ctx = CiContext(root=tmp_path, base="origin/main", branch=branch)
    run = run_stages(ctx, tmp_path / "run", None, lambda line: None, "c0ffee")
    assert run.ok
    assert (tmp_path / "run" / "probe.log").read_text().splitlines()[1] == branch
