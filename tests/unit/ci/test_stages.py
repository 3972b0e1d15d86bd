"""Which CI stages may change the shared dev environment: main's only."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops.ci.stages import STAGES, CiContext


def argv_of(branch: str) -> dict[str, list[str] | None]:
    ctx = CiContext(root=Path("/checkout"), base="origin/main", branch=branch)
    return {stage.name: stage.argv(ctx) for stage in STAGES}


def test_main_migrates_dev_releases_into_it_and_promotes() -> None:
    stages = argv_of("main")
    assert stages["migrate"] is not None and "apply" in stages["migrate"]
    assert stages["release"] is not None and "create" in stages["release"]
    assert stages["promote"] is not None and "staging" in stages["promote"]
    assert stages["smoke"] is not None and "smoke" in stages["smoke"]


@pytest.mark.parametrize("branch", ["feature/orders-v2", "fix-typo", "HEAD", "mainline"])
def test_any_other_branch_plans_and_never_activates(branch: str) -> None:
    stages = argv_of(branch)
    assert stages["migrate"] is not None
    assert "plan" in stages["migrate"] and "apply" not in stages["migrate"]
    assert stages["release"] is None and stages["promote"] is None and stages["smoke"] is None
    ctx = CiContext(root=Path("/checkout"), base="origin/main", branch=branch)
    release = next(s for s in STAGES if s.name == "release")
    assert "never changes what dev runs" in release.skip_note(ctx)
    # Its own scope only: slim dbt CI still runs (in ci_<branch>).
    assert stages["integration"] is not None


def test_the_migrate_note_tells_a_plan_from_an_apply() -> None:
    from dataops.ci.stages import _migrate_note

    plan = '[{"script": "V3__orders.sql", "checksum": "ab", "statements": ["select 1"]}]'
    apply = '[{"script": "V3__orders.sql", "checksum": "ab", "statements": [], "ms": 12}]'
    assert _migrate_note(plan) == "would apply V3__orders.sql (plan only)"
    assert _migrate_note(apply) == "applied V3__orders.sql"
    assert _migrate_note("[]") == "nothing to apply"
