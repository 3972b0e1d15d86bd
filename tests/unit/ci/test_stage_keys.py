"""`dataops ci run` skips a stage whose key (the content it reads) is unchanged since it passed,
and runs it again when the key changes or what the pass produced is gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dataops.ci import stages as ci_stages
from dataops.ci.stages import STAGES, CiContext, Platform, Stage, run_stages, stage_key


class FakePlatform(Platform):
    def __init__(self) -> None:
        self.running: dict[str, Any] = {}
        self.built: dict[str, Any] = {}
        self.active: dict[str, str] = {}
        self.registry: set[str] = set()

    def running_images(self, env: str) -> dict[str, Any]:
        return self.running

    def built_images(self, env: str) -> dict[str, Any]:
        return self.built

    def active_release(self, env: str) -> str | None:
        return self.active.get(env)

    def has_image(self, env: str, name: str, tag: str, digest: str) -> bool:
        return digest in self.registry


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name, text in {
        "dataops.yml": "project: x\n",
        "requirements.lock": "pkg==1\n",
        "src/dataops/x.py": "x = 1\n",
        "tests/unit/test_x.py": "def test(): pass\n",
        "tests/project/test_project.py": "def test(): pass\n",
        "migrations/V1__a.sql": "create table a (id int);\n",
        "tests/integration/test_y.py": "def test(): pass\n",
        "analytics/dbt_project.yml": "name: acme\n",
        "analytics/models/orders.sql": "select 1 as id\n",
        "analytics/macros/m.sql": "{% macro m() %}1{% endmacro %}\n",
        "dags/pipelines/a.yml": "pipeline: a\n",
        "README.md": "# x\n",
    }.items():
        write(root, name, text)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    return root


def context(repo: Path, platform: Platform | None = None, **kw: Any) -> CiContext:
    return CiContext(
        repo,
        "main",
        "feature",
        platform=platform or FakePlatform(),
        dbt_dir="analytics",
        cache_dir=repo.parent / "cache",
        commit="c0ffee",
        **kw,
    )


def stage(name: str) -> Stage:
    return next(s for s in STAGES if s.name == name)


def test_a_model_change_changes_lint_dbt_and_unit_keys_but_not_migrate(repo: Path) -> None:
    ctx = context(repo)
    before = {s.name: stage_key(ctx, s) for s in STAGES}
    write(repo, "analytics/models/orders.sql", "select 2 as id\n")
    after = {s.name: stage_key(ctx, s) for s in STAGES}
    changed = {name for name in before if before[name] != after[name]}
    # The project's tests check that every spec's dbt selection still matches a node.
    assert {"validate", "lint", "unit", "build", "integration", "release"} <= changed
    assert "migrate" not in changed and "smoke" not in changed


def test_a_migration_change_does_not_rerun_the_project_tests(repo: Path) -> None:
    ctx = context(repo)
    before = {s.name: stage_key(ctx, s) for s in STAGES}
    write(repo, "migrations/V1__a.sql", "create table a (id bigint);\n")
    after = {s.name: stage_key(ctx, s) for s in STAGES}
    changed = {name for name in before if before[name] != after[name]}
    assert {"validate", "lint", "migrate"} <= changed and "unit" not in changed


def test_a_macro_project_test_script_or_toolkit_change_reruns_the_unit_stage(repo: Path) -> None:
    ctx = context(repo)
    unit = stage("unit")
    first = stage_key(ctx, unit)
    write(repo, "analytics/macros/m.sql", "{% macro m() %}2{% endmacro %}\n")
    second = stage_key(ctx, unit)
    write(repo, "requirements.lock", "pkg==2\n")
    third = stage_key(ctx, unit)
    write(repo, "src/dataops/new.py", "untracked = True\n")  # untracked, not ignored: read
    fourth = stage_key(ctx, unit)
    write(repo, "tests/project/test_project.py", "def test(): assert 1\n")
    fifth = stage_key(ctx, unit)
    write(repo, "scripts/fetch.py", "print(1)\n")  # the project's scripts, which its tests test
    sixth = stage_key(ctx, unit)
    assert len({first, second, third, fourth, fifth, sixth}) == 6
    write(repo, "tests/integration/test_y.py", "def test(): assert 1\n")
    write(repo, "tests/unit/test_x.py", "def test(): assert 1\n")  # the toolkit's own tests
    write(repo, "README.md", "# y\n")
    assert stage_key(ctx, unit) == sixth  # none is read by the project's tests


def test_lint_is_keyed_by_what_base_resolves_to(repo: Path) -> None:
    unit = stage("lint")
    assert stage_key(context(repo, base_commit="a" * 40), unit) != stage_key(
        context(repo, base_commit="b" * 40), unit
    )


def trivial(monkeypatch: pytest.MonkeyPatch, marker: Path, **kw: Any) -> None:
    """One cached stage whose command appends to `marker` (so a run is visible)."""
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('ran\\n')"]
    only = Stage("unit", "touch", lambda c: command, reads=lambda c: ("analytics/",), **kw)
    monkeypatch.setattr(ci_stages, "STAGES", (only,))


def runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def test_a_pass_is_skipped_with_its_run_named_and_a_change_runs_again(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "marker"
    trivial(monkeypatch, marker)
    lines: list[str] = []
    ctx = context(repo)
    first = run_stages(ctx, tmp_path / "runs" / "r1", None, lines.append, "c0ffee")
    assert first.stages[0].status == "passed" and runs(marker) == 1
    second = run_stages(ctx, tmp_path / "runs" / "r2", None, lines.append, "c0ffee")
    assert second.ok and second.stages[0].status == "skipped" and runs(marker) == 1
    assert "unchanged since run r1 passed it (commit c0ffee" in second.stages[0].note
    assert any(line.startswith("- unit         skipped: unchanged since run r1") for line in lines)
    write(repo, "analytics/models/orders.sql", "select 3 as id\n")
    third = run_stages(ctx, tmp_path / "runs" / "r3", None, lines.append, "c0ffee")
    assert third.stages[0].status == "passed" and runs(marker) == 2
    # --no-cache runs it although r3 passed with this very key
    forced = run_stages(
        context(repo, use_cache=False), tmp_path / "runs" / "r4", None, lines.append, "c0ffee"
    )
    assert forced.stages[0].status == "passed" and runs(marker) == 3


def test_a_failure_is_never_cached_and_a_torn_record_runs_the_stage(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = Stage(
        "unit",
        "fail",
        lambda c: [sys.executable, "-c", "raise SystemExit(1)"],
        reads=lambda c: ("analytics/",),
    )
    monkeypatch.setattr(ci_stages, "STAGES", (failing,))
    ctx = context(repo)
    for n in (1, 2):
        result = run_stages(ctx, tmp_path / "runs" / f"f{n}", None, lambda line: None, "c")
        assert result.stages[0].status == "failed"
    assert not (repo.parent / "cache" / "unit").exists()
    marker = tmp_path / "marker"
    trivial(monkeypatch, marker)
    run_stages(ctx, tmp_path / "runs" / "p1", None, lambda line: None, "c")
    (record,) = (repo.parent / "cache" / "unit").iterdir()
    record.write_text('{"run": "p1", "no')  # an interrupted write
    again = run_stages(ctx, tmp_path / "runs" / "p2", None, lambda line: None, "c")
    assert again.stages[0].status == "passed" and runs(marker) == 2


def test_a_build_whose_image_left_the_registry_is_built_again(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = FakePlatform()
    output = '{"images": [{"name": "load", "content_hash": "h1", "digest": "sha256:d1"}]}'
    build = Stage(
        "build",
        "build",
        lambda c: [sys.executable, "-c", f"print({output!r})"],
        reads=lambda c: ("analytics/",),
        stale=stage("build").stale,
    )
    monkeypatch.setattr(ci_stages, "STAGES", (build,))
    platform.built = {"load": {"digest": "sha256:d1", "content_hash": "h1"}}
    platform.registry = {"sha256:d1"}
    ctx = context(repo, platform)
    lines: list[str] = []
    assert run_stages(ctx, tmp_path / "r" / "1", None, lines.append, "c").stages[0].status == (
        "passed"
    )
    assert run_stages(ctx, tmp_path / "r" / "2", None, lines.append, "c").stages[0].status == (
        "skipped"
    )
    platform.registry = set()  # the registry was wiped
    third = run_stages(ctx, tmp_path / "r" / "3", None, lines.append, "c")
    assert third.stages[0].status == "passed"
    assert any("registry no longer has load@sha256:d1" in line for line in lines)


def test_platform_facts_skip_slim_ci_and_promotion(repo: Path) -> None:
    platform = FakePlatform()
    ctx = context(repo, platform)
    integration, promote = stage("integration"), stage("promote")
    platform.running = {"transform": {"content_hash": "abc123", "digest": "sha256:1"}}
    platform.built = {"transform": {"content_hash": "def456", "digest": "sha256:2"}}
    assert integration.done_already(ctx) is None  # this build's dbt project differs
    platform.built = {"transform": {"content_hash": "abc123", "digest": "sha256:1"}}
    assert "already runs this dbt project (transform image abc123)" in str(
        integration.done_already(ctx)
    )
    platform.active = {"dev": "sha256:" + "1" * 64, "staging": "sha256:" + "2" * 64}
    assert promote.done_already(ctx) is None
    platform.active["staging"] = platform.active["dev"]
    assert "staging already runs dev's release 111111111111" in str(promote.done_already(ctx))
