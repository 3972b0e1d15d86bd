"""Releases promoted dev -> staging -> prod by digest through the real registries.

The tests run in file order and build on each other: the dev release the pipelines fixture
made is checked, promoted to staging (refused first while its check failed), smoke-tested,
refused by prod without approval, promoted with it; then a tampered tag, a registry stopped
mid-copy, concurrent promotions and a rollback that the next DAG run follows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from dataops.clients.oci import RegistryClient
from dataops.core.config import load_config
from tests.conftest import DATAOPS, ROOT, run_dataops
from tests.integration.conftest import dataops_ok, promote_dev_to_prod, ready_secrets, releases_json

pytestmark = pytest.mark.integration
ACTIVE = ROOT / ".dataops" / "releases"


def history(env: str) -> dict:
    return json.loads(dataops_ok("release", "list", "--env", env, "--json").stdout)


def active_images(env: str) -> dict[str, str]:
    data = json.loads((ACTIVE / f"active-{env}.json").read_text())
    return {name: info["digest"] for name, info in data["images"].items()}


def registry(env: str, secrets: dict[str, str]) -> RegistryClient:
    port = {"dev": 5001, "staging": 5002, "prod": 5003}[env]
    auth = (
        None if env == "dev" else ("dataops", secrets[f"DATAOPS_REGISTRY_{env.upper()}_PASSWORD"])
    )
    return RegistryClient(f"http://127.0.0.1:{port}", auth, name=env)


def test_a_release_whose_check_failed_in_dev_is_refused(ready: psycopg.Connection) -> None:
    before = history("staging")["active"]
    dataops_ok("release", "check", "--env", "dev", "--name", "ci", "--failed", "--detail", "lint")
    refused = run_dataops("promote", "--to", "staging")
    assert refused.returncode == 1
    assert "check ci in dev: failed: lint" in refused.stderr
    after = history("staging")
    assert after["history"][-1]["action"] == "refused"
    assert after["history"][-1]["detail"]["gates"]["check ci in dev"] == "failed: lint"
    assert after["active"] == before


def test_promote_to_staging_copies_by_digest_and_activates(
    ready: psycopg.Connection, platform_up: dict[str, str]
) -> None:
    dataops_ok("release", "check", "--env", "dev", "--name", "ci", "--passed")
    result = json.loads(dataops_ok("promote", "--to", "staging", "--json").stdout)
    assert result["gates"]["check ci in dev"] == "passed"
    assert active_images("staging") == active_images("dev")
    staging = registry("staging", platform_up)
    for name, digest in active_images("dev").items():
        assert staging.manifest_digest(f"dataops/{name}", digest) == digest
    dataops_ok("release", "smoke", "--env", "staging")
    # Again: every blob is already there, nothing is sent.
    again = json.loads(dataops_ok("promote", "--to", "staging", "--json").stdout)
    assert again["bytes_sent"] == 0 and again["blobs_sent"] == 0 and again["blobs_skipped"] > 0


def test_a_promotion_resolves_each_environment_once(
    ready: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dataops promote --to staging`, run in this process with the config lookups counted:
    staging (from --to), dev (staging's promote_from) and prod (promoted from staging: it is
    told its new candidate) are each looked up once, and no secret is resolved twice, although
    gates, copy, migrations, activation and the candidate row all use them."""
    from dataops.cli.main import main
    from dataops.core.config import LoadedConfig
    from dataops.project.environment import Project

    lookups: list[str] = []
    secrets: list[tuple[str | int, ...]] = []
    projects: list[Project] = []
    real_environment, real_secret, real_of = (
        LoadedConfig.environment,
        LoadedConfig.resolve_secret,
        Project.of.__func__,  # type: ignore[attr-defined]
    )

    def environment(self: LoadedConfig, name: str):  # type: ignore[no-untyped-def]
        lookups.append(name)
        return real_environment(self, name)

    def resolve_secret(self: LoadedConfig, path, environ=None):  # type: ignore[no-untyped-def]
        secrets.append(tuple(path))
        return real_secret(self, path, environ)

    def of(cls: type[Project], loaded: LoadedConfig) -> Project:
        projects.append(real_of(cls, loaded))
        return projects[-1]

    monkeypatch.setattr(LoadedConfig, "environment", environment)
    monkeypatch.setattr(LoadedConfig, "resolve_secret", resolve_secret)
    monkeypatch.setattr(Project, "of", classmethod(of))
    monkeypatch.chdir(ROOT)
    main(["promote", "--to", "staging", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["env"] == "staging" and result["gates"]["check ci in dev"] == "passed"
    assert lookups == ["staging", "dev", "prod"]
    assert len(projects) == 1
    staging = projects[0].environment("staging")  # the same objects the command used
    assert staging.promotion_source is projects[0].environment("dev")
    assert lookups == ["staging", "dev", "prod"]  # asking again resolved nothing again
    assert len(secrets) == len(set(secrets)), secrets
    assert ("environments", "staging", "warehouse", "password_env") in secrets
    assert ("environments", "staging", "registry", "password_env") in secrets


def test_prod_needs_an_approval_by_an_approver(ready: psycopg.Connection) -> None:
    before = history("prod")["active"]
    unapproved = run_dataops("promote", "--to", "prod")
    assert unapproved.returncode == 1
    assert "approval: failed: this environment needs --approve" in unapproved.stderr
    stranger = run_dataops("promote", "--to", "prod", "--approve", "--approver", "mallory")
    assert stranger.returncode == 1
    assert "'mallory' may not approve" in stranger.stderr
    after = history("prod")
    assert [e["action"] for e in after["history"]][-2:] == ["refused", "refused"]
    assert after["active"] == before


def test_a_release_never_in_staging_is_refused_by_prod(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    # A second dev release (a changed extract image) that staging never ran.
    other = build_other_release(tmp_path)
    try:
        refused = run_dataops(
            "promote", "--to", "prod", "--release", other, "--approve", "--approver", "root"
        )
        assert refused.returncode == 1
        assert "was active in staging: failed: never active there" in refused.stderr
    finally:
        restore_dev_release()


def test_a_registry_stopped_mid_copy_leaves_the_previous_release_active(
    ready: psycopg.Connection,
) -> None:
    before = history("prod")["active"]
    process = subprocess.Popen(
        [*DATAOPS, "promote", "--to", "prod", "--approve", "--approver", "root"],
        cwd=ROOT,
        env={**os.environ, "DATAOPS_PAUSE": "promote.after_image", "DATAOPS_PAUSE_SECONDS": "8"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        assert process.stderr is not None
        seen = ""
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            seen += line
            if "pausepoint promote.after_image" in line:
                break
        else:
            pytest.fail(seen)
        dataops_ok("down", "registry-prod")  # the fault: prod's registry goes away mid-copy
        out, err = process.communicate(timeout=300)
    finally:
        dataops_ok("up", "registry-prod", "--no-install")
    assert process.returncode == 1, out + err
    assert "registry prod" in err and "failed after 3 tries" in err
    assert "the active release of prod is unchanged" in err
    after = history("prod")
    assert after["active"] == before
    assert after["history"][-1]["action"] == "promote-failed"

    # With the registry back, the same promotion completes and prod has dev's digests.
    dataops_ok("promote", "--to", "prod", "--approve", "--approver", "root")
    assert active_images("prod") == active_images("staging") == active_images("dev")
    show = subprocess.run(
        ["bash", str(ROOT / "infra" / "show-digests.sh")], capture_output=True, text=True
    )
    assert show.returncode == 0, show.stderr
    for line in show.stdout.splitlines():
        digests = {part.split("=")[1] for part in line.split()[1:]}
        assert len(digests) == 1, line


def test_a_tag_moved_behind_our_back_is_refused(
    ready: psycopg.Connection, platform_up: dict[str, str]
) -> None:
    loaded = load_config(ROOT / "dataops.yml")
    assert loaded.config.environments["staging"].gates.promote_from == "dev"
    record = json.loads((ACTIVE / "active-dev.json").read_text())["images"]["load"]
    staging = registry("staging", platform_up)
    raw, media, digest = staging.manifest("dataops/load", record["digest"])
    # Someone points the version tag of the load image at other content.
    impostor = staging.push_artifact("dataops/load", f"x{uuid.uuid4().hex[:8]}", b"{}", "a/b")
    impostor_raw, impostor_media, _ = staging.manifest("dataops/load", impostor)
    staging.put_manifest("dataops/load", record["content_hash"], impostor_raw, impostor_media)
    try:
        refused = run_dataops("promote", "--to", "staging")
        assert refused.returncode == 1
        assert "it was moved outside dataops" in refused.stderr
        assert history("staging")["history"][-1]["action"] == "promote-failed"
    finally:
        staging.put_manifest("dataops/load", record["content_hash"], raw, media)
    assert staging.manifest_digest("dataops/load", record["content_hash"]) == digest
    dataops_ok("promote", "--to", "staging")


def test_two_concurrent_promotions_end_with_a_consistent_history(
    ready: psycopg.Connection,
) -> None:
    count = len(history("staging")["history"])
    runs = [
        subprocess.Popen(
            [*DATAOPS, "promote", "--to", "staging", "--json"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    entries = history("staging")["history"][count:]
    assert [e["action"] for e in entries] == ["promoted", "promoted"]
    assert entries[0]["id"] < entries[1]["id"]
    assert len({e["release_id"] for e in entries}) == 1


def test_rollback_restores_the_previous_digests_and_the_next_run_uses_them(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    first = history("dev")["active"]
    first_extract = active_images("dev")["extract"]
    other = build_other_release(tmp_path)
    try:
        other_extract = active_images("dev")["extract"]
        assert other_extract != first_extract
        assert extract_image_of_a_run() == other_extract

        dataops_ok("rollback", "--env", "dev")
        after = history("dev")
        assert after["active"] == first != other
        assert after["history"][-1]["action"] == "rolled-back"
        assert active_images("dev")["extract"] == first_extract
        assert extract_image_of_a_run() == first_extract
    finally:
        restore_dev_release()


def test_prod_rollback_needs_approval_and_the_next_prod_run_uses_the_old_release(
    ready: psycopg.Connection, tmp_path: Path
) -> None:
    first = history("prod")["active"]
    first_extract = active_images("prod")["extract"]
    other = build_other_release(tmp_path)
    try:
        promote_dev_to_prod("rollback test")
        assert history("prod")["active"] == other
        assert extract_image_of_a_run("prod") == active_images("prod")["extract"] != first_extract

        refused = run_dataops("rollback", "--env", "prod")
        assert refused.returncode == 1
        assert "approval: failed: this environment needs --approve" in refused.stderr
        after = history("prod")
        assert after["active"] == other and after["history"][-1]["action"] == "refused"

        started = time.monotonic()
        rolled = dataops_ok("rollback", "--env", "prod", "--approve", "--approver", "root")
        print(f"prod rollback took {time.monotonic() - started:.1f}s: {rolled.stdout.strip()}")
        after = history("prod")
        assert after["active"] == first
        assert after["history"][-1]["action"] == "rolled-back"
        assert after["history"][-1]["detail"]["gates"]["approval"] == "passed: approved by root"
        # The deployment serves the old release's DAG code, and its runs use the old digests.
        record = json.loads(dataops_ok("release", "show", first, "--env", "prod", "--json").stdout)
        assert active_images("prod")["extract"] == first_extract
        assert record["record"]["images"]["extract"]["digest"] == first_extract
        assert extract_image_of_a_run("prod") == first_extract
        # Prod's Releases page shows what staging runs and prod no longer does: the other
        # release, with its extract image (the diff a release manager reads before approving).
        upstream = releases_json("prod", ready_secrets())["upstream"]
        assert upstream["from"] == "staging" and upstream["release_id"] == other
        assert upstream["pending"] is True
        other_extract = history_record("staging", other)["images"]["extract"]["digest"]
        assert {i["name"]: (i["upstream"], i["here"]) for i in upstream["images"]} == {
            "extract": (other_extract, first_extract)
        }
        assert any(c["check"] == "smoke" and c["ok"] for c in upstream["checks"])
    finally:
        restore_dev_release()


# -- helpers ---------------------------------------------------------------------------------
_BUILDS = ROOT / ".dataops" / "builds" / "dev.json"


def history_record(env: str, release_id: str) -> dict:
    shown = dataops_ok("release", "show", release_id, "--env", env, "--json").stdout
    return dict(json.loads(shown)["record"])


def build_other_release(tmp_path: Path) -> str:
    """A second dev release whose extract image differs (a changed requirements comment); it
    becomes active in dev. `restore_dev_release` undoes it."""
    shutil.copy(_BUILDS, tmp_path / "builds-dev.json")
    (ROOT / ".dataops" / "test-builds-backup.json").write_text(_BUILDS.read_text())
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dataops.yml", "requirements.lock"):
        shutil.copy(ROOT / name, project / name)
    for name in ("images", "src", "dbt_project", "migrations", "dags"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    requirements = project / "images" / "extract" / "requirements.in"
    requirements.write_text(requirements.read_text() + f"# release test {uuid.uuid4().hex}\n")
    env = {"DATAOPS_STATE_DIR": str(ROOT / ".dataops")}
    config = project / "dataops.yml"
    dataops_ok("images", "build", "extract", "--push", "--env", "dev", config=config, env=env)
    created = dataops_ok("release", "create", "--env", "dev", "--json", config=config, env=env)
    return json.loads(created.stdout)["release"]


def restore_dev_release() -> None:
    backup = ROOT / ".dataops" / "test-builds-backup.json"
    if backup.exists():
        _BUILDS.write_text(backup.read_text())
        backup.unlink()
    dataops_ok("release", "create", "--env", "dev")


def extract_image_of_a_run(env: str = "dev") -> str:
    """Run the airlines pipeline in ENV; the digest its extract container ran, from the task
    log (the ref there is ENV's registry's)."""
    dataops_ok("run", "airlines", "--env", env, "--date", "2013-01-01")
    logs = sorted(
        (ROOT / ".dataops" / "airflow" / env / "logs" / "dag_id=airlines").glob(
            "run_id=*/task_id=extract/attempt=*.log"
        ),
        key=lambda p: p.stat().st_mtime,
    )
    text = logs[-1].read_text()
    port = {"dev": 5001, "staging": 5002, "prod": 5003}[env]
    marker = f"127.0.0.1:{port}/dataops/extract@"
    start = text.index(marker) + len(marker)
    return text[start : start + 71]
