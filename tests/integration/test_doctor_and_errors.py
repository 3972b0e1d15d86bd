"""`dataops doctor` and the errors a person sees, through the real command."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_dataops
from tests.unit.core.test_yaml_loader import billion_laughs


def held_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def config_copy(tmp_path: Path, replace: dict[str, str]) -> Path:
    text = (ROOT / "dataops.yml").read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "dataops.yml"
    path.write_text(text)
    return path


def test_doctor_reports_a_missing_program_with_its_fix(tmp_path: Path) -> None:
    # A PATH on which every required program but docker-registry can be found.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("skopeo", "setfacl", "git", "docker"):
        found = shutil.which(name)
        if found:
            (bindir / name).symlink_to(found)
    result = run_dataops("doctor", env={"PATH": str(bindir)})
    assert result.returncode == 3, result.stdout + result.stderr
    assert "docker-registry  MISSING" in result.stdout
    assert (
        "docker-registry: apt-get install -y --no-install-recommends docker-registry"
        in result.stdout
    )
    assert "Traceback" not in result.stderr


def test_doctor_json_and_a_port_held_by_someone_else(tmp_path: Path) -> None:
    with held_port() as sock:
        port = sock.getsockname()[1]
        config = config_copy(tmp_path, {"127.0.0.1:8082": f"127.0.0.1:{port}"})
        result = run_dataops(
            "doctor", "--json", config=config, env={"DATAOPS_STATE_DIR": str(tmp_path / "state")}
        )
    assert result.returncode == 3
    payload = json.loads(result.stdout)
    check = next(c for c in payload["checks"] if c["check"] == f"port {port}")
    assert not check["ok"]
    assert f"pid {os.getpid()}" in check["detail"]
    assert "environments.prod.airflow.url" in check["fix"]
    assert payload["ready"] is False


def test_up_refuses_a_port_in_use_and_names_the_holder(tmp_path: Path) -> None:
    with held_port() as sock:
        port = sock.getsockname()[1]
        config = config_copy(tmp_path, {"127.0.0.1:5001": f"127.0.0.1:{port}"})
        result = run_dataops(
            "up",
            "registry-dev",
            "--no-install",
            config=config,
            env={"DATAOPS_STATE_DIR": str(tmp_path / "state")},
        )
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"port 127.0.0.1:{port} is already in use by pid {os.getpid()}" in result.stderr
    assert "environments.dev.registry.address" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("laughs", billion_laughs(), "billion laughs"),
        ("deep", "version: " + "[" * 1100 + "]" * 1100 + "\n", "nesting is deeper than 64 levels"),
        ("python", "version: !!python/object/apply:os.system ['true']\n", "is not allowed"),
        (
            "unknown",
            (ROOT / "dataops.yml").read_text().replace("project:", "projekt:"),
            "unknown key 'projekt'; did you mean 'project'?",
        ),
    ],
)
def test_bad_config_is_a_usage_error_never_a_traceback(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / "dataops.yml"
    path.write_text(text)
    result = run_dataops("validate", config=path, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert f"{path}:" in result.stderr or "dataops.yml:" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_accepts_the_shipped_config() -> None:
    result = run_dataops("validate")
    assert result.returncode == 0, result.stderr
    assert "environments dev, staging, prod" in result.stdout


def test_validate_reports_a_bad_spec_with_file_line_and_field(tmp_path: Path) -> None:
    import shutil

    shutil.copy(ROOT / "dataops.yml", tmp_path / "dataops.yml")
    shutil.copytree(ROOT / "dags", tmp_path / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    spec = tmp_path / "dags" / "pipelines" / "airlines.yml"
    spec.write_text(spec.read_text().replace("  key: [carrier]", "  key: [carier]"))
    result = run_dataops("validate", config=tmp_path / "dataops.yml")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "dags/pipelines/airlines.yml:" in result.stderr
    assert "key/partition column 'carier' is not in `columns`" in result.stderr
    assert "ok dags/pipelines/flights.yml" in result.stdout


def project_copy(dest: Path) -> None:
    """What `dataops validate` reads of the project, copied to `dest`."""
    import shutil

    for name in ("dataops.yml", "dbt_project", "migrations"):
        source = ROOT / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, dest / name)
    shutil.copytree(ROOT / "dags", dest / "dags", ignore=shutil.ignore_patterns("__pycache__"))


def test_validate_refuses_a_task_timeout_a_task_queued_ahead_could_outwait(
    tmp_path: Path,
) -> None:
    project_copy(tmp_path)
    spec = tmp_path / "dags" / "pipelines" / "flights.yml"
    spec.write_text(spec.read_text().replace("timeout_minutes: 20", "timeout_minutes: 120"))
    result = run_dataops("validate", config=tmp_path / "dataops.yml")
    assert result.returncode == 2, result.stdout + result.stderr
    line = spec.read_text().splitlines().index("timeout_minutes: 120") + 1
    assert (
        f"dags/pipelines/flights.yml:{line}:18: timeout_minutes: a task may run 120 min, so "
        "in staging (queue_ahead: 1, 2 slot(s)) a task of queue 'default' may wait queued up "
        "to 7800 s (with 600 s to spare), past staging's task_queued_timeout_seconds: 3600 "
        f"({tmp_path / 'dataops.yml'}:" in result.stderr
    )
    assert "raise task_queued_timeout_seconds to at least 7800" in result.stderr
    assert result.stderr.count("error:") == 1  # dev and prod (LocalExecutor) queue nothing ahead
    # Either fix passes: no task queued ahead, or a queued timeout that covers the wait.
    config = tmp_path / "dataops.yml"
    text = config.read_text()
    workers = "        workers:\n          - {name: worker-1"
    assert workers in text
    config.write_text(text.replace(workers, "        queue_ahead: 0\n" + workers))
    assert run_dataops("validate", config=config).returncode == 0
    config.write_text(
        text.replace(workers, "        task_queued_timeout_seconds: 7800\n" + workers)
    )
    assert run_dataops("validate", config=config).returncode == 0


def test_validate_refuses_a_queue_no_celery_worker_serves(tmp_path: Path) -> None:
    project_copy(tmp_path)
    spec = tmp_path / "dags" / "pipelines" / "flights.yml"
    spec.write_text(spec.read_text().replace("queue: {load: heavy}", "queue: {load: gpu}"))
    result = run_dataops("validate", config=tmp_path / "dataops.yml")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = spec.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.startswith("queue: {load: gpu}"))
    assert (
        f"dags/pipelines/flights.yml:{line}:15: queue: task load goes to queue 'gpu', which no "
        "Celery worker of staging serves (the workers at " in result.stderr
    )
    assert "serve default, heavy); add it to a worker's queues" in result.stderr
    assert "prod" not in result.stderr.split("serves")[0]  # LocalExecutor runs every queue


def test_validate_refuses_a_smoke_stage_naming_a_deleted_pipeline(tmp_path: Path) -> None:
    project_copy(tmp_path)
    (tmp_path / "dags" / "pipelines" / "planes.yml").unlink()
    (tmp_path / "dags" / "pipeline_planes.py").unlink()
    result = run_dataops("validate", config=tmp_path / "dataops.yml")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "environments.staging.smoke.stages: 'planes' is no pipeline of this project" in (
        result.stderr
    )
    assert "add dags/pipelines/planes.yml" in result.stderr


def test_validate_refuses_a_dbt_select_that_selects_no_model(tmp_path: Path) -> None:
    project_copy(tmp_path)
    spec = tmp_path / "dags" / "pipelines" / "planes.yml"
    text = spec.read_text()
    assert 'select: "stg_nycflights__planes"' in text
    spec.write_text(text.replace("stg_nycflights__planes", "stg_nycflights__plane"))
    result = run_dataops("validate", config=tmp_path / "dataops.yml")
    assert result.returncode == 2, result.stdout + result.stderr
    line = spec.read_text().splitlines().index('  select: "stg_nycflights__plane"') + 1
    assert (
        f"dags/pipelines/planes.yml:{line}:11: dbt.select: 'stg_nycflights__plane' selects no "
        "node of dbt project 'flights' (did you mean stg_nycflights__planes?)"
    ) in result.stderr
    assert "Traceback" not in result.stderr
