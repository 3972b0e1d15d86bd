"""The project file `dataops.yml`: its schema, loading, and precise errors.

Every error names the file, the line and column, the key path, and what is allowed. Secrets are
never written in the file: a field ending in `_env` names the environment variable that holds
the secret, and `resolve_secret` reads it (or says which variable to set, and where it is named).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataops.core.schema import validate
from dataops.core.yaml_loader import Limits, YamlDocument, load_yaml_file
from dataops.errors import ConfigError

CONFIG_FILENAME = "dataops.yml"
ENV_NAMES = ("dev", "staging", "prod")

_ENV_VAR = r"^[A-Z_][A-Z0-9_]*$"
_NAME = r"^[a-z][a-z0-9_-]*$"
_ADDRESS = r"^[A-Za-z0-9.-]+:[0-9]{1,5}$"

EnvVarName = Annotated[str, Field(pattern=_ENV_VAR, description="name of an environment variable")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryAuth(StrEnum):
    NONE = "none"
    HTPASSWD = "htpasswd"


class RegistryConfig(_Strict):
    """An OCI registry (CNCF distribution) that holds one environment's images."""

    address: Annotated[str, Field(pattern=_ADDRESS)]
    auth: RegistryAuth = RegistryAuth.NONE
    username: str | None = None
    password_env: EnvVarName | None = None
    tls: bool = False

    @model_validator(mode="after")
    def _credentials(self) -> RegistryConfig:
        if self.auth is RegistryAuth.HTPASSWD and not (self.username and self.password_env):
            raise ValueError("auth: htpasswd needs `username` and `password_env`")
        return self

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"


class WarehouseConfig(_Strict):
    """A PostgreSQL database that one environment's pipelines load into."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    database: Annotated[str, Field(pattern=_NAME)]
    user: Annotated[str, Field(pattern=_NAME)]
    password_env: EnvVarName


QueueName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]
DEFAULT_QUEUE = "default"  # Airflow's [operators] default_queue


class CeleryWorkerConfig(_Strict):
    """One Celery worker of a deployment: the queues it serves and its task slots."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)]
    queues: Annotated[list[QueueName], Field(min_length=1)] = [DEFAULT_QUEUE]
    # Task slots (Celery's --concurrency); "auto" shares the host's cores among the workers.
    concurrency: Literal["auto"] | Annotated[int, Field(ge=1, le=64)] = "auto"


class CeleryConfig(_Strict):
    """CeleryExecutor: the deployment's own Redis broker (127.0.0.1, password) and workers."""

    broker_port: Annotated[int, Field(ge=1, le=65535)]
    broker_password_env: EnvVarName | None = None  # default DATAOPS_AIRFLOW_<ENV>_BROKER_PASSWORD
    workers: Annotated[list[CeleryWorkerConfig], Field(min_length=1)] = [
        CeleryWorkerConfig(name="worker-1")
    ]
    # Seconds after which Redis hands an unacknowledged task to another worker: longer than
    # any task may run (a pipeline's timeout is at most 24 h), or a long task would run twice.
    visibility_timeout_seconds: Annotated[int, Field(ge=600)] = 25 * 3600
    # Seconds without a heartbeat after which the scheduler fails a task whose worker died
    # (machine lost, SIGKILL) and retries it on a live worker (Airflow's default is 300).
    task_heartbeat_timeout_seconds: Annotated[int, Field(ge=30, le=3600)] = 90
    # Tasks per worker slot the scheduler hands to Redis ahead of a free slot, so a worker
    # starts its next task as soon as one ends instead of waiting for the scheduler to read the
    # result and queue another (a scheduler loop per task). 0: one task per slot, as Airflow's own
    # setup. A task waiting there counts against `task_queued_timeout_seconds`.
    queue_ahead: Annotated[int, Field(ge=0, le=4)] = 1
    # Seconds a task may stay queued before the scheduler gives it back (and the lifetime of
    # its workload token): with queue_ahead N, at least N times the longest task timeout of
    # the pipelines plus 10 minutes (`dataops validate` checks it). Airflow's default is 600.
    task_queued_timeout_seconds: Annotated[int, Field(ge=600, le=7 * 24 * 3600)] = 3600

    @model_validator(mode="after")
    def _unique_workers(self) -> CeleryConfig:
        names = [w.name for w in self.workers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"workers: the name(s) {', '.join(twice)} appear twice")
        return self

    @property
    def queues(self) -> set[str]:
        return {q for w in self.workers for q in w.queues}

    def scheduler_parallelism(self, slots: int) -> int:
        """`[core] parallelism` for workers with `slots` task slots in all: each slot's task
        and the `queue_ahead` tasks per slot waiting in Redis."""
        return slots * (1 + self.queue_ahead)


