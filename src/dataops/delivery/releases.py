"""Releases: what was tested together, promoted by digest through dev, staging and prod.

A release is a JSON record (every task image's digest, the git commit, the sha256 of the dbt
manifest baked into the transform image, the newest migration version) stored as a one-layer
OCI artifact in the registry (`dataops/releases:release-<id>`); its id is that artifact's
manifest digest, so a release cannot change without changing its id. Each environment's
warehouse keeps the append-only history (`dataops.release_history`, insert-only by a trigger):
created, checks, promotions, rollbacks and refusals with who, when and the gate results. The
release an environment runs is the last one activated there; its image refs for Airflow are in
the state dir's `releases/active-<env>.json`, written on every activation.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from dataops.clients import dbt, oci
from dataops.core import promotion
from dataops.core.failpoints import pause
from dataops.core.migrations import read_migrations
from dataops.core.progress import Report
from dataops.core.promotion import HistoryEntry, release_payload, short
from dataops.errors import DataOpsError, ExitCode, NotReadyError
from dataops.project.environment import Environment, Project
from dataops.project.state import atomic_write

RELEASES_REPO = "dataops/releases"
RELEASE_MEDIA = "application/vnd.dataops.release.v1+json"
PROMOTE_LOCK = 0x70726F6D6F7465  # "promote"
# The toolkit's own bookkeeping, like dataops.schema_history: made here, not by a migration,
# because a refused promotion into a warehouse that was never migrated must be recorded too.
HISTORY_DDL = """
create schema if not exists dataops;
create table if not exists dataops.release_history (
    id bigserial primary key,
    release_id text not null,
    action text not null,
    actor text not null,
    at timestamptz not null default clock_timestamp(),
    ok boolean not null,
    detail jsonb not null default '{}'
);
create or replace function dataops.release_history_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'dataops.release_history is append-only (% refused)', tg_op;
end;
$$;
create or replace trigger release_history_append_only
    before update or delete or truncate on dataops.release_history
    for each statement execute function dataops.release_history_append_only()
