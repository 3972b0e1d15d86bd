"""A feature branch never changes what main releases or what a shared environment runs.

Each test works in a real git repository (the reference dataops.yml, committed on main) with a
real state dir: a branch's build goes to its own build record and leaves main's byte for byte;
`release create`, `promote` and `rollback` on the branch are refused before any registry,
warehouse or Airflow is asked anything; on main the same `release create` goes through.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dataops.ci.stages import ProjectPlatform
from dataops.cli.main import main
from dataops.clients import dbt
from dataops.core.config import load_config
from dataops.errors import DataOpsError, ExitCode, NotReadyError
from dataops.project.environment import Environment, Project
from dataops.release.images import ImageBuild, record_builds
from dataops.release.releases import Releases
from tests.conftest import PROJECT

ROOT = PROJECT  # the fixture copy of the reference project
BRANCH = "feature/orders-v2"
DIGEST = "sha256:" + "a" * 64
MAIN_RECORD = {
    "images": {
        name: {
            "ref": f"127.0.0.1:5001/dataops/{name}@{DIGEST}",
            "digest": DIGEST,
            "content_hash": h,
        }
        for name, h in (("extract", "e1"), ("load", "l1"), ("transform", "t1"))
    },
    "updated_at": "2026-01-01T00:00:00+00:00",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


class Calls:
    """Every registry, warehouse and Airflow client a command asks for, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[str] = []
        self.pushed: list[str] = []
        for method in ("registry", "connect", "airflow"):
            monkeypatch.setattr(Environment, method, self._client(method))
        monkeypatch.setattr(dbt, "manifest_of_image", self._manifest)

    def _client(self, method: str) -> Any:
        def make(env: Environment, *args: Any) -> Any:
            self.made.append(f"{method} {env.name}")
            return FakeClient(self, env.name)

        return make

    def _manifest(self, folder: Path, ref: str, report: Any) -> Path:
        self.made.append(f"manifest of {ref}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").write_text("{}")
        return folder / "manifest.json"


