"""The project a command runs in, and its environments, each resolved once.

A command builds one `Project` (dataops.yml loaded, the state dir, the local secrets) and asks
it for the `Environment`s it works on. An `Environment` carries everything about one
environment that the call chain needs: its config, its secrets (resolved on first use, then
kept), its warehouse DSN, its registry and Airflow clients, and its state paths. Code below the
CLI receives these objects; it never looks an environment up by name again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataops.clients import git
from dataops.core.branches import CI_BRANCH_VARIABLE, effective_branch
from dataops.core.config import EnvironmentConfig, LoadedConfig, ProjectConfig, RegistryAuth
from dataops.core.promotion import require_source
from dataops.project.secrets import LocalSecrets
from dataops.project.state import StateDir

if TYPE_CHECKING:
    import psycopg

    from dataops.clients.airflow_api import AirflowClient
    from dataops.clients.oci import RegistryClient


@dataclass
class Project:
    """dataops.yml loaded once, the state dir, the local secrets and the resolved environments."""

    loaded: LoadedConfig
    state: StateDir
    secrets: LocalSecrets
    _environments: dict[str, Environment] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, loaded: LoadedConfig) -> Project:
        state = StateDir.of(loaded)
        return cls(loaded, state, LocalSecrets(state))

    @property
    def root(self) -> Path:
        return self.loaded.root

    @property
    def config(self) -> ProjectConfig:
        return self.loaded.config

    @property
    def migrations_folder(self) -> Path:
        return self.root / self.config.migrations.path

    @cached_property
    def commit(self) -> str:
        """HEAD of the checkout ("" outside git), read once per command."""
        return git.head_commit(self.root)

    @cached_property
    def branch(self) -> str:
        """The branch the command acts for: $DATAOPS_CI_BRANCH (a CI job names the branch of its
        detached checkout), else the checkout's ("HEAD" when detached, "" outside git)."""
        checkout = git.current_branch(self.root)
        return effective_branch(os.environ.get(CI_BRANCH_VARIABLE, ""), checkout)

    def environment(self, name: str) -> Environment:
        """The environment `name`, resolved on first use and the same object afterwards;
        a ConfigError naming the known environments when there is none."""
        found = self._environments.get(name)
        if found is None:
            found = Environment(name, self.loaded.environment(name), self)
            self._environments[name] = found
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.config.environments)

    def environments(self) -> Iterator[Environment]:
        for name in self.config.environments:
            yield self.environment(name)

    def secret(self, path: tuple[str | int, ...]) -> str:
        """The secret behind the `*_env` field at `path` of dataops.yml."""
        return self.loaded.resolve_secret(path, self.secrets.values())


class Environment:
    """One environment (dev, staging, prod) of the project, resolved once per command."""

    def __init__(self, name: str, config: EnvironmentConfig, project: Project) -> None:
        self.name = name
        self.config = config
        self.project = project

    def __repr__(self) -> str:
        return f"Environment({self.name!r})"

    @property
    def state(self) -> StateDir:
        return self.project.state

    @cached_property
    def promotion_source(self) -> Environment:
        """The environment releases are promoted from into this one (gates.promote_from),
        resolved through the project like every environment; a usage error when none is."""
        return self.project.environment(require_source(self.config.gates, self.name))

    # -- secrets (each resolved once, on first use) --------------------------------------------
    @cached_property
    def warehouse_password(self) -> str:
        return self.project.secret(("environments", self.name, "warehouse", "password_env"))

    @cached_property
    def registry_credentials(self) -> tuple[str, str] | None:
        registry = self.config.registry
        if registry.auth is RegistryAuth.NONE or not registry.username:
            return None
        path = ("environments", self.name, "registry", "password_env")
        return registry.username, self.project.secret(path)

    @cached_property
    def airflow_password(self) -> str:
        return self.project.secret(("environments", self.name, "airflow", "password_env"))

    # -- the environment's own Airflow deployment ----------------------------------------------
    @property
    def airflow_database(self) -> str:
        return self.config.airflow.database or f"airflow_{self.name.replace('-', '_')}"

    @property
    def _prefix(self) -> str:
        return f"DATAOPS_AIRFLOW_{self.name.upper().replace('-', '_')}"

    @property
    def airflow_database_password_env(self) -> str:
        return self.config.airflow.database_password_env or f"{self._prefix}_DB_PASSWORD"

    @property
    def airflow_jwt_secret_env(self) -> str:
        return f"{self._prefix}_JWT_SECRET"

    @property
    def airflow_secret_key_env(self) -> str:
        return f"{self._prefix}_SECRET_KEY"

    @property
    def broker_password_env(self) -> str:
        """The Celery broker's password (Redis `requirepass`), for a CeleryExecutor deployment."""
        celery = self.config.airflow.celery
        return (celery.broker_password_env if celery else None) or f"{self._prefix}_BROKER_PASSWORD"

    def secret_names(self) -> list[str]:
        """Every secret of this environment that the local platform generates when unset."""
        config = self.config
        names = [
            config.warehouse.password_env,
            self.airflow_database_password_env,
            self.airflow_jwt_secret_env,
            self.airflow_secret_key_env,
        ]
        names += [n for n in (config.registry.password_env, config.airflow.password_env) if n]
        if config.airflow.executor == "celery":
            names.append(self.broker_password_env)
        return names

    # -- the warehouse -------------------------------------------------------------------------
    @cached_property
    def warehouse_dsn(self) -> str:
        from dataops.clients import warehouse

        return warehouse.conninfo(self.config.warehouse, self.warehouse_password)

    def connect(self, application: str = "dataops") -> psycopg.Connection:
        """An autocommit connection to this environment's warehouse."""
        from dataops.clients import warehouse

        return warehouse.connect(self.warehouse_dsn, self.name, application)

    # -- the registry and Airflow --------------------------------------------------------------
    @property
    def registry_address(self) -> str:
        return self.config.registry.address

    def image_repository(self, image: str) -> str:
        """`<registry>/dataops/<image>` in this environment's registry."""
        return f"{self.registry_address}/dataops/{image}"

    def registry(self) -> RegistryClient:
        """A client of this environment's registry (close it, or use it in a `with`)."""
        from dataops.clients.oci import RegistryClient

        return RegistryClient(
            self.config.registry.url,
            self.registry_credentials,
            name=f"{self.name} ({self.registry_address})",
        )

    def airflow(self) -> AirflowClient:
        from dataops.clients.airflow_api import AirflowClient

        airflow = self.config.airflow
        return AirflowClient(airflow.url.rstrip("/"), airflow.username, self.airflow_password)

    # -- state ---------------------------------------------------------------------------------
    @property
    def airflow_home(self) -> Path:
        return self.state.airflow_home(self.name)

    @property
    def data_dir(self) -> Path:
        return self.state.data(self.name)

    @property
    def builds_file(self) -> Path:
        """The build record of the checkout's branch for this environment: what
        `images build --push` writes and `release create` makes a release of."""
        return self.state.builds(self.name, self.project.branch)

    @property
    def main_builds_file(self) -> Path:
        """Main's build record: the one shared by everyone, whatever the checkout's branch."""
        return self.state.builds(self.name)

    @property
    def active_release_file(self) -> Path:
        return self.state.active_release(self.name)

    def running_images(self) -> Mapping[str, Any]:
        """The images this environment runs: its active release's, or main's latest build's
        before any release (`{name: {"ref", "digest", "content_hash"}}`)."""
        for path in (self.active_release_file, self.main_builds_file):
            try:
                return dict(json.loads(path.read_text())["images"])
            except (FileNotFoundError, KeyError, ValueError):
                continue
        return {}