class AirflowConfig(_Strict):
    """The environment's own Airflow deployment: its API/UI address and admin login."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/.*)?$")]
    username: str = "admin"
    password_env: EnvVarName | None = None
    # The local deployment's metadata DB and its own login role (default airflow_<env>).
    database: Annotated[str, Field(pattern=_NAME)] | None = None
    database_password_env: EnvVarName | None = None
    # LocalExecutor worker processes; "auto" shares the host's cores among the deployments.
    parallelism: Literal["auto"] | Annotated[int, Field(ge=1, le=512)] = "auto"
    # local: LocalExecutor (tasks run as the scheduler's children); celery: CeleryExecutor
    # with a Redis broker and the workers of `celery:` (see docs/how-to/scale-out.md).
    executor: Literal["local", "celery"] = "local"
    celery: CeleryConfig | None = None

    @model_validator(mode="after")
    def _executor(self) -> AirflowConfig:
        if self.executor == "celery" and self.celery is None:
            raise ValueError(
                "executor: celery needs a `celery:` section (broker_port, workers with queues)"
            )
        if self.executor == "celery" and self.parallelism != "auto":
            raise ValueError(
                "parallelism is for LocalExecutor: with executor: celery set each worker's "
                "concurrency instead"
            )
        if self.executor == "local" and self.celery is not None:
            raise ValueError("`celery:` is set but executor is local: set executor: celery")
        return self

    @property
    def queues(self) -> set[str]:
        """The queues some worker of this deployment serves (LocalExecutor runs every queue)."""
        return self.celery.queues if self.celery is not None else set()

    @property
    def port(self) -> int:
        """The port of `url` (the local deployment's api-server listens there)."""
        hostport = self.url.split("://", 1)[1].split("/", 1)[0]
        if ":" in hostport:
            return int(hostport.rsplit(":", 1)[1])
        return 443 if self.url.startswith("https") else 80


class GatesConfig(_Strict):
    """What a release must have passed before it is promoted into this environment."""

    promote_from: str | None = None
    require_checks: list[Annotated[str, Field(pattern=_NAME)]] = []
    require_approval: bool = False
    approvers: list[str] = []

    @model_validator(mode="after")
    def _approvers(self) -> GatesConfig:
        if self.require_approval and not self.approvers:
            raise ValueError("require_approval: true needs at least one entry in `approvers`")
        return self


class RuntimeKind(StrEnum):
    DOCKER = "docker"  # DockerOperator on the Airflow worker's Docker engine
    KUBERNETES = "kubernetes"  # KubernetesPodOperator, one pod per task


class RuntimeConfig(_Strict):
    """Where an environment's tasks run: containers on the worker, or pods on a cluster."""

    kind: RuntimeKind = RuntimeKind.DOCKER
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] = "dataops"
    data_claim: str = "dataops-data"  # PersistentVolumeClaim mounted at /data
    warehouse_secret: str | None = None  # Secret with PGHOST..PGPASSWORD (default warehouse-ENV)
    service_account: str | None = None


class SmokeConfig(_Strict):
    """What `dataops release smoke --env ENV` runs in ENV's deployment: each stage's pipelines
    side by side, the stages in order (reference data before the facts that join it)."""

    stages: list[list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]]] = []
    date: str | None = None  # a moment inside the interval each pipeline runs


class EnvironmentConfig(_Strict):
    """One environment: its own registry, warehouse and Airflow deployment."""

    registry: RegistryConfig
    warehouse: WarehouseConfig
    airflow: AirflowConfig
    gates: GatesConfig = GatesConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    smoke: SmokeConfig = SmokeConfig()


class PostgresPlatform(_Strict):
    """The local PostgreSQL server `dataops up` runs: the warehouses and Airflow's databases."""

    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    # The platform's admin role: it owns each warehouse's `dataops` schema and its append-only
    # release history, which the environments' own roles may only read and append to.
    admin_user: Annotated[str, Field(pattern=_NAME)] = "dataops"
    admin_password_env: EnvVarName = "DATAOPS_POSTGRES_ADMIN_PASSWORD"


