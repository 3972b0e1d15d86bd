"""`dataops doctor`: what this host is missing for the local platform, and how to fix each."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from dataops import __version__
from dataops.clients.docker import engine_answers
from dataops.local.host import (
    apt_install_command,
    describe_holder,
    find_program,
    free_disk_bytes,
    port_holder,
    port_is_free,
    requirements,
)
from dataops.local.platform import LocalPlatform
from dataops.project.environment import Project

MIN_FREE_DISK = 10 * 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


def pinned_version(lock: Path) -> str | None:
    """The `dataops==VERSION` a project's requirements.lock pins, if any."""
    try:
        text = lock.read_text()
    except OSError:
        return None
    match = re.search(r"(?m)^dataops==([^\s;#]+)", text)
    return match.group(1) if match else None


def toolkit_pin(root: Path) -> Check:
    """The installed toolkit is the version the project pins (a toolkit checkout pins none: it
    runs its own source)."""
    pinned = pinned_version(root / "requirements.lock")
    if pinned is None and (root / "src" / "dataops" / "__init__.py").is_file():
        return Check("toolkit version", True, f"dataops {__version__}, from this checkout's src/")
    if pinned is None:
        return Check(
            "toolkit version",
            False,
            f"requirements.lock pins no dataops version (dataops {__version__} is installed)",
            f"add `dataops=={__version__}` to requirements.lock (docs: Upgrade the toolkit)",
        )
    if pinned != __version__:
        return Check(
            "toolkit version",
            False,
            f"the project pins dataops {pinned}; dataops {__version__} is installed",
            f"make setup   (installs dataops=={pinned} from vendor/), or upgrade the pin "
            "(docs: Upgrade the toolkit)",
        )
    return Check("toolkit version", True, f"dataops {__version__}, as requirements.lock pins")


def run_checks(project: Project) -> list[Check]:
    checks: list[Check] = []
    version = sys.version_info
    checks.append(
        Check(
            "python",
            version >= (3, 11),
            f"{sys.executable} {version.major}.{version.minor}.{version.micro}",
            "install Python 3.11 or newer",
        )
    )
    checks.append(toolkit_pin(project.root))
    airflow = Path(sys.executable).parent / "airflow"
    checks.append(
        Check(
            "python packages",
            airflow.exists(),
            f"Airflow, dbt, sqlfluff in {Path(sys.prefix)}"
            if airflow.exists()
            else f"no airflow in {Path(sys.prefix)}",
            "make setup   (creates .venv from requirements.lock)",
        )
    )
    for req in requirements():
        where = find_program(req)
        checks.append(
            Check(
                req.name,
                where is not None,
                where or f"not found (Debian package {req.package})",
                apt_install_command([req.package]),
            )
        )
    version_text = engine_answers()
    checks.append(
        Check(
            "docker engine",
            version_text is not None,
            f"answers on /var/run/docker.sock (engine {version_text})"
            if version_text
            else "does not answer",
            "dataops up   (starts dockerd as root)",
        )
    )
    platform = LocalPlatform(project)
    loaded = project.loaded
    ours = {s.address: s for s in platform.status()}
    ports = [("postgres", loaded.config.platform.postgres.port, "platform.postgres.port")]
    ports += [
        (r.name, r.config.port, f"environments.{r.env_name}.registry.address")
        for r in platform.registries
    ]
    ports += [
        (d.name, d.port, f"environments.{d.env.name}.airflow.url") for d in platform.deployments
    ]
    for name, port, key in ports:
        if port_is_free(port):
            checks.append(Check(f"port {port}", True, f"free for {name}"))
            continue
        service = next((s for s in ours.values() if s.name == name), None)
        if service is not None and service.pid:
            checks.append(
                Check(f"port {port}", True, f"held by dataops' own {name} (pid {service.pid})")
            )
            continue
        holder = port_holder(port)
        who = describe_holder(port, holder).removeprefix(" by ") if holder else "an unknown process"
        checks.append(
            Check(
                f"port {port}",
                False,
                f"needed by {name}, in use by {who}",
                f"stop {f'pid {holder[0]}' if holder else 'that process'}, "
                f"or change {key} in dataops.yml",
            )
        )
    free = free_disk_bytes(platform.state.root)
    checks.append(
        Check(
            "disk",
            free >= MIN_FREE_DISK,
            f"{free / 1024**3:.1f} GiB free at {platform.state.root}",
            f"free at least {MIN_FREE_DISK // 1024**3} GiB (images, warehouse, logs live there)",
        )
    )
    return checks
