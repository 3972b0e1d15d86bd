"""The Celery broker of each environment whose Airflow runs CeleryExecutor: Debian's
`redis-server` on 127.0.0.1 at the environment's `broker_port`, with its own password, and an
append-only file so tasks queued before a restart are still there after it."""

from __future__ import annotations

import shutil

from dataops.errors import NotReadyError
from dataops.local.process import ManagedProcess
from dataops.local.service import Health, ProcessService, ServiceStatus, State
from dataops.project.environment import Environment
from dataops.project.state import atomic_write


class RedisServer(ProcessService):
    """`redis-server CONFIG` for one environment (bound to 127.0.0.1, `requirepass`)."""

    def __init__(self, env: Environment) -> None:
        celery = env.config.airflow.celery
        assert celery is not None, "only a Celery environment has a broker"
        self.env = env
        self.port = celery.broker_port
        self.name = f"redis-{env.name}"
        self.address = f"127.0.0.1:{self.port}"
        self.port_key = f"environments.{env.name}.airflow.celery.broker_port"
        self.secrets = env.project.secrets
        self.home = env.state.root / "redis" / env.name
        self.log_path = str(env.state.log(self.name))
        program = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = ManagedProcess(
            name=self.name,
            argv=[program, str(self.home / "redis.conf")],
            pidfile=env.state.pidfile(self.name),
            log=env.state.log(self.name),
        )

    def password(self) -> str:
        password = self.secrets.require(self.env.broker_password_env)
        if any(c in password for c in '"\\') or not password.isprintable():
            raise NotReadyError(
                f"{self.env.broker_password_env} (the Celery broker's password) holds a quote, "
                "a backslash or a control character, which redis.conf cannot take",
                "unset it (dataops up generates one) or choose a plain one",
            )
        return password

    def render(self) -> bool:
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        text = f"""# Written by `dataops up` for {self.env.name}'s Celery broker. Private.
bind 127.0.0.1
port {self.port}
protected-mode yes
requirepass "{self.password()}"
daemonize no
logfile ""
dir {self.home}
save ""
appendonly yes
appendfsync everysec
"""
        return atomic_write(self.home / "redis.conf", text, 0o600)

    def probe(self) -> tuple[Health, str]:
        try:
            import redis
        except ImportError:  # a venv from before `executor: celery` existed
            return Health.UNHEALTHY, "the redis client is not installed: run `make setup`"

        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # One try each: redis-py 8 retries a failed command three times with backoff by default
        # (seconds for the refused anonymous ping), and whoever asks for health retries already.
        once = Retry(NoBackoff(), 0)
        try:
            anonymous = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=3, retry=once)
            try:
                anonymous.ping()
                return Health.UNHEALTHY, "answers without a password"
            except redis.AuthenticationError:
                pass
            client = redis.Redis(
                host="127.0.0.1",
                port=self.port,
                password=self.password(),
                socket_timeout=3,
                retry=once,
            )
            client.ping()
        except redis.RedisError as exc:
            return Health.UNHEALTHY, f"{type(exc).__name__}: {exc}"
        return Health.HEALTHY, "anonymous -> NOAUTH, password -> PONG (Celery broker)"

    def status(self) -> ServiceStatus:
        pid = self.process.pid()
        if pid is None:
            return ServiceStatus(
                self.name, State.STOPPED, Health.UNKNOWN, self.address, log=self.log_path
            )
        health, detail = self.probe()
        return ServiceStatus(
            self.name, State.RUNNING, health, self.address, pid, detail, self.log_path
        )
