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
from tests.conftest import PROJECT


def stand_in_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: object
) -> tuple[platform_module.LocalPlatform, dict[str, bool]]:
    monkeypatch.setenv("DATAOPS_STATE_DIR", str(tmp_path / "state"))
    platform = platform_module.LocalPlatform(Project.of(load_config(PROJECT / "dataops.yml")))
    seen: dict[str, bool] = {}
    base_started = threading.Event()
    deployments_started = threading.Event()

    def bootstrap(config: object, state: object, report: object, **kwargs: object) -> BaseImage:
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


def test_an_interrupted_up_tells_the_base_image_to_start_nothing_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAOPS_STATE_DIR", str(tmp_path / "state"))
    platform = platform_module.LocalPlatform(Project.of(load_config(PROJECT / "dataops.yml")))
    told: list[bool] = []
    started = threading.Event()

    def bootstrap(config: object, state: object, report: object, **kwargs: object) -> BaseImage:
        started.set()
        cancelled = kwargs["cancelled"]
        assert isinstance(cancelled, threading.Event)
        told.append(cancelled.wait(10))  # the pull that Ctrl-C killed: is it Ctrl-C?
        raise KeyboardInterrupt

    def interrupted(report: object) -> bool:
        started.wait(10)
        raise KeyboardInterrupt  # Ctrl-C while the deployments come up

    monkeypatch.setattr(platform_module, "ensure_base_image", bootstrap)
    for service in platform.services:
        is_deployment = isinstance(service, platform_module.AirflowDeployment)
        monkeypatch.setattr(service, "up", interrupted if is_deployment else lambda r: False)
    with pytest.raises(KeyboardInterrupt):
        platform.up(lambda message: None, install=False)
    assert told == [True]


def test_a_cancelled_base_image_does_not_fall_back_to_the_offline_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream pull failed because Ctrl-C killed it: no debootstrap starts after it."""
    import subprocess

    from dataops.core.config import BaseImageConfig
    from dataops.local import base_image

    cancelled = threading.Event()
    bootstrapped: list[str] = []

    def pull(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        cancelled.set()  # what LocalPlatform.up does when its thread is interrupted
        return subprocess.CompletedProcess(list(args), 1, "", "context canceled")

    monkeypatch.setattr(base_image, "image_inspect", lambda name: None)
    monkeypatch.setattr(base_image, "docker", pull)
    monkeypatch.setattr(base_image, "_bootstrap", lambda *a: bootstrapped.append("ran"))
    config = BaseImageConfig(name="dataops/base:test", upstream="docker.io/library/python:3.11")
    state = Project.of(load_config(PROJECT / "dataops.yml")).state
    with pytest.raises(KeyboardInterrupt):
        base_image.ensure_base_image(config, state, lambda message: None, cancelled=cancelled)
    assert bootstrapped == []
    # Without the cancel, the same failed pull falls back to the bootstrap.
    cancelled = threading.Event()
    monkeypatch.setattr(
        base_image,
        "docker",
        lambda *a, timeout: subprocess.CompletedProcess(list(a), 1, "", "no such host"),
    )
    base_image.ensure_base_image(config, state, lambda message: None, cancelled=cancelled)
    assert bootstrapped == ["ran"]
