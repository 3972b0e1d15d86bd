"""The Docker engine: used when one answers, otherwise `dockerd` started and owned by dataops."""

from __future__ import annotations

import shutil
import time

from dataops.clients.docker import DOCKER_SOCKET, engine_answers
from dataops.core.progress import Report
from dataops.errors import NotReadyError
from dataops.local.host import is_root
from dataops.local.process import ManagedProcess
from dataops.local.service import Health, Service, ServiceStatus, State
from dataops.project.state import StateDir


class DockerEngine(Service):
    name = "docker"

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.log_path = str(state.log("dockerd"))
        dockerd = shutil.which(
            "dockerd", path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )
        self.process = ManagedProcess(
            name="dockerd",
            argv=[
                dockerd or "dockerd",
                "--host",
                f"unix://{DOCKER_SOCKET}",
                "--pidfile",
                str(state.run / "dockerd.self.pid"),
            ],
            pidfile=state.pidfile("dockerd"),
            log=state.log("dockerd"),
        )

    def status(self) -> ServiceStatus:
        pid = self.process.pid()
        version = engine_answers()
        address = f"unix://{DOCKER_SOCKET}"
        if version is None:
            state = State.RUNNING if pid else State.STOPPED
            health = Health.UNHEALTHY if pid else Health.UNKNOWN
            return ServiceStatus(
                self.name, state, health, address, pid, "engine does not answer", self.log_path
            )
        state = State.RUNNING if pid else State.EXTERNAL
        return ServiceStatus(
            self.name, state, Health.HEALTHY, address, pid, f"engine {version}", self.log_path
        )

    def up(self, report: Report) -> bool:
        if engine_answers() is not None:
            return False
        if self.process.pid() is None:
            if not is_root():
                raise NotReadyError(
                    "the Docker engine is not running, and only root can start dockerd",
                    "sudo .venv/bin/dataops up   (or start Docker yourself)",
                )
            if not shutil.which("dockerd", path="/usr/sbin:/usr/bin"):
                raise NotReadyError("dockerd is not installed", "apt-get install -y docker.io")
            report("starting the Docker engine (dockerd)")
            self.process.start()
        deadline = time.monotonic() + 90
        while engine_answers() is None:
            if self.process.exited_early() or time.monotonic() > deadline:
                raise NotReadyError(
                    "dockerd did not start",
                    "read the log, fix the cause, run `dataops up` again",
                    log=self.log_path,
                )
            time.sleep(0.3)
        return True

    def down(self, report: Report) -> bool:
        if self.process.pid() is None:
            return False  # not ours (or not running): leave it alone
        report("stopping the Docker engine")
        return self.process.stop()
