"""The shipped files pass `dataops lint --all` with no warehouse reachable (the CI lint
stage lints only what changed; this keeps the whole shipped project clean)."""

from __future__ import annotations

from tests.conftest import run_dataops
from tests.unit.quality.test_lint import NO_WAREHOUSE


def test_shipped_files_are_lint_clean_without_a_warehouse() -> None:
    result = run_dataops("lint", "--all", env=NO_WAREHOUSE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 0 finding(s)" in result.stderr
    assert "sql" in result.stderr and "dockerfiles" in result.stderr
