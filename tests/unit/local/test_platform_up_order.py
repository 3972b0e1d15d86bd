"""`dataops up` makes the base image beside the deployments' start, not before it.

On a host without the base image the offline bootstrap (debootstrap) takes about 35 s and the
deployments' migrations and start about as long; done one after the other they added up. The
services are stand-ins here: what is checked is the order LocalPlatform.up runs them in.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dataops.core.config import load_config
from dataops.errors import NotReadyError
from dataops.local import platform as platform_module
from dataops.local.base_image import BaseImage
from dataops.local.service import Health, ServiceStatus, State
from dataops.project.environment import Project

ROOT = Path(__file__).resolve().parents[3]


def stand_in_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: object
) -> tuple[platform_module.LocalPlatform, dict[str, bool]]:
    monkeypatch.setenv("DATAOPS_STATE_DIR", str(tmp_path / "state"))
    platform = platform_module.LocalPlatform(Project.of(load_config(ROOT / "dataops.yml")))
    seen: dict[str, bool] = {}
    base_started = threading.Event()
    deployments_started = threading.Event()

    def bootstrap(config: object, state: object, report: object) -> BaseImage:
        base_started.set()
        # Sequential code would start the deployments only after this returns: the wait
        # would run out.
        seen["deployments ran while the base image was made"] = deployments_started.wait(10)
        return base(config)  # type: ignore[operator]

    def deployment_up(report: object) -> bool:
        deployments_started.set()
        seen["base image was being made when a deployment started"] = base_started.wait(10)
        return True

    monkeypatch.setattr(platform_module, "ensure_base_image", bootstrap)
    for service in platform.services:
        is_deployment = isinstance(service, platform_module.AirflowDeployment)
        monkeypatch.setattr(service, "up", deployment_up if is_deployment else lambda r: False)
        monkeypatch.setattr(
            service,
            "status",
            lambda s=service: ServiceStatus(s.name, State.RUNNING, Health.HEALTHY, ""),
        )
    return platform, seen


def test_the_base_image_is_made_while_the_deployments_come_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = BaseImage("dataops/base:bookworm", "sha256:" + "a" * 64, "debootstrap:test", True)
    platform, seen = stand_in_platform(tmp_path, monkeypatch, lambda config: made)
    result = platform.up(lambda message: None, install=False)
    assert seen == {
        "deployments ran while the base image was made": True,
        "base image was being made when a deployment started": True,
    }
    assert result.base_image == made
    names = [d.name for d in platform.deployments]
    assert result.changed == ["base-image", *names]


def test_a_failed_base_image_fails_up_after_the_deployments_came_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(config: object) -> BaseImage:
        raise NotReadyError("debootstrap failed", "read the log")

    platform, seen = stand_in_platform(tmp_path, monkeypatch, fail)
    with pytest.raises(NotReadyError, match="debootstrap failed"):
        platform.up(lambda message: None, install=False)
    assert seen["base image was being made when a deployment started"] is True
