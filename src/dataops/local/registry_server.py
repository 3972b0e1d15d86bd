"""The OCI registry servers (CNCF distribution), one per environment, with htpasswd auth where
set. (Their client is `dataops.clients.oci.RegistryClient`.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import bcrypt
import httpx
import yaml

from dataops.errors import DataOpsError
from dataops.local.process import ManagedProcess
from dataops.local.service import Health, ProcessService, ServiceStatus, State
from dataops.project.environment import Environment
from dataops.project.state import atomic_write

HTTP_SECRET_ENV = "DATAOPS_REGISTRY_HTTP_SECRET"


class RegistryServer(ProcessService):
    """The registry of one environment, served by `docker-registry serve` on its address."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.env_name = env.name
        self.config = env.config.registry
        self.name = f"registry-{env.name}"
        self.host, self.port, self.address = self.config.host, self.config.port, self.config.address
        self.port_key = f"environments.{env.name}.registry.address"
        self.secrets = env.project.secrets
        state = env.state
        self.home = state.registries / env.name
        self.log_path = str(state.log(self.name))
        program = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        self.process = ManagedProcess(
            name=self.name,
            argv=[program, "serve", str(self.home / "config.yml")],
            pidfile=state.pidfile(self.name),
            log=state.log(self.name),
        )

    def credentials(self) -> tuple[str, str] | None:
        return self.env.registry_credentials

    def status(self) -> ServiceStatus:
        pid = self.process.pid()
        address = self.config.address
        if pid is None:
            return ServiceStatus(
                self.name, State.STOPPED, Health.UNKNOWN, address, log=self.log_path
            )
        health, detail = self._probe()
        return ServiceStatus(self.name, State.RUNNING, health, address, pid, detail, self.log_path)

    def _probe(self) -> tuple[Health, str]:
        url = f"{self.config.url}/v2/"
        try:
            with httpx.Client(timeout=3.0) as client:
                anonymous = client.get(url)
                creds = self.credentials()
                if creds is None:
                    ok = anonymous.status_code == 200
                    return (
                        Health.HEALTHY if ok else Health.UNHEALTHY
                    ), f"GET /v2/ -> {anonymous.status_code}"
                authed = client.get(url, auth=creds)
        except (httpx.HTTPError, DataOpsError) as exc:
            return Health.UNHEALTHY, f"{type(exc).__name__}: {exc}"
        ok = anonymous.status_code == 401 and authed.status_code == 200
        detail = (
            f"anonymous -> {anonymous.status_code}, {creds[0]} -> {authed.status_code} (htpasswd)"
        )
        return (Health.HEALTHY if ok else Health.UNHEALTHY), detail

    def render(self) -> bool:
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "fields": {"service": self.name}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.home / "data")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": self.config.address,
                "secret": self.secrets.require(HTTP_SECRET_ENV),
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
        }
        changed = False
        creds = self.credentials()
        if creds is not None:
            htpasswd = self.home / "htpasswd"
            config["auth"] = {
                "htpasswd": {"realm": f"dataops-{self.env_name}", "path": str(htpasswd)}
            }
            changed |= _write_htpasswd(htpasswd, *creds)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        text = "# Written by `dataops up` from dataops.yml.\n" + yaml.safe_dump(
            config, sort_keys=False
        )
        return atomic_write(self.home / "config.yml", text, 0o600) | changed


def _write_htpasswd(target: Path, username: str, password: str) -> bool:
    """Write `user:bcrypt-hash` unless the file already holds a hash of this password."""
    try:
        for line in target.read_text().splitlines():
            user, _, hashed = line.partition(":")
            if user == username and bcrypt.checkpw(password.encode(), hashed.encode()):
                return False
    except (FileNotFoundError, ValueError):
        pass
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return atomic_write(target, f"{username}:{hashed}\n", 0o600)
