"""The local platform as a whole: the services in start order, and up / down / status."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dataops.core.capacity import hosted_here
from dataops.core.progress import Report
from dataops.local.base_image import BaseImage, ensure_base_image
from dataops.local.deployment import AirflowDeployment
from dataops.local.docker_engine import DockerEngine
from dataops.local.host import ensure_python_packages, install_packages, missing_packages
from dataops.local.postgres import Postgres
from dataops.local.process import ManagedProcess
from dataops.local.redis_server import RedisServer
from dataops.local.registry_server import HTTP_SECRET_ENV, RegistryServer
from dataops.local.service import Service, ServiceStatus
from dataops.project.environment import Project


@dataclass
class UpResult:
    changed: list[str]
    generated_secrets: list[str]
    base_image: BaseImage | None
    statuses: list[ServiceStatus]


class LocalPlatform:
    """The services `dataops up` runs on this machine, in start order."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.state = project.state
        self.secrets = project.secrets
        self.postgres = Postgres(project)
        self.docker = DockerEngine(self.state)
        self.registries = [
            RegistryServer(env)
            for env in project.environments()
            if env.config.registry.host in ("127.0.0.1", "localhost")
        ]
        local = [env for env in project.environments() if hosted_here(env.config.airflow.url)]
        # Each Celery deployment's own broker (its Redis), up before the deployment.
        self.brokers = [
            RedisServer(env) for env in local if env.config.airflow.executor == "celery"
        ]
        secret_names = frozenset(self.secret_names())
        self.deployments = [
            AirflowDeployment(env, self.postgres, len(local), secret_names) for env in local
        ]

    @property
    def services(self) -> list[Service]:
        return [self.postgres, self.docker, *self.registries, *self.brokers, *self.deployments]

    def deployment(self, env: str) -> AirflowDeployment:
        for deployment in self.deployments:
            if deployment.env.name == env:
                return deployment
        raise KeyError(env)

    def services_of(self, envs: list[str]) -> list[str]:
        """The services `dataops up --env E` brings up: the shared ones (postgres, docker) and
        E's registry and deployment."""
        names = [self.postgres.name, self.docker.name]
        names += [r.name for r in self.registries if r.env.name in envs]
        names += [b.name for b in self.brokers if b.env.name in envs]
        names += [d.name for d in self.deployments if d.env.name in envs]
        return names

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def secret_names(self) -> list[str]:
        names: list[str] = [
            HTTP_SECRET_ENV,
            self.project.config.platform.postgres.admin_password_env,
        ]
        for env in self.project.environments():
            names += env.secret_names()
        return names

    def status(self) -> list[ServiceStatus]:
        return [service.status() for service in self.services]

    def up(
        self,
        report: Report,
        *,
        only: list[str] | None = None,
        install: bool = True,
        base_image: bool = True,
    ) -> UpResult:
        self.state.ensure(self.project.names)
        if install:
            missing = missing_packages()
            if missing:
                install_packages([req.package for req in missing], report)
            ensure_python_packages(self.project.root, report)
        generated = self.secrets.ensure(self.secret_names())
        changed: list[str] = []
        image = None
        wanted = [s for s in self.services if not only or s.name in only]
        for service in wanted:
            if isinstance(service, AirflowDeployment):
                continue
            if service.up(report):
                changed.append(service.name)
        deployments = [s for s in wanted if isinstance(s, AirflowDeployment)]
        if not only:
            changed += self._stop_orphan_brokers(report)
        # The deployments come up side by side: each mostly waits on its own processes. The
        # base image (only image builds need it: a task pulls its image, layers and all, from
        # the registry) is made beside them, so an offline bootstrap (debootstrap, mostly
        # downloads) overlaps their migrations and start; `up` returns after both.
        cancelled = threading.Event()  # set when this thread is interrupted or fails
        with ThreadPoolExecutor(max_workers=len(deployments) + 1) as pool:
            base = (
                pool.submit(
                    ensure_base_image,
                    self.project.config.platform.base_image,
                    self.state,
                    report,
                    cancelled=cancelled,
                )
                if deployments and base_image
                else None
            )
            try:
                done = list(pool.map(lambda d: d.up(report), deployments))
            except BaseException:
                # Ctrl-C or a deployment that failed: the base image starts nothing new
                # (a pull the terminal's Ctrl-C killed does not turn into a bootstrap).
                cancelled.set()
                raise
            if base is not None:
                image = base.result()
                if image.changed:
                    changed.append("base-image")
            changed += [d.name for d, did in zip(deployments, done, strict=True) if did]
        statuses = [s.status() for s in self.services if not only or s.name in only]
        return UpResult(changed, generated, image, statuses)

    def orphan_brokers(self) -> list[ManagedProcess]:
        """Redis brokers dataops started for an environment that is no longer Celery."""
        known = {broker.process.pidfile for broker in self.brokers}
        return [
            ManagedProcess(name=path.stem, argv=[], pidfile=path, log=self.state.log(path.stem))
            for path in sorted(self.state.run.glob("redis-*.pid"))
            if path not in known
        ]

    def _stop_orphan_brokers(self, report: Report) -> list[str]:
        stopped = []
        for proc in self.orphan_brokers():
            if proc.pid() is not None:
                report(f"stopping {proc.name}: no environment runs Celery with it any more")
                proc.stop()
                stopped.append(proc.name)
        return stopped

    def down(self, report: Report, *, only: list[str] | None = None) -> list[str]:
        stopped = [] if only else self._stop_orphan_brokers(report)
        for service in reversed(self.services):
            if only and service.name not in only:
                continue
            if service.down(report):
                stopped.append(service.name)
        return stopped