"""


class GateRefused(DataOpsError):
    exit_code = ExitCode.FAILED


@dataclass
class PromotionResult:
    release_id: str
    env: str
    images: dict[str, str]
    stats: oci.CopyStats = field(default_factory=oci.CopyStats)
    migrations: list[str] = field(default_factory=list)
    gates: dict[str, str] = field(default_factory=dict)


def actor() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


class Releases:
    """Release records in the registries and histories in the warehouses of a project's
    environments. Every method takes the resolved `Environment` it works on."""

    def __init__(self, project: Project, report: Report) -> None:
        self.project = project
        self.report = report

    # -- history -------------------------------------------------------------------------------
    def connect(self, env: Environment) -> psycopg.Connection:
        conn = env.connect("dataops-release")
        row = conn.execute("select to_regclass('dataops.release_history')").fetchone()
        if row is None or row[0] is None:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (PROMOTE_LOCK + 1,))
                conn.execute(HISTORY_DDL.encode())
        return conn

    def history(self, env: Environment, release_id: str | None = None) -> list[HistoryEntry]:
        with self.connect(env) as conn:
            rows = conn.execute(
                "select id, release_id, action, actor, at, ok, detail from dataops.release_history"
                " where %s::text is null or release_id = %s order by id",
                (release_id, release_id),
            ).fetchall()
        return [
            HistoryEntry(r[0], r[1], r[2], r[3], r[4].isoformat(timespec="seconds"), r[5], r[6])
            for r in rows
        ]

    @staticmethod
    def _log(
        conn: psycopg.Connection, release_id: str, action: str, ok: bool, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            "insert into dataops.release_history (release_id, action, actor, ok, detail)"
            " values (%s, %s, %s, %s, %s)",
            (release_id, action, actor(), ok, json.dumps(detail)),
        )

    def active(self, env: Environment) -> str | None:
        return promotion.active_release(self.history(env))

    def record(self, env: Environment, release_id: str) -> dict[str, Any]:
        """The release's JSON, from `env`'s registry."""
        with env.registry() as registry:
            payload, digest = registry.artifact(RELEASES_REPO, release_id)
        if digest != release_id:
            raise DataOpsError(f"{env.name} registry served {digest} for release {release_id}")
        return dict(json.loads(payload))

    def resolve(self, env: Environment, ref: str | None) -> str:
        """A full release id from a prefix (known in any environment), or `env`'s active one."""
        if ref is None:
            active = self.active(env)
            if active is None:
                raise DataOpsError(
                    f"{env.name} has no active release",
                    f"dataops release create --env {env.name}, or name one with --release",
                    exit_code=ExitCode.USAGE,
                )
            return active
        known = {e.release_id for other in self.project.environments() for e in self._safe(other)}
        return promotion.match_release(ref, known)

    def _safe(self, env: Environment) -> list[HistoryEntry]:
        try:
            return self.history(env)
        except DataOpsError:
            return []

    # -- create --------------------------------------------------------------------------------
    def create(self, env: Environment) -> tuple[str, dict[str, Any], bool]:
        """A release of what `env` was last built with; it becomes active in `env`.
        Returns (id, record, new)."""
        try:
            images = json.loads(env.builds_file.read_text())["images"]
        except (FileNotFoundError, KeyError, ValueError):
            raise NotReadyError(
                f"nothing is built for {env.name}", f"dataops images build --push --env {env.name}"
            ) from None
        manifest = dbt.manifest_of_image(
            env.state.manifests, images["transform"]["ref"], self.report
        )
        migrations = read_migrations(self.project.migrations_folder)
        newest = migrations.versioned[-1].version_label if migrations.versioned else None
        record = {
            "schema": 1,
            "project": self.project.config.project,
            "git_commit": self.project.commit or "unknown",
            "images": {
                name: {"digest": info["digest"], "tag": info["content_hash"]}
                for name, info in sorted(images.items())
            },
            "dbt_manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
            "migration_version": newest,
            "migration_checksums": {m.script: m.checksum for m in migrations.versioned},
        }
        payload, tag = release_payload(record)
        with env.registry() as registry:
            release_id = registry.push_artifact(RELEASES_REPO, tag, payload, RELEASE_MEDIA)
        with self.connect(env) as conn:
            known = conn.execute(
                "select 1 from dataops.release_history where release_id = %s and action ="
                " 'created'",
                (release_id,),
            ).fetchone()
            if known is None:
                self._log(conn, release_id, "created", True, {"env": env.name, "tag": tag})
            elif self.active(env) != release_id:  # an older build made again: active again
                self._log(conn, release_id, "created", True, {"env": env.name, "again": True})
        self._write_active(env, release_id, record)
        return release_id, record, known is None

    def check(
        self, env: Environment, release_id: str, name: str, passed: bool, detail: str
    ) -> None:
        with self.connect(env) as conn:
            self._log(conn, release_id, "check", passed, {"check": name, "detail": detail})

    def _write_active(self, env: Environment, release_id: str, record: dict[str, Any]) -> Path:
        images = {
            name: {
                "ref": f"{env.image_repository(name)}@{info['digest']}",
                "digest": info["digest"],
                "content_hash": info["tag"],
            }
            for name, info in record["images"].items()
        }
        document = {"release": release_id, "env": env.name, "images": images}
        atomic_write(env.active_release_file, json.dumps(document, indent=2) + "\n")
        return env.active_release_file

    def smoke(self, env: Environment, release_id: str) -> list[str]:
        """Problems of the release in `env`: every image manifest and blob served by digest
        from env's registry, and env's migrations current. Empty when it passes."""
        from dataops.delivery.migrator import Migrator

        problems: list[str] = []
        record = self.record(env, release_id)
        with env.registry() as registry:
            for name, info in record["images"].items():
                repo = f"dataops/{name}"
                raw, _, digest = registry.manifest(repo, info["digest"])
                if digest != info["digest"]:
                    problems.append(f"{repo}: served {digest}, expected {info['digest']}")
                document = json.loads(raw)
                for blob in [document.get("config"), *document.get("layers", [])]:
                    if blob and not registry.has_blob(repo, blob["digest"]):
                        problems.append(f"{repo}: blob {blob['digest']} missing")
        status = Migrator.for_environment(env, self.report).status()
        if status.pending:
            problems.append(f"{len(status.pending)} migration(s) pending in {env.name}")
        problems += [f"schema drift: {line}" for line in status.drift]
        return problems

    # -- promote -------------------------------------------------------------------------------
    def promote(
        self, target: Environment, release_ref: str | None, approve: bool, approver: str
    ) -> PromotionResult:
        """Gates, copy by digest from the source's registry, the target's migrations, then
        activation in `target`; on any failure the target's active release is unchanged."""
        source = target.promotion_source
        release_id = self.resolve(source, release_ref)
        results = promotion.evaluate_gates(
            target.config.gates,
            source.name,
            self.history(source, release_id),
            approve,
            approver,
        )
        failed = promotion.failed_gates(results)
        with self.connect(target) as conn:
            if failed:
                self._log(
                    conn, release_id, "refused", False, {"from": source.name, "gates": results}
                )
                raise GateRefused(
                    f"promotion of {short(release_id)} to {target.name} refused: "
                    + "; ".join(f"{k}: {v}" for k, v in failed.items()),
                    "nothing was copied or activated; satisfy the gates above",
                )
            self._lock(conn, target)
            record = self.record(source, release_id)
            result = PromotionResult(release_id, target.name, {}, gates=results)
            try:
                self._copy(source, target, release_id, record, result)
                result.migrations = self._migrate(target)
            except DataOpsError as exc:
                self._log(
                    conn,
                    release_id,
                    "promote-failed",
                    False,
                    {"from": source.name, "gates": results, "error": exc.reason[:500]},
                )
                raise DataOpsError(
                    f"promotion of {short(release_id)} to {target.name} failed: {exc.reason}",
                    f"the active release of {target.name} is unchanged; "
                    f"{exc.instruction or 'retry'}",
                ) from None
            self._log(
                conn,
                release_id,
                "promoted",
                True,
                {
                    "from": source.name,
                    "gates": results,
                    "blobs_sent": result.stats.blobs_sent,
                    "blobs_skipped": result.stats.blobs_skipped,
                    "blobs_mounted": result.stats.blobs_mounted,
                    "bytes_sent": result.stats.bytes_sent,
                    "migrations": result.migrations,
                },
            )
            self._write_active(target, release_id, record)
        return result

    def _lock(self, conn: psycopg.Connection, env: Environment) -> None:
        row = conn.execute("select pg_try_advisory_lock(%s)", (PROMOTE_LOCK,)).fetchone()
        if not (row and row[0]):
            self.report(f"waiting for another promotion to {env.name} to finish")
            conn.execute("select pg_advisory_lock(%s)", (PROMOTE_LOCK,))

    def _copy(
        self,
        source: Environment,
        target: Environment,
        release_id: str,
        record: dict[str, Any],
        result: PromotionResult,
    ) -> None:
        with source.registry() as src, target.registry() as dst:
            for name, info in record["images"].items():
                self.report(
                    f"copying dataops/{name}@{info['digest'][:19]} {source.name} -> {target.name}"
                )
                oci.copy_image(
                    src, dst, f"dataops/{name}", info["digest"], info["tag"], result.stats
                )
                result.images[name] = info["digest"]
                pause("promote.after_image")  # tests stop a registry here
            tag = release_payload(record)[1]
            oci.copy_image(src, dst, RELEASES_REPO, release_id, tag, result.stats)

    def _migrate(self, env: Environment) -> list[str]:
        from dataops.delivery.migrator import Migrator

        applied, _ = Migrator.for_environment(env, self.report).apply()
        return [a.script for a in applied]

    # -- rollback ------------------------------------------------------------------------------
    def rollback(self, env: Environment, to: str | None) -> str:
        history = self.history(env)
        current = promotion.active_release(history)
        wanted = self.resolve(env, to) if to is not None and current is not None else None
        release_id = promotion.rollback_target(env.name, history, wanted)
        record = self.record(env, release_id)
        with env.registry() as registry:
            for name, info in record["images"].items():
                if registry.manifest_digest(f"dataops/{name}", info["digest"]) != info["digest"]:
                    raise DataOpsError(
                        f"{env.name} registry no longer has dataops/{name}@{info['digest']}",
                        "promote the release again instead",
                    )
        with self.connect(env) as conn:
            self._lock(conn, env)
            self._log(conn, release_id, "rolled-back", True, {"from": current})
            self._write_active(env, release_id, record)
        return release_id