class FakeClient:
    """Registry, warehouse connection and Airflow client in one: what `release create` needs
    of each (an empty history, a push that returns an id, an Airflow that is not running)."""

    def __init__(self, calls: Calls, env: str) -> None:
        self.calls, self.env = calls, env
        self.row: Any = None
        self.rows: list[Any] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None

    def push_artifact(self, repo: str, tag: str, *args: Any) -> str:
        self.calls.pushed.append(f"{self.env} {repo}:{tag}")
        return "sha256:" + "c" * 64

    def execute(self, sql: str, params: Any = None) -> FakeClient:
        self.calls.made.append(f"sql {self.env}: {' '.join(sql.split()[:3])}")
        self.row = ("dataops.release_history",) if "to_regclass" in sql else None
        self.rows = []
        return self

    def fetchone(self) -> Any:
        return self.row

    def fetchall(self) -> list[Any]:
        return self.rows

    def dags(self) -> list[dict[str, Any]]:
        raise NotReadyError(f"{self.env}'s Airflow is not running")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The reference dataops.yml committed on main, main's dev build record in the state dir,
    and the checkout on a feature branch."""
    root = tmp_path / "project"
    (root / "dags").mkdir(parents=True)
    (root / "migrations").mkdir()
    shutil.copy(ROOT / "dataops.yml", root / "dataops.yml")
    (root / "dags" / "README.md").write_text("no pipelines\n")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init")
    git(root, "checkout", "--quiet", "-b", BRANCH)
    monkeypatch.setenv("DATAOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DATAOPS_CONFIG", str(root / "dataops.yml"))
    monkeypatch.delenv("DATAOPS_CI_BRANCH", raising=False)
    main_record = tmp_path / "state" / "builds" / "dev.json"
    main_record.parent.mkdir(parents=True)
    main_record.write_text(json.dumps(MAIN_RECORD, indent=2, sort_keys=True) + "\n")
    return root


def project(root: Path) -> Project:
    return Project.of(load_config(root / "dataops.yml"))


def snapshot(state: Path) -> dict[str, bytes]:
    return {str(p.relative_to(state)): p.read_bytes() for p in state.rglob("*") if p.is_file()}


def test_a_branch_build_writes_its_own_record_and_leaves_mains_byte_identical(
    repo: Path,
) -> None:
    branch = project(repo)
    dev = branch.environment("dev")
    before = dev.main_builds_file.read_bytes()
    built = ImageBuild("transform", "t2", "dataops/transform:t2", True, True, "r/transform", DIGEST)
    written = record_builds(dev, [built])
    assert dev.main_builds_file.read_bytes() == before
    assert written == dev.builds_file
    assert written.parent.parent == branch.state.root / "builds" / "branches"
    assert written.parent.name.startswith("feature-orders-v2-")  # the name is safe as a folder
    assert json.loads(written.read_text())["images"]["transform"]["content_hash"] == "t2"
    # What reads a build record reads the branch's: CI's build facts, release create's input.
    assert ProjectPlatform(branch).built_images("dev")["transform"]["content_hash"] == "t2"
    # What dev runs before any release is main's build, not the branch's.
    assert dev.running_images()["transform"]["content_hash"] == "t1"
    # Back on main, the same commands read and write main's record.
    git(repo, "checkout", "--quiet", "main")
    on_main = project(repo)
    assert on_main.environment("dev").builds_file == dev.main_builds_file
    assert ProjectPlatform(on_main).built_images("dev")["transform"]["content_hash"] == "t1"


@pytest.mark.parametrize(
    ("command", "what"),
    [
        (lambda r, p: r.create(p.environment("dev")), "release create --env dev"),
        (lambda r, p: r.promote(p.environment("staging"), None, True, "root"), "promote"),
        (lambda r, p: r.rollback(p.environment("dev"), None), "rollback --env dev"),
    ],
    ids=["create", "promote", "rollback"],
)
def test_a_release_change_on_a_branch_is_refused_before_anything_is_touched(
    repo: Path, monkeypatch: pytest.MonkeyPatch, command: Any, what: str
) -> None:
    calls = Calls(monkeypatch)
    branch = project(repo)
    record_builds(
        branch.environment("dev"), [ImageBuild("transform", "t2", "l", True, True, "r", DIGEST)]
    )
    state = snapshot(branch.state.root)
    with pytest.raises(DataOpsError) as refused:
        command(Releases(branch, lambda message: None), branch)
    assert refused.value.exit_code == ExitCode.USAGE
    assert what in refused.value.reason and repr(BRANCH) in refused.value.reason
    assert "merge it into main" in str(refused.value.instruction)
    assert "dataops ci run" in str(refused.value.instruction)
    assert calls.made == [] and calls.pushed == []  # no registry, warehouse, Airflow or dbt
    assert snapshot(branch.state.root) == state  # no build record or active release written


def test_the_cli_refuses_release_create_on_a_branch_with_exit_2_naming_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = Calls(monkeypatch)
    with pytest.raises(SystemExit) as exited:
        main(["release", "create", "--env", "dev"])
    assert exited.value.code == ExitCode.USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert BRANCH in err and "only main" in err
    assert calls.made == []


@pytest.mark.parametrize(
    "command",
    [
        ["release", "check", "--env", "dev", "--name", "ci", "--passed"],
        ["release", "smoke", "--env", "staging"],
        ["migrate", "apply", "--env", "dev"],
        ["migrate", "baseline", "--env", "dev", "--version", "1"],
        ["migrate", "repair", "--env", "dev", "--version", "1"],
    ],
)
def test_the_cli_refuses_to_migrate_or_check_shared_dev_from_a_branch(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    calls = Calls(monkeypatch)
    with pytest.raises(SystemExit) as exited:
        main(command)
    assert exited.value.code == ExitCode.USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert f"{' '.join(command[:2])} --env {command[3]} refused" in err and BRANCH in err
    assert calls.made == []


def test_a_detached_head_is_not_main_unless_ci_names_the_branch(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "checkout", "--quiet", "--detach", "main")
    calls = Calls(monkeypatch)
    with pytest.raises(DataOpsError) as refused:
        Releases(project(repo), lambda m: None).create(project(repo).environment("dev"))
    assert "detached HEAD" in refused.value.reason
    assert "DATAOPS_CI_BRANCH" in str(refused.value.instruction)
    assert calls.made == []
    # main's CI job (a detached checkout of main's commit) names its branch
    monkeypatch.setenv("DATAOPS_CI_BRANCH", "main")
    assert project(repo).branch == "main"
    assert project(repo).environment("dev").builds_file.name == "dev.json"
    assert project(repo).environment("dev").builds_file.parent.name == "builds"


def test_on_main_release_create_goes_through_and_records_the_branch(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "checkout", "--quiet", "main")
    calls = Calls(monkeypatch)
    logged: list[dict[str, Any]] = []
    monkeypatch.setattr(
        Releases, "_log", staticmethod(lambda conn, rid, action, ok, detail: logged.append(detail))
    )
    on_main = project(repo)
    release_id, record, new = Releases(on_main, lambda m: None).create(on_main.environment("dev"))
    assert new and calls.pushed == [f"dev dataops/releases:{record.tag()}"]
    assert f"manifest of {MAIN_RECORD['images']['transform']['ref']}" in calls.made  # main's build
    assert record.images["transform"].tag == "t1"
    assert logged[0]["branch"] == "main"
    active = json.loads(on_main.environment("dev").active_release_file.read_text())
    assert active["release"] == release_id


@pytest.mark.parametrize(("made_on", "offered"), [("feature/x", False), ("main", True)])
def test_only_a_release_activated_from_main_becomes_stagings_candidate(
    repo: Path, monkeypatch: pytest.MonkeyPatch, made_on: str, offered: bool
) -> None:
    from dataops.core.promotion import CANDIDATE, HistoryEntry
    from dataops.core.release_record import ReleaseRecord

    Calls(monkeypatch)
    rows: list[str] = []
    created = HistoryEntry(1, DIGEST, "created", "ci", "now", True, {"branch": made_on})
    monkeypatch.setattr(Releases, "history", lambda self, env, rid=None: [created])
    monkeypatch.setattr(
        Releases, "_log", staticmethod(lambda conn, rid, action, ok, detail: rows.append(action))
    )
    record = ReleaseRecord(
        project="p",
        git_commit="c",
        images={},
        dbt_manifest_sha256="m",
        migration_version=None,
    )
    branch = project(repo)
    Releases(branch, lambda m: None)._offer(branch.environment("dev"), DIGEST, record)
    assert rows == ([CANDIDATE] if offered else [])
