"""One Airflow deployment per environment: api-server (web UI), scheduler, dag-processor,
triggerer (and, with `executor: celery`, its Celery workers), with its own metadata DB in the
local PostgreSQL, its own port and secrets, and the DAG code of its environment's active release
as its only DAG bundle. (The DAG side is `dataops.airflow`; the REST client is
`dataops.clients.airflow_api`; a Celery deployment's broker is `redis_server`.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx

from dataops.core.capacity import celery_worker_slots, host_parallelism, worker_concurrency
from dataops.core.progress import Report
from dataops.errors import NotReadyError
from dataops.local.host import require_free_port
from dataops.local.postgres import Postgres
from dataops.local.process import ManagedProcess
from dataops.local.service import Health, Service, ServiceStatus, State
from dataops.project.environment import Environment
from dataops.project.state import atomic_write

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
BUNDLE_NAME = "release"
BUNDLE_CLASS = "dataops.airflow.bundle.ReleaseDagBundle"
# Seconds between the dag-processor's looks at the active release: a promotion or rollback is
# running within a few seconds.
BUNDLE_REFRESH_SECONDS = 2
# Airflow removes stale bundle versions from every component that shares the bundle storage
# (scheduler with LocalExecutor, each Celery worker, the dag-processor). Locally they all share
# one folder, and two cleaners racing over one version crash the scheduler's loop
# (FileNotFoundError from rmtree; the dag-processor catches it, the scheduler does not). Only
# the dag-processor cleans here.
ONE_BUNDLE_CLEANER = {"AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_INTERVAL": "0"}
# The health endpoint's names for the components it reports on.
_HEALTH_KEYS = {
    "metadatabase": "metadatabase",
    "scheduler": "scheduler",
    "triggerer": "triggerer",
    "dag_processor": "dag-processor",
}


def connection_uri(scheme: str, user: str, password: str, host: str, port: int, path: str) -> str:
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}" + (
        f"/{path}" if path else ""
    )


PLUGIN_STUB = (
    '"""Written by `dataops up`: the dataops plugin (the Releases page)."""\n'
    "from dataops.airflow.plugin import DataopsPlugin\n\n"
    '__all__ = ["DataopsPlugin"]\n'
)


class AirflowDeployment(Service):
    """The Airflow 3 deployment of one environment, run as four supervised processes: its own
    port, metadata DB and role, secrets, and only its own environment's connections."""

    def __init__(
        self,
        env: Environment,
        postgres: Postgres,
        deployments: int = 1,
        secret_names: frozenset[str] = frozenset(),
    ) -> None:
        self.env = env
        self.project = project = env.project
        self.name = f"airflow-{env.name}"
        self.state = state = project.state
        self.secrets = project.secrets
        self.postgres = postgres
        self.deployments = deployments
        self.settings = env.config.airflow
        self.admin_user = project.config.platform.airflow.admin_user
        self.home = env.airflow_home
        self.port = self.settings.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = str(state.logs)
        bindir = Path(sys.executable).parent
        self.program = bindir / "airflow"
        # Nothing of the caller's environment that is (or may be) a secret: dataops' and
        # Airflow's own variables, libpq's, and every variable dataops.yml names as a secret.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATAOPS_", "AIRFLOW_", "AIRFLOW__", "PG"))
            and k not in secret_names
        }
        self.env_vars = {
            **inherited,
            "AIRFLOW_HOME": str(self.home),
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
        self.components = {
            name: ManagedProcess(
                name=f"{self.name}-{name}",
                argv=[str(self.program), name],
                pidfile=state.pidfile(f"{self.name}-{name}"),
                log=state.log(f"{self.name}-{name}"),
                env=self.env_vars if name != "scheduler" else self.env_vars | ONE_BUNDLE_CLEANER,
                cwd=self.home,
            )
            for name in COMPONENTS
        }
        self.celery = self.settings.celery if self.settings.executor == "celery" else None
        for worker in self.celery.workers if self.celery else []:
            name = f"celery-worker-{worker.name}"
            queues = ",".join(worker.queues)
            self.components[name] = ManagedProcess(
                name=f"{self.name}-{name}",
                argv=[
                    str(self.program),
                    "celery",
                    "worker",
                    "--queues",
                    queues,
                    "--concurrency",
                    str(self.worker_slots(worker.concurrency)),
                    "--celery-hostname",
                    f"{env.name}-{worker.name}@%h",
                    # Locally every worker writes its task logs into the deployment's log
                    # folder, which the api-server reads: no log server port per worker.
                    "--skip-serve-logs",
                ],
                pidfile=state.pidfile(f"{self.name}-{name}"),
                log=state.log(f"{self.name}-{name}"),
                env=self.env_vars
                | ONE_BUNDLE_CLEANER
                | {"DATAOPS_WORKER_NAME": f"{env.name}-{worker.name}"},
                cwd=self.home,
                # A warm shutdown waits for running tasks (their containers) to finish.
                stop_timeout=120.0,
                term_leader_only=True,
            )

    @property
    def parallelism(self) -> int:
        if self.celery is not None:  # every worker's slots, and the tasks queued ahead of them
            return self.celery.scheduler_parallelism(self.celery_slots)
        value = self.settings.parallelism
        return host_parallelism(self.deployments) if value == "auto" else int(value)

    @property
    def celery_slots(self) -> int:
        if self.celery is None:
            return 0
        return sum(celery_worker_slots(self.celery, self.deployments).values())

    def worker_slots(self, concurrency: object) -> int:
        workers = len(self.celery.workers) if self.celery else 1
        auto = worker_concurrency(self.deployments, workers)
        return auto if concurrency == "auto" else int(str(concurrency))

    @property
    def executor_label(self) -> str:
        if self.celery is None:
            return f"LocalExecutor, parallelism {self.parallelism}"
        return (
            f"CeleryExecutor, {len(self.celery.workers)} worker(s), "
            f"{self.celery_slots} slot(s), {self.parallelism - self.celery_slots} queued ahead, "
            f"broker 127.0.0.1:{self.celery.broker_port}"
        )

    def metadata_uri(self, scheme: str) -> str:
        """The deployment's metadata DB, as its own role, for airflow.cfg (where "%" starts an
        interpolation, so it is doubled)."""
        env = self.env
        return connection_uri(
            scheme,
            env.airflow_database,
            self.secrets.require(env.airflow_database_password_env),
            "127.0.0.1",
            self.postgres.port,
            env.airflow_database,
        ).replace("%", "%%")

    def heartbeat_setting(self) -> str:
        if self.celery is None:
            return ""
        celery = self.celery
        return (
            f"task_instance_heartbeat_timeout = {celery.task_heartbeat_timeout_seconds}\n"
            "# A task queued ahead in Redis waits for a slot (celery.queue_ahead); this also sets\n"
            "# the lifetime of its workload token.\n"
            f"task_queued_timeout = {celery.task_queued_timeout_seconds}\n"
        )

    def celery_config(self) -> str:
        """The [celery] sections of a CeleryExecutor deployment: its own Redis broker (with
        its password), results in its own metadata DB, and a visibility timeout longer than
        any task may run, so Redis never hands a running task to a second worker."""
        if self.celery is None:
            return ""
        env = self.env
        broker = connection_uri(
            "redis",
            "",
            self.secrets.require(env.broker_password_env),
            "127.0.0.1",
            self.celery.broker_port,
            "0",
        ).replace("%", "%%")
        results = self.metadata_uri("db+postgresql")
        return f"""
[celery]
broker_url = {broker}
result_backend = {results}
worker_concurrency = {self.worker_slots("auto")}
worker_prefetch_multiplier = 1
task_acks_late = True
# The provider's Celery app config plus `imports` a worker loads before it forks its pool: the
# task supervisor fix of dataops.patches.airflow.supervisor.
celery_config_options = dataops.airflow.celery_config.CELERY_CONFIG

[celery_broker_transport_options]
visibility_timeout = {self.celery.visibility_timeout_seconds}
"""

    def admin_credentials(self) -> tuple[str, str]:
        return self.admin_user, self.env.airflow_password

    # -- files ---------------------------------------------------------------------------------
    def bundle_config(self) -> str:
        """The deployment's one DAG bundle: the DAG code of its environment's active release."""
        return json.dumps(
            [
                {
                    "name": BUNDLE_NAME,
                    "classpath": BUNDLE_CLASS,
                    "kwargs": {"refresh_interval": BUNDLE_REFRESH_SECONDS},
                }
            ]
        )

    def render_config(self) -> str:
        env = self.env
        # Values go through Airflow's config parser, where "%" starts an interpolation.
        sql_alchemy = self.metadata_uri("postgresql+psycopg2")
        secret_key = self.secrets.require(env.airflow_secret_key_env).replace("%", "%%")
        jwt_secret = self.secrets.require(env.airflow_jwt_secret_env).replace("%", "%%")
        parallelism = self.parallelism
        return f"""# Written by `dataops up` for {env.name}; edit dataops.yml instead. Private.
[core]
dags_folder = {self.home / "no-working-tree-dags"}
# Airflow's LocalExecutor, with task supervisors that notice a task's end at once
# (dataops.patches.airflow.supervisor; CeleryExecutor workers get it from celery_config_options).
executor = {"CeleryExecutor" if self.celery else "dataops.airflow.executors.LocalExecutor"}
parallelism = {parallelism}
max_active_tasks_per_dag = {parallelism}
load_examples = False
auth_manager = airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
simple_auth_manager_users = {self.admin_user}:admin
simple_auth_manager_passwords_file = {self.home / "passwords.json"}
execution_api_server_url = {self.url}/execution/
instance_name = DataOps {env.name}
hostname_callable = dataops.airflow.runtime.worker_hostname

[database]
sql_alchemy_conn = {sql_alchemy}

[api]
host = 127.0.0.1
port = {self.port}
workers = 1
base_url = {self.url}
secret_key = {secret_key}

[api_auth]
jwt_secret = {jwt_secret}

[dag_processor]
dag_bundle_config_list = {self.bundle_config()}
dag_bundle_storage_path = {self.home / "dag_bundles"}
bundle_refresh_check_interval = {BUNDLE_REFRESH_SECONDS}
parsing_processes = 2
refresh_interval = 30

[scheduler]
standalone_dag_processor = True
# The running dag runs the scheduler examines per loop come from a query that joins each run to
# every backfill that ever ran it, with this as its LIMIT: a month backfilled 7 times took 7 of
# the 20 rows, so a 12-month backfill had only 3 of its runs scheduled at a time.
max_dagruns_per_loop_to_schedule = 256
{self.heartbeat_setting()}
[workers]
# Seconds between a running task's heartbeats (Airflow's default). Airflow's own supervisor also
# noticed a task's exit only when such a wait ended; dataops.patches.airflow.supervisor
# (installed by the executor and the Celery config above) notices it at once, so the interval no
# longer holds a slot past a task's end, and a shorter one only costs the API server requests.
min_heartbeat_interval = 5

[logging]
base_log_folder = {self.home / "logs"}
dag_processor_child_process_log_directory = {self.home / "logs" / "dag_processor"}
{self.celery_config()}"""

    def dataops_env(self) -> dict[str, str]:
        """What this deployment's DAGs and bundle read from the environment: which environment
        it runs, its task data, its active release, and its own warehouse connection and
        registry credentials (no other environment's)."""
        env = self.env
        wh = env.config.warehouse
        registry = env.config.registry
        values = {
            "DATAOPS_ENV": env.name,
            "DATAOPS_DATA_DIR": str(env.data_dir),
            "DATAOPS_TASK_SECRETS_DIR": str(self.state.task_secrets(env.name)),
            # The dag-processor's validated specs (dataops.airflow.spec_cache): its own folder.
            "DATAOPS_CACHE_DIR": str(self.home / "cache"),
            "DATAOPS_ACTIVE_FILE": str(env.active_release_file),
            "DATAOPS_REGISTRY": registry.address,
            "DATAOPS_REGISTRY_URL": registry.url,
            f"AIRFLOW_CONN_WAREHOUSE_{env.name.upper()}": connection_uri(
                "postgres", wh.user, env.warehouse_password, wh.host, wh.port, wh.database
            ),
        }
        credentials = env.registry_credentials
        if credentials:
            values[f"AIRFLOW_CONN_REGISTRY_{env.name.upper()}"] = connection_uri(
                "docker", *credentials, registry.host, registry.port, ""
            )
        return values

    def _write_files(self) -> bool:
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        extra = self.dataops_env()
        self.env_vars.update(extra)
        for proc in self.components.values():  # the workers' copies, with their own names
            if proc.env is not None and proc.env is not self.env_vars:
                proc.env = {**proc.env, **extra}
        text = "".join(f"{key}={value}\n" for key, value in sorted(extra.items()))
        changed = atomic_write(self.home / "dataops.env", text, 0o600)
        changed |= atomic_write(self.home / "airflow.cfg", self.render_config(), 0o600)
        user, password = self.admin_credentials()
        changed |= atomic_write(
            self.home / "passwords.json", json.dumps({user: password}) + "\n", 0o600
        )
        # The workers' command lines (queues, slots): a change restarts the deployment.
        workers = {n: list(p.argv) for n, p in self.components.items() if n not in COMPONENTS}
        changed |= atomic_write(self.home / "workers.json", json.dumps(workers, indent=2) + "\n")
        # The toolkit's plugin (the Releases page), from the installed package.
        (self.home / "plugins").mkdir(exist_ok=True)
        changed |= atomic_write(self.home / "plugins" / "dataops_plugin.py", PLUGIN_STUB, 0o644)
        return changed

    def _migrate(self, report: Report) -> bool:
        from importlib.metadata import version

        stamp = self.home / ".migrated"
        key = hashlib.sha256(
            f"{version('apache-airflow')}\n{self.render_config()}".encode()
        ).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == key:
            return False
        report(f"{self.name}: migrating its metadata database (first run takes about a minute)")
        log = self.state.log(f"{self.name}-db-migrate")
        with log.open("ab") as handle:
            result = subprocess.run(
                [str(self.program), "db", "migrate"],
                env=self.env_vars,
                stdout=handle,
                stderr=subprocess.STDOUT,
                check=False,
                cwd=self.home,
            )
        if result.returncode != 0:
            raise NotReadyError(
                f"{self.name}: airflow db migrate failed",
                "read the log and run `dataops up` again",
                log=str(log),
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
            else f"{self.env.name} web UI {self.url} ({self.executor_label})"
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

    def orphans(self) -> list[ManagedProcess]:
        """Celery workers of this deployment that dataops.yml no longer names (renamed,
        removed, or the executor is local again) but that still run: found by pid file."""
        prefix = f"{self.name}-celery-worker-"
        known = {proc.pidfile for proc in self.components.values()}
        return [
            ManagedProcess(name=path.stem, argv=[], pidfile=path, log=self.state.log(path.stem))
            for path in sorted(self.state.run.glob(f"{prefix}*.pid"))
            if path not in known
        ]

    def _stop_orphans(self, report: Report) -> bool:
        stopped = False
        for proc in self.orphans():
            if proc.pid() is not None:
                report(f"stopping {proc.name}: dataops.yml no longer names it")
                stopped |= proc.stop()
        return stopped

    def up(self, report: Report) -> bool:
        changed = self._write_files()
        changed |= self._stop_orphans(report)
        if changed and any(proc.pid() for proc in self.components.values()):
            report(f"{self.name}: configuration changed, restarting its components")
            for proc in reversed(self.components.values()):  # workers before the api-server
                proc.stop()
        changed |= self._migrate(report)
        runs_tasks = [
            p for n, p in self.components.items() if n == "scheduler" or n not in COMPONENTS
        ]
        if all(proc.pid() is None for proc in runs_tasks):
            # No task of this deployment runs without its scheduler and workers: credentials
            # files left by tries that were killed (no `finally` ran) go now.
            shutil.rmtree(self.state.task_secrets(self.env.name), ignore_errors=True)
            self.state.ensure((self.env.name,))
        for name, proc in self.components.items():
            if proc.pid() is not None:
                continue
            if name == "api-server":
                require_free_port(self.port, f"environments.{self.env.name}.airflow.url")
            report(f"starting {self.name} {name}")
            proc.start()
            changed = True
        self.wait_healthy(300, f"{self.name} ({', '.join(self.components)})")
        return changed

    def down(self, report: Report) -> bool:
        stopped = self._stop_orphans(report)
        for name, proc in reversed(self.components.items()):
            if proc.pid() is not None:
                report(f"stopping {self.name} {name}")
                stopped |= proc.stop()
        return stopped