class AirflowPlatform(_Strict):
    """What the local Airflow deployments (one per environment) share."""

    admin_user: Annotated[str, Field(pattern=_NAME)] = "admin"


class BaseImageConfig(_Strict):
    """The Debian image every task image is built on."""

    name: str = "dataops/base:bookworm"
    # Pulled when a registry is reachable; otherwise debootstrap builds the same Debian release.
    upstream: str | None = "docker.io/library/python:3.11-slim-bookworm"
    suite: Annotated[str, Field(pattern=_NAME)] = "bookworm"
    mirror: str = "auto"  # "auto": the Debian mirror apt uses on this host
    packages: list[str] = ["python3", "ca-certificates"]


class PlatformConfig(_Strict):
    """The local platform that `dataops up` runs on this machine."""

    state_dir: str = ".dataops"
    postgres: PostgresPlatform = PostgresPlatform()
    airflow: AirflowPlatform = AirflowPlatform()
    base_image: BaseImageConfig = BaseImageConfig()


class MigrationsConfig(_Strict):
    """Versioned warehouse migrations (`dataops migrate`)."""

    path: str = "migrations"
    # The schemas migrations own: `apply` refuses a warehouse with objects here and no history
    # (baseline it), and the drift check compares these with what the migrations produced.
    schemas: list[Annotated[str, Field(pattern=_NAME)]] = ["raw", "dataops"]


class DbtPackages(StrEnum):
    DEPS = "deps"  # `dbt deps` from packages.yml (+ package-lock.yml) before every build
    VENDORED = "vendored"  # the packages folder is checked in; nothing is downloaded


_DBT_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class DbtConfig(_Strict):
    """The team's dbt project: where it is and how the toolkit runs it. The toolkit writes the
    profile itself (credentials come from the environment that runs dbt), so the project's own
    profiles.yml is never read."""

    project_dir: str = "dbt_project"
    profile: Annotated[str, Field(pattern=_DBT_NAME)] | None = None  # default: dbt_project.yml's
    # The target schema every environment publishes under (models with a custom schema go to
    # the schemas the project's generate_schema_name makes of it).
    target_schema: Annotated[str, Field(pattern=_NAME, alias="schema")] = "analytics"
    # dbt target name per environment (default: the environment's name); `target.name` in the
    # project's Jinja sees these.
    targets: dict[str, Annotated[str, Field(pattern=_DBT_NAME)]] = {}
    ci_target: Annotated[str, Field(pattern=_DBT_NAME)] = "ci"
    threads: Annotated[int, Field(ge=1, le=64)] = 2
    packages: DbtPackages = DbtPackages.DEPS
    sqlfluff_config: str | None = None  # default: <project_dir>/.sqlfluff

    def target(self, env: str) -> str:
        return self.targets.get(env, env)


