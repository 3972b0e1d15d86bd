"""Apply versioned migrations to a warehouse: history, checksums, a lock, drift.

The history lives in `dataops.schema_history` of each warehouse (like Flyway's
flyway_schema_history): one row per applied script with version, description, checksum, who,
when, duration and success. `apply` holds a session-level advisory lock for its whole run, so
concurrent runs apply each migration exactly once (the others wait, then find nothing to do); a
killed migrator's session ends and its lock with it. Each transactional migration runs in its
own transaction together with its history row and the catalog snapshot: it is applied
completely, or not at all and not recorded.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from dataops.core import migration_plan
from dataops.core.migration_plan import HistoryRow
from dataops.core.migrations import (
    Migration,
    MigrationSet,
    parse_version,
    read_migrations,
    version_text,
)
from dataops.core.progress import Report
from dataops.errors import DataOpsError, ExitCode
from dataops.project.environment import Environment

LOCK_KEY = 0x6D6967726174 & 0x7FFFFFFFFFFFFFFF  # "migrat"
HISTORY_DDL = """
create schema if not exists dataops;
create table if not exists dataops.schema_history (
    installed_rank serial primary key,
    version text,
    description text not null,
    type text not null,
    script text not null,
    checksum text,
    installed_by text not null,
    installed_at timestamptz not null default now(),
    execution_ms integer not null,
    success boolean not null
);
create table if not exists dataops.schema_snapshot (
    id integer primary key default 1 check (id = 1),
    taken_at timestamptz not null default now(),
    objects jsonb not null
)
"""
# The toolkit's own bookkeeping (the dbt step makes dbt_publishes): never drift.
OWN_TABLES = ("schema_history", "schema_snapshot", "release_history", "dbt_publishes")


@dataclass
class Applied:
    script: str
    version: str
    checksum: str
    ms: int
    statements: list[str]


@dataclass
class Status:
    history: list[HistoryRow]
    pending: list[Migration]
    drift: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # every problem, errors first
    errors: list[str] = field(default_factory=list)  # the problems that would stop an apply


class MigrationError(DataOpsError):
    exit_code = ExitCode.FAILED


class Migrator:
    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        folder: Path,
        schemas: list[str],
        env: str,
        strict_destructive: bool,
        report: Report,
    ) -> None:
        self.connect = connect
        self.folder = folder
        self.schemas = schemas
        self.env = env
        self.strict_destructive = strict_destructive
        self.report = report

    @classmethod
    def for_environment(
        cls, env: Environment, report: Report, folder: Path | None = None
    ) -> Migrator:
        """The migrator of `env`'s warehouse, with `folder`'s migrations (the project's by
        default; a release's when it is promoted) and the project's settings; destructive
        changes need the annotation where the environment requires approval."""
        project = env.project
        return cls(
            connect=lambda: env.connect("dataops-migrate"),
            folder=folder or project.migrations_folder,
            schemas=project.config.migrations.schemas,
            env=env.name,
            strict_destructive=env.config.gates.require_approval,
            report=report,
        )

    # -- reading -----------------------------------------------------------------------------
    def migrations(self) -> MigrationSet:
        return read_migrations(self.folder)

    @staticmethod
    def has_history(conn: psycopg.Connection) -> bool:
        row = conn.execute("select to_regclass('dataops.schema_history') is not null").fetchone()
        return bool(row and row[0])

    def history(self, conn: psycopg.Connection) -> list[HistoryRow]:
        if not self.has_history(conn):
            return []
        rows = conn.execute(
            "select installed_rank, version, description, type, script, checksum, installed_by,"
            " installed_at, execution_ms, success from dataops.schema_history"
            " order by installed_rank"
        ).fetchall()
        return [HistoryRow(*row) for row in rows]

    def objects_in_managed_schemas(self, conn: psycopg.Connection) -> list[str]:
        rows = conn.execute(
            "select n.nspname || '.' || c.relname from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f')"
            " and not (n.nspname = 'dataops' and c.relname = any(%s)) order by 1",
            (self.schemas, list(OWN_TABLES)),
        ).fetchall()
        return [row[0] for row in rows]

    # -- validation (before any DDL): the rules are in core.migration_plan -------------------
    def problems(
        self, found: MigrationSet, history: list[HistoryRow]
    ) -> tuple[list[str], list[str]]:
        """(errors, warnings): what stops an apply, and what does not."""
        return migration_plan.problems(
            found, history, self.env, self.folder, strict_destructive=self.strict_destructive
        )

    @staticmethod
    def pending(found: MigrationSet, history: list[HistoryRow]) -> list[Migration]:
        return migration_plan.pending(found, history)

    def _read(self) -> tuple[MigrationSet, list[HistoryRow], list[str]]:
        """The migration files, the warehouse's history and its drift, touching nothing."""
        found = self.migrations()
        with self.connect() as conn:
            history = self.history(conn)
            drift = self.drift(conn) if history else []
        return found, history, drift

    def validate(self) -> Status:
        found, history, drift = self._read()
        errors, warnings = self.problems(found, history)
        if errors:
            raise MigrationError(
                f"{len(errors)} problem(s) in {self.folder}:\n  " + "\n  ".join(errors),
                "nothing was applied; fix the problems above",
            )
        return Status(history, self.pending(found, history), drift, warnings)

    def plan(self) -> Status:
        """What `apply` would run now (validated), touching nothing."""
        return self.validate()

    # -- apply -------------------------------------------------------------------------------
    def apply(self, lock_timeout: float = 300.0) -> tuple[list[Applied], list[str]]:
        found = self.migrations()
        with self.connect() as conn:
            self._lock(conn, lock_timeout)
            if not self.has_history(conn):
                existing = self.objects_in_managed_schemas(conn)
                if existing:
                    raise MigrationError(
                        f"the {self.env} warehouse already has objects in "
                        f"{', '.join(self.schemas)} ({', '.join(existing[:5])}"
                        f"{', ...' if len(existing) > 5 else ''}) but no migration history",
                        "adopt it first: dataops migrate baseline --env "
                        f"{self.env} --version V (V = the last migration it already has)",
                        exit_code=ExitCode.USAGE,
                    )
                conn.execute(HISTORY_DDL)
            history = self.history(conn)
            errors, warnings = self.problems(found, history)
            if errors:
                raise MigrationError(
                    f"{len(errors)} problem(s) in {self.folder}:\n  " + "\n  ".join(errors),
                    "nothing was applied; fix the problems above",
                )
            applied = [self._apply_one(conn, m) for m in self.pending(found, history)]
            conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))
        return applied, warnings

    def _lock(self, conn: psycopg.Connection, timeout: float) -> None:
        # A killed migrator must not keep its lock (and transaction) while the server runs its
        # statement: have the server check every second that this client is still there.
        conn.execute("set client_connection_check_interval = '1s'")
        started = time.monotonic()
        announced = False
        while True:
            row = conn.execute("select pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            if row and row[0]:
                return
            holder = conn.execute(
                "select a.pid, a.application_name, a.backend_start from pg_locks l"
                " join pg_stat_activity a on a.pid = l.pid where l.locktype = 'advisory'"
                " and l.granted and (l.classid::bigint << 32 | l.objid::bigint) = %s",
                (LOCK_KEY,),
            ).fetchone()
            if not announced:
                who = f"pid {holder[0]} ({holder[1] or 'no name'})" if holder else "another run"
                self.report(f"waiting for the migration lock held by {who}")
                announced = True
            if time.monotonic() - started > timeout:
                raise MigrationError(
                    f"the migration lock of the {self.env} warehouse is still held after "
                    f"{timeout:.0f}s",
                    "wait for the other `dataops migrate apply` to finish (a killed one "
                    "releases the lock when its connection closes), or raise --lock-timeout",
                )
            time.sleep(0.2)

    def _who(self, conn: psycopg.Connection) -> str:
        row = conn.execute("select current_user").fetchone()
        return f"{getpass.getuser()}@{socket.gethostname()} as {row[0] if row else '?'}"

    def _record(self, conn: psycopg.Connection, m: Migration, ms: int, success: bool) -> None:
        conn.execute(
            "insert into dataops.schema_history (version, description, type, script, checksum,"
            " installed_by, execution_ms, success) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                m.version_label or None,
                m.description,
                m.kind.value,
                m.script,
                m.checksum,
                self._who(conn),
                ms,
                success,
            ),
        )

    def _apply_one(self, conn: psycopg.Connection, m: Migration) -> Applied:
        label = f"V{m.version_label}" if m.version else "R"
        self.report(f"applying {m.script} ({len(m.statements)} statement(s))")
        started = time.monotonic()
        if m.transactional:
            try:
                with conn.transaction():
                    for statement in m.statements:
                        self._execute(conn, m, statement)
                    self._verify(conn, m)
                    ms = int((time.monotonic() - started) * 1000)
                    self._record(conn, m, ms, True)
                    self.save_snapshot(conn)
            except MigrationError:
                raise
            except psycopg.Error as exc:
                raise MigrationError(
                    f"{m.path}: {label} failed and was rolled back (nothing of it remains, "
                    f"nothing recorded): {_first_line(exc)}",
                    "fix the migration (it was never applied, so editing it is fine) and run "
                    "apply again",
                ) from None
        else:
            try:
                for statement in m.statements:
                    self._execute(conn, m, statement)
                self._verify(conn, m)
            except (psycopg.Error, MigrationError) as exc:
                ms = int((time.monotonic() - started) * 1000)
                self._record(conn, m, ms, False)
                invalid = self.invalid_objects(conn)
                raise MigrationError(
                    f"{m.path}: {label} failed outside a transaction (-- dataops:no-transaction)"
                    f": {_first_line(exc)}"
                    + (f"; invalid objects left behind: {', '.join(invalid)}" if invalid else "")
                    + "; it is recorded as failed and blocks further applies",
                    "drop or finish what it left, fix the file, then `dataops migrate repair "
                    f"--env {self.env} --version {m.version_label}` and apply again",
                ) from None
            ms = int((time.monotonic() - started) * 1000)
            with conn.transaction():
                self._record(conn, m, ms, True)
                self.save_snapshot(conn)
        self.report(f"applied {m.script} in {ms} ms")
        return Applied(m.script, m.version_label, m.checksum, ms, list(m.statements))

    @staticmethod
    def _execute(conn: psycopg.Connection, m: Migration, statement: str) -> None:
        try:
            conn.execute(statement.encode())  # bytes: no client-side placeholder parsing
        except psycopg.Error as exc:
            line = m.line_of(statement.split("\n", 1)[0])
            raise type(exc)(f"line {line}: {_first_line(exc)}") from None

    @staticmethod
    def _verify(conn: psycopg.Connection, m: Migration) -> None:
        for check in m.verify:
            row = conn.execute(check.encode()).fetchone()
            if not row or row[0] is not True:
                raise MigrationError(
                    f"{m.path}: verify check failed (returned {row[0] if row else 'no row'}): "
                    f"{' '.join(check.split())[:200]}",
                    "fix the migration or its check",
                )

    def invalid_objects(self, conn: psycopg.Connection) -> list[str]:
        rows = conn.execute(
            "select n.nspname || '.' || c.relname from pg_index i"
            " join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace"
            " where not i.indisvalid and n.nspname not in ('pg_catalog', 'information_schema')"
            " order by 1"
        ).fetchall()
        return [f"index {row[0]} (INVALID)" for row in rows]

    # -- baseline, repair --------------------------------------------------------------------
    def baseline(self, version: str, description: str) -> None:
        parsed = parse_version(version)
        with self.connect() as conn:
            self._lock(conn, 30)
            if self.history(conn):
                raise MigrationError(
                    f"the {self.env} warehouse already has a migration history",
                    "baseline is only for adopting a database that never had one; "
                    "see dataops migrate status",
                    exit_code=ExitCode.USAGE,
                )
            with conn.transaction():
                conn.execute(HISTORY_DDL)
                conn.execute(
                    "insert into dataops.schema_history (version, description, type, script,"
                    " checksum, installed_by, execution_ms, success)"
                    " values (%s, %s, 'baseline', %s, null, %s, 0, true)",
                    (version_text(parsed), description, "<< baseline >>", self._who(conn)),
                )
                self.save_snapshot(conn)

    def repair(self, version: str) -> str:
        """Fix one version: forget its failed attempt, or accept its file's new checksum."""
        label = version_text(parse_version(version))
        found = {m.version_label: m for m in self.migrations().versioned}
        with self.connect() as conn:
            self._lock(conn, 30)
            rows = [r for r in self.history(conn) if r.version == label and r.type == "versioned"]
            if not rows:
                raise MigrationError(
                    f"V{label} has no history row in the {self.env} warehouse: nothing to repair",
                    "dataops migrate status shows what was applied",
                    exit_code=ExitCode.USAGE,
                )
            row = rows[-1]
            with conn.transaction():
                if not row.success:
                    conn.execute(
                        "delete from dataops.schema_history where installed_rank = %s",
                        (row.rank,),
                    )
                    return f"forgot the failed attempt of V{label}; apply will run it again"
                migration = found.get(label)
                if migration is None:
                    raise MigrationError(
                        f"V{label} is applied but has no file to take the checksum from",
                        f"restore the file of V{label} in {self.folder}",
                    )
                if migration.checksum == row.checksum:
                    return f"V{label} is consistent: nothing to repair"
                conn.execute(
                    "update dataops.schema_history set checksum = %s where installed_rank = %s",
                    (migration.checksum, row.rank),
                )
                return (
                    f"V{label}: recorded checksum {row.checksum} replaced by the file's "
                    f"{migration.checksum}"
                )

    # -- status and drift --------------------------------------------------------------------
    def status(self) -> Status:
        found, history, drift = self._read()
        errors, warnings = self.problems(found, history)
        return Status(history, self.pending(found, history), drift, errors + warnings, errors)

    def catalog(self, conn: psycopg.Connection) -> list[str]:
        """The managed schemas' objects as sorted lines (partitions and our own tables out)."""
        schemas = (self.schemas,)
        lines: list[str] = []
        query = (
            "select n.nspname, c.relname, c.relkind, c.oid from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')"
            " and not c.relispartition"
        )
        kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}
        kinds |= {"S": "sequence", "f": "foreign table"}
        relations = conn.execute(query, schemas).fetchall()
        for schema, name, kind, oid in relations:
            lines.append(f"{kinds[kind]} {schema}.{name}")
            if kind in ("v", "m"):
                row = conn.execute("select md5(pg_get_viewdef(%s::oid))", (oid,)).fetchone()
                lines.append(
                    f"{kinds[kind]} {schema}.{name} definition md5 {row[0] if row else ''}"
                )
            if kind in ("r", "p", "v", "m", "f"):
                for column, type_, notnull in conn.execute(
                    "select attname, format_type(atttypid, atttypmod), attnotnull"
                    " from pg_attribute where attrelid = %s and attnum > 0 and not attisdropped",
                    (oid,),
                ).fetchall():
                    null = " not null" if notnull else ""
                    lines.append(f"column {schema}.{name}.{column} {type_}{null}")
        for schema, index, definition in conn.execute(
            "select i.schemaname, i.indexname, i.indexdef from pg_indexes i"
            " join pg_class c on c.relname = i.indexname"
            " join pg_namespace n on n.oid = c.relnamespace and n.nspname = i.schemaname"
            " join pg_class t on t.relname = i.tablename and t.relnamespace = n.oid"
            " where i.schemaname = any(%s) and not t.relispartition",
            schemas,
        ).fetchall():
            lines.append(f"index {schema}.{index}: {definition}")
        # Our own bookkeeping (the history tables, their columns, sequences and indexes) is not
        # part of the schema the migrations make.
        return sorted({line for line in lines if not _own(line)})

    def save_snapshot(self, conn: psycopg.Connection) -> None:
        conn.execute(
            "insert into dataops.schema_snapshot (id, taken_at, objects) values (1, now(), %s)"
            " on conflict (id) do update set taken_at = excluded.taken_at,"
            " objects = excluded.objects",
            (json.dumps(self.catalog(conn)),),
        )

    def drift(self, conn: psycopg.Connection) -> list[str]:
        """What changed in the managed schemas since the last migration: `+` added outside
        migrations, `-` removed outside migrations."""
        row = conn.execute("select objects from dataops.schema_snapshot where id = 1").fetchone()
        if row is None:
            return []
        recorded = [line for line in row[0] if not _own(line)]
        live = self.catalog(conn)
        return [f"- {line}" for line in sorted(set(recorded) - set(live))] + [
            f"+ {line}" for line in sorted(set(live) - set(recorded))
        ]


def _own(line: str) -> bool:
    """A catalog line about our own bookkeeping (the history tables and what they own)."""
    padded = line + " "
    return any(f" dataops.{table}{after}" in padded for table in OWN_TABLES for after in " ._")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
