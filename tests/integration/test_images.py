"""Task images: lint, content-addressed builds, pushes by digest, nothing secret inside."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, run_dataops

pytestmark = pytest.mark.integration
HADOLINT = Path(sys.executable).parent / "hadolint"
NAMES = ("extract", "load", "transform")


@pytest.fixture(scope="module")
def built(platform_up: dict[str, str]) -> dict[str, dict[str, str]]:
    result = run_dataops("images", "build", "--push", "--env", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((ROOT / ".dataops" / "builds" / "dev.json").read_text())["images"]


def inspect(ref: str) -> dict:
    out = subprocess.run(
        ["docker", "image", "inspect", ref], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)[0]


def test_dockerfiles_are_hadolint_clean() -> None:
    images = ROOT / "images"
    files = sorted(str(p) for p in [*images.glob("*/Dockerfile"), *images.glob("*.Dockerfile")])
    assert [Path(f).name for f in files] == ["task.Dockerfile", "Dockerfile"], files
    result = subprocess.run([str(HADOLINT), *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run([str(HADOLINT), str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the :latest tag


def test_images_are_non_root_labelled_and_pinned_by_digest(
    built: dict[str, dict[str, str]],
) -> None:
    assert set(NAMES) <= set(built)
    for name in NAMES:
        ref = built[name]["ref"]
        assert ref.startswith(f"127.0.0.1:5001/dataops/{name}@sha256:")
        config = inspect(f"dataops/{name}:{built[name]['content_hash']}")["Config"]
        assert config["User"] == "10001:10001"
        labels = config["Labels"]
        # extract and load share images/task.Dockerfile; TASK names each one.
        assert labels["org.opencontainers.image.title"] == f"dataops-{name}"
        for key in ("revision", "created", "version"):
            assert labels[f"org.opencontainers.image.{key}"] not in ("", "unknown"), (name, key)
        # The registry serves the recorded digest for the content-hash tag.
        head = httpx.head(
            f"http://127.0.0.1:5001/v2/dataops/{name}/manifests/{built[name]['content_hash']}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )
        assert head.headers["docker-content-digest"] == built[name]["digest"]


def test_no_secret_is_in_any_layer(
    built: dict[str, dict[str, str]], platform_up: dict[str, str], tmp_path: Path
) -> None:
    secrets = [v.encode() for v in platform_up.values() if len(v) >= 16]
    assert secrets
    for name in NAMES:
        archive = tmp_path / f"{name}.tar"
        subprocess.run(
            ["docker", "save", "-o", str(archive), f"dataops/{name}:{built[name]['content_hash']}"],
            check=True,
        )
        with tarfile.open(archive) as outer:
            for member in outer.getmembers():
                handle = outer.extractfile(member)
                if handle is None:
                    continue
                data = handle.read()
                for secret in secrets:
                    assert secret not in data, f"a secret is in {name}:{member.name}"
        env = inspect(f"dataops/{name}:{built[name]['content_hash']}")["Config"]["Env"]
        assert not [e for e in env if "PASSWORD" in e or "SECRET" in e]
        archive.unlink()


def test_unchanged_images_are_not_rebuilt_or_pushed(built: dict[str, dict[str, str]]) -> None:
    result = run_dataops("images", "build", "--push", "--env", "dev")
    assert result.returncode == 0, result.stderr
    for name in NAMES:
        assert f"{name}: unchanged" in result.stderr
        assert f"{name}: already in 127.0.0.1:5001" in result.stderr
    assert "building" not in result.stderr and "pushing" not in result.stderr


def project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dataops.yml", "requirements.lock"):
        shutil.copy(ROOT / name, project / name)
    for name in ("images", "src", "dbt_project"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_a_changed_input_changes_the_tag_and_a_failed_build_names_the_image(
    built: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    project = project_copy(tmp_path)
    env = {"DATAOPS_STATE_DIR": str(tmp_path / "state")}
    requirements = project / "images" / "extract" / "requirements.in"
    marker = uuid.uuid4().hex  # a fresh input every run, so the tag cannot exist yet
    requirements.write_text(
        requirements.read_text() + f"# a changed comment is a changed input {marker}\n"
    )
    result = run_dataops(
        "images", "build", "extract", "--json", config=project / "dataops.yml", env=env
    )
    assert result.returncode == 0, result.stderr
    changed = json.loads(result.stdout)["images"][0]
    assert changed["built"] is True
    assert changed["content_hash"] != built["extract"]["content_hash"]
    subprocess.run(["docker", "rmi", changed["local"]], capture_output=True, check=False)

    dockerfile = project / "images" / "task.Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY site/", "COPY no-such-folder/"))
    failed = run_dataops("images", "build", "extract", config=project / "dataops.yml", env=env)
    assert failed.returncode == 1
    assert "image extract: docker build failed" in failed.stderr
    assert "logs:" in failed.stderr and "build-extract.log" in failed.stderr
