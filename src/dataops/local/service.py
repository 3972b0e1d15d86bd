"""What every service of the local platform offers: status, up, down."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from dataops.core.progress import Report
from dataops.errors import NotReadyError


class State(StrEnum):
    RUNNING = "running"  # started by dataops, its process is alive
    EXTERNAL = "external"  # answering, but not started by dataops (left alone by `down`)
    STOPPED = "stopped"


class Health(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


@dataclass
class ServiceStatus:
    name: str
    state: State
    health: Health
    address: str
    pid: int | None = None
    detail: str = ""
    log: str | None = None
    components: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        data["health"] = self.health.value
        if not self.components:
            data.pop("components")
        return data


class Service(ABC):
    name: str
    log_path: str | None = None

    @abstractmethod
    def status(self) -> ServiceStatus: ...

    @abstractmethod
    def up(self, report: Report) -> bool:
        """Make it run and answer its health check; True when anything had to change."""

    @abstractmethod
    def down(self, report: Report) -> bool:
        """Stop it, keeping its data; True when it was running."""

    def wait_healthy(self, timeout: float, what: str | None = None) -> ServiceStatus:
        deadline = time.monotonic() + timeout
        status = self.status()
        while status.health is not Health.HEALTHY:
            if time.monotonic() > deadline:
                raise NotReadyError(
                    f"{what or self.name} did not become healthy within {timeout:.0f}s: "
                    f"{status.detail or status.state.value}",
                    "read the log, fix the cause, then run `dataops up` again",
                    log=self.log_path,
                )
            time.sleep(0.5)
            status = self.status()
        return status


class ProcessService(Service):
    """A service that is one supervised program on one address (a registry, a broker): render
    its config, (re)start it when the config changed or it is not running, wait until it is
    healthy; `down` stops it."""

    process: Any  # ManagedProcess
    host: str = "127.0.0.1"
    port: int
    port_key: str  # the dataops.yml key that sets the port, named when it is taken
    address: str

    @abstractmethod
    def render(self) -> bool:
        """Write its config; True when it changed."""

    def up(self, report: Report) -> bool:
        from dataops.local.host import require_free_port

        changed = self.render()
        pid = self.process.pid()
        if pid is not None and changed:
            report(f"{self.name}: configuration changed, restarting")
            self.process.stop()
            pid = None
        if pid is None:
            require_free_port(self.port, self.port_key, self.host)
            report(f"starting {self.name} on {self.address}")
            self.process.start()
            changed = True
        self.wait_healthy(30)
        return changed

    def down(self, report: Report) -> bool:
        if self.process.pid() is None:
            return False
        report(f"stopping {self.name}")
        return bool(self.process.stop())
