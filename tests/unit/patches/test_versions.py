"""The patches of Airflow's and dbt's private internals (src/dataops/patches/) are written for
exact versions. These tests fail, loudly, as soon as the installed or the locked version of a
distribution a patch folder targets differs from its target, naming the patches to re-check
and what to check in each: an upgrade must re-check them before it moves the pins."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from pathlib import Path
from types import ModuleType

import pytest

from dataops.patches import airflow as airflow_patches
from dataops.patches import dbt as dbt_patches

ROOT = Path(__file__).resolve().parents[3]
PATCHES_DIR = ROOT / "src" / "dataops" / "patches"
FOLDERS: dict[str, ModuleType] = {"airflow": airflow_patches, "dbt": dbt_patches}
CASES = [(name, target) for name, folder in FOLDERS.items() for target in folder.TARGETS]
IDS = [f"{name}:{target}" for name, target in CASES]


def normalized(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def patches_of(folder: str) -> list[ModuleType]:
    package = FOLDERS[folder]
    return [importlib.import_module(f"{package.__name__}.{name}") for name in package.PATCHES]


def locked() -> dict[str, set[str]]:
    """{distribution: versions} pinned in requirements.lock."""
    pins: dict[str, set[str]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            pins.setdefault(normalized(match.group(1)), set()).add(match.group(2))
    return pins


def stale(folder: str, target: str, found: str, where: str) -> str:
    """The message: which patch folder, which version it targets, which one is here, and what to
    re-check in each patch that touches the distribution."""
    dist, version = target.split("==")
    lines = [
        "",
        "=" * 100,
        f"PATCHES NOT CHECKED FOR THIS VERSION: src/dataops/patches/{folder}/ targets {target}, "
        f"but {where} has {dist} {found}.",
        f"These patches reach into {dist}'s private internals and were written for {version} "
        f"only; re-check each against {dist} {found}:",
    ]
    for module in patches_of(folder):
        if target in module.TARGETS:
            lines.append(f"  - {module.__name__}: {module.UPGRADE_CHECK}")
    lines += [
        f"Then set {target!r} in src/dataops/patches/{folder}/__init__.py, the patches' "
        "docstrings and src/dataops/patches/README.md to the new version (and requirements.lock"
        " to the same). What each patch touches and why: src/dataops/patches/README.md.",
        "=" * 100,
    ]
    return "\n".join(lines)


@pytest.mark.parametrize(("folder", "target"), CASES, ids=IDS)
def test_the_installed_version_is_the_one_the_patches_target(folder: str, target: str) -> None:
    dist, version = target.split("==")
    try:
        installed = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        installed = "(not installed)"
    if installed != version:
        pytest.fail(stale(folder, target, installed, "this environment"), pytrace=False)


@pytest.mark.parametrize(("folder", "target"), CASES, ids=IDS)
def test_requirements_lock_pins_the_version_the_patches_target(folder: str, target: str) -> None:
    """The images and every machine install from the lock: it must pin the targeted version."""
    dist, version = target.split("==")
    pinned = locked().get(normalized(dist), set())
    if pinned != {version}:
        found = " and ".join(sorted(pinned)) or "(not pinned)"
        pytest.fail(stale(folder, target, found, "requirements.lock"), pytrace=False)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_patch_is_listed_and_labelled(folder: str) -> None:
    """Each module of a folder is in its PATCHES, names what it targets (TARGETS, within the
    folder's), states each version in its docstring and says what to check on an upgrade; the
    folder targets nothing no patch needs."""
    package = FOLDERS[folder]
    on_disk = sorted(p.stem for p in (PATCHES_DIR / folder).glob("*.py") if p.stem != "__init__")
    assert sorted(package.PATCHES) == on_disk
    assert package.TARGET in package.TARGETS
    used: set[str] = set()
    for module in patches_of(folder):
        assert module.TARGETS and set(module.TARGETS) <= set(package.TARGETS), module.__name__
        used |= set(module.TARGETS)
        doc = (module.__doc__ or "").lower()
        for target in module.TARGETS:
            dist, version = target.split("==")
            assert dist.lower() in doc and version in doc, (module.__name__, target)
        assert len(module.UPGRADE_CHECK) > 40, module.__name__
    assert used == set(package.TARGETS), set(package.TARGETS) - used


def test_the_readme_lists_every_patch_and_target() -> None:
    readme = (PATCHES_DIR / "README.md").read_text()
    for folder, package in FOLDERS.items():
        for target in package.TARGETS:
            assert f"`{target}`" in readme, target
        for name in package.PATCHES:
            assert f"`dataops.patches.{folder}.{name}`" in readme, name


def test_the_message_names_the_folder_versions_and_checks() -> None:
    """What a failure says (an upgrade of the task SDK, for instance)."""
    message = stale("airflow", airflow_patches.TASK_SDK, "1.4.0", "this environment")
    assert "src/dataops/patches/airflow/ targets apache-airflow-task-sdk==1.3.2" in message
    assert "has apache-airflow-task-sdk 1.4.0" in message
    assert "dataops.patches.airflow.supervisor: airflow/sdk/execution_time" in message
    assert "dataops.patches.airflow.docker_operator" in message
