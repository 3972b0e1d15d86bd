"""The Airflow deployment: api-server (web UI), scheduler, dag-processor, triggerer, with its
metadata DB in the local PostgreSQL. (The DAG side is `dataops.airflow`; the REST client is
`dataops.clients.airflow_api`.)"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx

from dataops.core.progress import Report
from dataops.errors import NotReadyError
from dataops.local.host import require_free_port
from dataops.local.postgres import Postgres
from dataops.local.process import ManagedProcess
from dataops.local.service import Health, Service, ServiceStatus, State
from dataops.project.environment import Project
from dataops.project.state import atomic_write

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
JWT_SECRET_ENV = "DATAOPS_AIRFLOW_JWT_SECRET"
API_SECRET_ENV = "DATAOPS_AIRFLOW_SECRET_KEY"
# The health endpoint's names for the components it reports on.
_HEALTH_KEYS = {
    "metadatabase": "metadatabase",
    "scheduler": "scheduler",
    "triggerer": "triggerer",
    "dag_processor": "dag-processor",
}


def host_parallelism() -> int:
    """LocalExecutor worker processes for this host: two per core (Airflow's default is 32)."""
    return max(2, 2 * (os.cpu_count() or 1))


class AirflowDeployment(Service):
    """One Airflow 3 deployment, run as four supervised processes."""

    name = "airflow"

    def __init__(self, project: Project, postgres: Postgres) -> None:
        self.project = project
        loaded = project.loaded
        self.state = state = project.state
        self.secrets = project.secrets
        self.postgres = postgres
        self.settings = loaded.config.platform.airflow
        self.home = state.airflow_home
        self.url = f"http://127.0.0.1:{self.settings.port}"
        self.log_path = str(state.logs)
        self.password_env = (
            project.first_environment.config.airflow.password_env or "DATAOPS_AIRFLOW_PASSWORD"
        )
        bindir = Path(sys.executable).parent
        self.program = bindir / "airflow"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
        self.components = {
            name: ManagedProcess(
                name=f"airflow-{name}",
                argv=[str(self.program), name],
                pidfile=state.pidfile(f"airflow-{name}"),
                log=state.log(f"airflow-{name}"),
                env=self.env,
                cwd=loaded.root,
            )
            for name in COMPONENTS
        }

    @property
    def parallelism(self) -> int:
        value = self.settings.parallelism
        return host_parallelism() if value == "auto" else int(value)

    def admin_credentials(self) -> tuple[str, str]:
        return self.settings.admin_user, self.secrets.require(self.password_env)

    # -- files ---------------------------------------------------------------------------------
    def render_config(self) -> str:
        pg = self.project.config.platform.postgres
        sql_alchemy = (
            f"postgresql+psycopg2://{self.postgres.role}:{self.postgres.password()}"
            f"@127.0.0.1:{pg.port}/{pg.airflow_database}"
        )
        parallelism = self.parallelism
        return f"""# Written by `dataops up` from dataops.yml; edit that file instead. Keep private.
[core]
dags_folder = {self.project.root / "dags"}
executor = LocalExecutor
parallelism = {parallelism}
max_active_tasks_per_dag = {parallelism}
load_examples = False
auth_manager = airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
simple_auth_manager_users = {self.settings.admin_user}:admin
simple_auth_manager_passwords_file = {self.home / "passwords.json"}
execution_api_server_url = {self.url}/execution/

[database]
sql_alchemy_conn = {sql_alchemy}

[api]
host = 127.0.0.1
port = {self.settings.port}
workers = 1
base_url = {self.url}
secret_key = {self.secrets.require(API_SECRET_ENV)}

[api_auth]
jwt_secret = {self.secrets.require(JWT_SECRET_ENV)}

[dag_processor]
parsing_processes = 1
refresh_interval = 30

[scheduler]
standalone_dag_processor = True

[logging]
base_log_folder = {self.home / "logs"}
dag_processor_child_process_log_directory = {self.home / "logs" / "dag_processor"}
"""

    def dataops_env(self) -> dict[str, str]:
        """What the DAGs read from the environment: which environment this Airflow runs,
        where the task data and the image records live, and one connection per warehouse."""
        env = {
            "DATAOPS_ENV": "dev",
            "DATAOPS_DATA_DIR": str(self.state.data),
            # The active release of dev (dataops release create / promote / rollback).
            "DATAOPS_ACTIVE_FILE": str(self.state.active_release("dev")),
        }
        for environment in self.project.environments():
            wh = environment.config.warehouse
            password = environment.warehouse_password
            env[f"AIRFLOW_CONN_WAREHOUSE_{environment.name.upper()}"] = (
                f"postgres://{quote(wh.user, safe='')}:{quote(password, safe='')}"
                f"@{wh.host}:{wh.port}/{wh.database}"
            )
        return env

    def _write_files(self) -> bool:
        self.home.mkdir(parents=True, exist_ok=True)
        extra = self.dataops_env()
        self.env.update(extra)
        for proc in self.components.values():
            proc.env = self.env
        text = "".join(f"{key}={value}\n" for key, value in sorted(extra.items()))
        changed = atomic_write(self.home / "dataops.env", text, 0o600)
        changed |= atomic_write(self.home / "airflow.cfg", self.render_config(), 0o600)
        user, password = self.admin_credentials()
        changed |= atomic_write(
            self.home / "passwords.json", json.dumps({user: password}) + "\n", 0o600
        )
        return changed

    def _migrate(self, report: Report) -> bool:
        from importlib.metadata import version

        stamp = self.home / ".migrated"
        key = hashlib.sha256(
            f"{version('apache-airflow')}\n{self.render_config()}".encode()
        ).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == key:
            return False
        report("migrating the Airflow metadata database (first run takes about a minute)")
        log = self.state.log("airflow-db-migrate")
        with log.open("ab") as handle:
            result = subprocess.run(
                [str(self.program), "db", "migrate"],
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                check=False,
                cwd=self.project.root,
            )
        if result.returncode != 0:
            raise NotReadyError(
                "airflow db migrate failed", "read the log and run `dataops up` again", log=str(log)
            )
        atomic_write(stamp, key + "\n")
        return True

    # -- service -------------------------------------------------------------------------------
    def status(self) -> ServiceStatus:
        pids = {name: proc.pid() for name, proc in self.components.items()}
        running = [name for name, pid in pids.items() if pid]
        address = self.url
        if not running:
            return ServiceStatus(
                self.name, State.STOPPED, Health.UNKNOWN, address, log=self.log_path
            )
        components: dict[str, dict[str, object]] = {
            name: {"pid": pid, "state": "running" if pid else "stopped", "health": "unknown"}
            for name, pid in pids.items()
        }
        problems = [f"{name} not running" for name, pid in pids.items() if not pid]
        try:
            with httpx.Client(timeout=5.0) as client:
                body = client.get(f"{self.url}/api/v2/monitor/health").json()
            components["api-server"]["health"] = "healthy"
            for key, name in _HEALTH_KEYS.items():
                health = str((body.get(key) or {}).get("status") or "unknown")
                components.setdefault(name, {})["health"] = health
                if health != "healthy":
                    problems.append(f"{name}: {health}")
        except (httpx.HTTPError, ValueError) as exc:
            problems.append(f"api-server does not answer ({type(exc).__name__})")
        health = Health.UNHEALTHY if problems else Health.HEALTHY
        detail = (
            "; ".join(problems)
            if problems
            else f"web UI {self.url} (LocalExecutor, parallelism {self.parallelism})"
        )
        return ServiceStatus(
            self.name,
            State.RUNNING,
            health,
            address,
            pids["api-server"],
            detail,
            self.log_path,
            components,
        )

    def up(self, report: Report) -> bool:
        changed = self._write_files()
        if changed and any(proc.pid() for proc in self.components.values()):
            report("airflow: configuration changed, restarting its components")
            for proc in self.components.values():
                proc.stop()
        changed |= self._migrate(report)
        for name, proc in self.components.items():
            if proc.pid() is not None:
                continue
            if name == "api-server":
                require_free_port(self.settings.port, "platform.airflow.port")
            report(f"starting airflow {name}")
            proc.start()
            changed = True
        self.wait_healthy(300, "airflow (api-server, scheduler, dag-processor, triggerer)")
        return changed

    def down(self, report: Report) -> bool:
        stopped = False
        for name, proc in reversed(self.components.items()):
            if proc.pid() is not None:
                report(f"stopping airflow {name}")
                stopped |= proc.stop()
        return stopped
