"""PostgreSQL: one cluster under the state dir, with the warehouses and the Airflow metadata DB."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from dataops.core.progress import Report
from dataops.core.promotion import RELEASE_HISTORY_DDL
from dataops.errors import ConfigError, NotReadyError
from dataops.local.host import grant_traverse, is_root, require_free_port
from dataops.local.process import process_alive
from dataops.local.service import Health, Service, ServiceStatus, State
from dataops.project.environment import Project
from dataops.project.state import atomic_write

SOCKET_DIR = "/tmp"  # upstream PostgreSQL's default; short enough for any checkout path


def postgres_bindir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise NotReadyError(
            "PostgreSQL is not installed", "apt-get install -y --no-install-recommends postgresql"
        )
    return Path(found[-1]).parent


class Postgres(Service):
    name = "postgres"
    log_path: str  # always set: the server's log file

    def __init__(self, project: Project) -> None:
        config = project.config
        self.project = project
        self.state = state = project.state
        self.settings = config.platform.postgres
        self.port = self.settings.port
        self.data = state.postgres / "data"
        self.log_path = str(state.log("postgres"))
        self.user = "postgres" if is_root() else None
        # The admin role owns the databases, each warehouse's `dataops` schema and its release
        # history; every environment logs in with its own role, to its own databases only.
        self.admin = self.settings.admin_user

    def logins(self) -> list[tuple[str, str, str, str]]:
        """(database, role, password, what) of every database the platform provisions."""
        found = []
        for env in self.project.environments():
            if env.config.warehouse.port != self.port or env.config.warehouse.host not in (
                "127.0.0.1",
                "localhost",
            ):
                continue
            wh = env.config.warehouse
            found.append((wh.database, wh.user, env.warehouse_password, f"{env.name} warehouse"))
            found.append(
                (
                    env.airflow_database,
                    env.airflow_database,
                    self.project.secrets.require(env.airflow_database_password_env),
                    f"{env.name} Airflow metadata",
                )
            )
        return found

    @property
    def databases(self) -> list[str]:
        return [database for database, *_ in self.logins()]

    # -- helpers -------------------------------------------------------------------------------
    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else argv

    def _run(self, argv: list[str], input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._as_owner(argv), input=input, capture_output=True, text=True, check=False
        )

    def _pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if process_alive(pid) else None

    def admin_password(self) -> str:
        return self.project.secrets.require(self.settings.admin_password_env)

    def dsn(self, database: str, role: str | None = None, password: str | None = None) -> str:
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1",
            port=self.port,
            dbname=database,
            user=role or self.admin,
            password=password or self.admin_password(),
        )

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run(
            [
                str(postgres_bindir() / "psql"),
                "-h",
                SOCKET_DIR,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-f",
                "-",
            ],
            input=sql,  # on stdin, so passwords never show in the process list
        )
        if result.returncode != 0:
            raise NotReadyError(
                f"postgres: {sql.split()[0]} failed: {result.stderr.strip()}", log=self.log_path
            )
        return result.stdout.strip()

    # -- service -------------------------------------------------------------------------------
    def status(self) -> ServiceStatus:
        pid = self._pid()
        address = f"127.0.0.1:{self.port}"
        if pid is None:
            return ServiceStatus(
                self.name, State.STOPPED, Health.UNKNOWN, address, log=self.log_path
            )
        try:
            logins = self.logins()
            for database, role, password, _ in logins:
                with psycopg.connect(self.dsn(database, role, password), connect_timeout=3) as c:
                    c.execute("select 1")
        except (psycopg.Error, ConfigError, NotReadyError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return ServiceStatus(
                self.name, State.RUNNING, Health.UNHEALTHY, address, pid, detail, self.log_path
            )
        return ServiceStatus(
            self.name,
            State.RUNNING,
            Health.HEALTHY,
            address,
            pid,
            f"databases: {', '.join(d for d, *_ in logins)} (one role each)",
            self.log_path,
        )

    def up(self, report: Report) -> bool:
        changed = self._init_cluster(report)
        changed |= self._write_config()
        if self._pid() is None:
            require_free_port(self.port, "platform.postgres.port")
            report(f"starting PostgreSQL on 127.0.0.1:{self.port}")
            result = self._run(
                [
                    str(postgres_bindir() / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    self.log_path,
                    "-w",
                    "-t",
                    "120",
                    "start",
                ],
            )
            if result.returncode != 0:
                raise NotReadyError(
                    f"PostgreSQL did not start: {result.stderr.strip() or result.stdout.strip()}",
                    "read the log, fix the cause, then run `dataops up` again",
                    log=self.log_path,
                )
            changed = True
        elif changed:
            self._run([str(postgres_bindir() / "pg_ctl"), "-D", str(self.data), "reload"])
            self.wait_healthy(60)
            pending = self._psql("select name from pg_settings where pending_restart")
            if pending.strip():  # e.g. wal_level: only a restart applies it
                report(f"restarting PostgreSQL to apply {', '.join(pending.split())}")
                bindir = str(postgres_bindir())
                restart = ["-l", self.log_path, "-m", "fast", "-w", "-t", "120", "restart"]
                result = self._run([f"{bindir}/pg_ctl", "-D", str(self.data), *restart])
                if result.returncode != 0:
                    raise NotReadyError(
                        f"PostgreSQL did not restart: {result.stderr.strip()}",
                        "read the log, fix the cause, then run `dataops up` again",
                        log=self.log_path,
                    )
        changed |= self._provision(report)
        self.wait_healthy(60)
        return changed

    def down(self, report: Report) -> bool:
        if self._pid() is None:
            return False
        report("stopping PostgreSQL")
        result = self._run(
            [str(postgres_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        )
        if result.returncode != 0:
            raise NotReadyError(
                f"PostgreSQL did not stop: {result.stderr.strip()}", log=self.log_path
            )
        return True

    # -- setup steps ---------------------------------------------------------------------------
    def _init_cluster(self, report: Report) -> bool:
        self.state.postgres.mkdir(parents=True, exist_ok=True)
        Path(self.log_path).touch()
        if self.user:
            shutil.chown(self.state.postgres, self.user, self.user)
            shutil.chown(self.log_path, self.user, self.user)
            for folder in grant_traverse(self.state.postgres, self.user):
                report(f"gave the {self.user} user search permission on {folder}")
        if (self.data / "PG_VERSION").exists():
            return False
        # initdb into a scratch folder, then rename: an interrupted init leaves no half cluster.
        scratch = self.state.postgres / "data.init"
        if scratch.exists():
            shutil.rmtree(scratch)
        report("initializing the PostgreSQL cluster")
        result = self._run(
            [
                str(postgres_bindir() / "initdb"),
                "-D",
                str(scratch),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ],
        )
        if result.returncode != 0:
            raise NotReadyError(f"initdb failed: {result.stderr.strip()}", log=self.log_path)
        with (scratch / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'dataops.conf'\n")
        os.replace(scratch, self.data)
        return True

    def _write_config(self) -> bool:
        conf = (
            "# Written by `dataops up`; edit dataops.yml instead.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{SOCKET_DIR}'\n"
            "max_connections = 200\n"
            "shared_buffers = 256MB\n"
            "max_wal_size = 4GB\n"
        )
        hba = (
            "# Written by `dataops up`.\n"
            "local all postgres peer\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )
        changed = atomic_write(self.data / "dataops.conf", conf, 0o600)
        changed |= atomic_write(self.data / "pg_hba.conf", hba, 0o600)
        if self.user:
            for name in ("dataops.conf", "pg_hba.conf"):
                shutil.chown(self.data / name, self.user, self.user)
        return changed

    def _role(self, role: str, password: str, report: Report, extra: str = "") -> bool:
        """Create `role` (login) or fix its password; True when something changed."""
        exists = self._psql(f"select 1 from pg_roles where rolname = '{role}'")
        if not exists:
            report(f"creating role {role}")
            self._psql(f"create role {role} login {extra} password '{_quote(password)}'")
            return True
        try:
            with psycopg.connect(self.dsn("postgres", role, password), connect_timeout=3):
                return False
        except psycopg.OperationalError as exc:
            if "password authentication failed" not in str(exc):
                return False  # e.g. no CONNECT on the postgres database: the password is fine
        report(f"updating the password of role {role}")
        self._psql(f"alter role {role} password '{_quote(password)}'")
        return True

    def _provision(self, report: Report) -> bool:
        changed = self._role(self.admin, self.admin_password(), report, "createdb")
        present = set(self._psql("select datname from pg_database").split())
        for database, role, password, what in self.logins():
            changed |= self._role(role, password, report)
            # The admin may create databases owned by the environments' roles (scratch ones).
            self._psql(f"grant {role} to {self.admin}")
            if database not in present:
                report(f"creating database {database} ({what}, only {role} may connect)")
                owner = role if role == database else self.admin
                self._psql(f"create database {database} owner {owner}")
                changed = True
            # Nobody but its own role (and the admin) connects to a database: the dev
            # deployment's role is refused by warehouse_prod.
            self._psql(
                f"revoke connect, temporary on database {database} from public;\n"
                f"grant connect, temporary, create on database {database} to {role};\n"
                f"grant connect on database {database} to {self.admin};"
            )
            if role != database:  # a warehouse: the release history, owned by the admin
                self._psql(history_sql(self.admin, role), database)
        return changed


def history_sql(admin: str, runtime: str) -> str:
    """The `dataops` schema and the append-only release history, owned by `admin`: `runtime`
    (the environment's role, used by its deployment and the CLI) may read and append, and
    create its own bookkeeping tables in the schema, but not change or drop the history."""
    return f"""
set role {admin};
{RELEASE_HISTORY_DDL};
reset role;
grant usage, create on schema dataops to {runtime};
grant select, insert on dataops.release_history to {runtime};
grant usage on sequence dataops.release_history_id_seq to {runtime};
"""


def _quote(value: str) -> str:
    return value.replace("'", "''")