class ProjectConfig(_Strict):
    """The project file `dataops.yml`."""

    version: Literal[1]
    project: Annotated[str, Field(pattern=_NAME)]
    platform: PlatformConfig = PlatformConfig()
    migrations: MigrationsConfig = MigrationsConfig()
    dbt: DbtConfig = DbtConfig()
    environments: dict[str, EnvironmentConfig]

    @field_validator("environments")
    @classmethod
    def _known_environments(
        cls, value: dict[str, EnvironmentConfig]
    ) -> dict[str, EnvironmentConfig]:
        missing = [name for name in ENV_NAMES if name not in value]
        if missing:
            raise ValueError(f"missing environment(s): {', '.join(missing)}")
        for name, env in value.items():
            if not re.match(_NAME, name):
                raise ValueError(f"environment name {name!r} must match {_NAME}")
            source = env.gates.promote_from
            if source is not None and source not in value:
                raise ValueError(f"{name}.gates.promote_from names unknown environment {source!r}")
        # Each environment logs in to its warehouse with a role of its own.
        seen: dict[tuple[str, int, str], str] = {}
        for name, env in value.items():
            key = (env.warehouse.host, env.warehouse.port, env.warehouse.user)
            if key in seen:
                raise ValueError(
                    f"{name}.warehouse.user {env.warehouse.user!r} is also "
                    f"{seen[key]}.warehouse.user: every environment needs its own role "
                    "(e.g. dataops_<env>), so none can reach another's data"
                )
            seen[key] = name
        # Each Celery deployment has a broker of its own (no environment reads another's).
        brokers: dict[int, str] = {}
        secrets = {
            n: name
            for name, env in value.items()
            for n in (
                env.warehouse.password_env,
                env.registry.password_env,
                env.airflow.password_env,
                env.airflow.database_password_env,
            )
            if n
        }
        for name, env in value.items():
            celery = env.airflow.celery
            if celery is None:
                continue
            if celery.broker_password_env in secrets:
                raise ValueError(
                    f"{name}.airflow.celery.broker_password_env {celery.broker_password_env} "
                    f"is also a password of {secrets[celery.broker_password_env]}: the broker "
                    "needs a secret of its own (it is written into its redis.conf)"
                )
            if celery.broker_port in brokers:
                raise ValueError(
                    f"{name}.airflow.celery.broker_port {celery.broker_port} is also "
                    f"{brokers[celery.broker_port]}'s: every environment needs its own broker"
                )
            brokers[celery.broker_port] = name
        return value

    @model_validator(mode="after")
    def _dbt_targets(self) -> ProjectConfig:
        unknown = sorted(set(self.dbt.targets) - set(self.environments))
        if unknown:
            raise ValueError(
                f"dbt.targets names unknown environment(s) {', '.join(unknown)}: its keys are "
                f"environments ({', '.join(self.environments)}), its values dbt target names"
            )
        return self

    @model_validator(mode="after")
    def _admin_is_no_environment_role(self) -> ProjectConfig:
        admin = self.platform.postgres.admin_user
        for name, env in self.environments.items():
            if env.warehouse.user == admin:
                raise ValueError(
                    f"environments.{name}.warehouse.user is {admin!r}, the platform's admin "
                    "role (platform.postgres.admin_user): give the environment a role of its own"
                )
        return self


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where it came from (for errors that point into the file)."""

    config: ProjectConfig
    document: YamlDocument
    path: Path

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def dbt_dir(self) -> Path:
        """The dbt project's folder (dbt.project_dir, relative to dataops.yml)."""
        return (self.root / self.config.dbt.project_dir).resolve()

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.config.environments[name]
        except KeyError:
            known = ", ".join(self.config.environments)
            raise ConfigError(
                f"{self.document.source}: no environment named {name!r}",
                f"use one of: {known}",
            ) from None

    def resolve_secret(
        self, path: tuple[str | int, ...], environ: Mapping[str, str] | None = None
    ) -> str:
        """The secret behind the `*_env` field at `path` (e.g. environments.dev.warehouse...)."""
        node: Any = self.config
        for part in path:
            node = node[part] if isinstance(node, dict) else getattr(node, str(part))
        if node is None:
            raise ConfigError(f"{self.document.where(path)}: {'.'.join(map(str, path))} is not set")
        environ = os.environ if environ is None else environ
        value = environ.get(node)
        if not value:
            raise ConfigError(
                f"{self.document.where(path)}: {'.'.join(map(str, path))} names environment "
                f"variable {node}, which is not set",
                f"export {node}=... (for the local platform, `dataops up` writes it to "
                f"{self.config.platform.state_dir}/secrets.env)",
            )
        return value


def find_config(start: Path | None = None) -> Path:
    """`$DATAOPS_CONFIG`, else the nearest `dataops.yml` at or above `start` (the cwd)."""
    explicit = os.environ.get("DATAOPS_CONFIG")
    if explicit:
        return Path(explicit).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILENAME} in {here} or any folder above it",
        f"run dataops inside the project, or set DATAOPS_CONFIG=/path/to/{CONFIG_FILENAME}",
    )


def load_config(path: Path, limits: Limits | None = None) -> LoadedConfig:
    """Load and validate `dataops.yml`; raises ConfigError listing every problem with its line."""
    display = _display(path)
    document = load_yaml_file(path, limits or Limits(), display=display)
    if not isinstance(document.data, dict):
        raise ConfigError(
            f"{display}:1:1: the file must be a map with keys version, project, environments",
            "see the dataops.yml in the repository for an example",
        )
    # Top-level `x-*` keys are extension fields (as in Compose files): anchors to reuse.
    data = {k: v for k, v in document.data.items() if not str(k).startswith("x-")}
    config = validate(
        ProjectConfig,
        data,
        document,
        "fix the lines above; `dataops validate` checks the file again",
    )
    return LoadedConfig(config=config, document=document, path=path.resolve())


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
