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
