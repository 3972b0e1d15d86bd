"""Releases: what was tested together, promoted by digest through dev, staging and prod.

A release is a JSON record (every task image's digest, the git commit, the sha256 of the dbt
manifest baked into the transform image, the newest migration version) stored as a one-layer
OCI artifact in the registry (`dataops/releases:release-<id>`); its id is that artifact's
manifest digest, so a release cannot change without changing its id. Each environment's
warehouse keeps the append-only history (`dataops.release_history`, insert-only by a trigger):
created, checks, promotions, rollbacks and refusals with who, when and the gate results. The
release an environment runs is the last one activated there; its image refs for Airflow are in
`.dataops/releases/active-<env>.json`, written on every activation.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from dataops.core.config import LoadedConfig, RegistryAuth
from dataops.core.migrations import read_migrations
from dataops.errors import DataOpsError, ExitCode, NotReadyError
from dataops.platform import dbt, oci, warehouse
from dataops.platform.state import LocalSecrets, StateDir, atomic_write
from dataops.task.failpoints import pause

RELEASES_REPO = "dataops/releases"
RELEASE_MEDIA = "application/vnd.dataops.release.v1+json"
PROMOTE_LOCK = 0x70726F6D6F7465  # "promote"
ACTIVATING = ("created", "promoted", "rolled-back")
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


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    release_id: str
    action: str
    actor: str
    at: str
    ok: bool
    detail: dict[str, Any]


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


def active_file(state: StateDir, env: str) -> Path:
    return state.root / "releases" / f"active-{env}.json"


def running_images(state: StateDir, env: str) -> dict[str, Any]:
    """The images `env` runs: its active release's, or its latest build's before any release."""
    for path in (active_file(state, env), state.root / "builds" / f"{env}.json"):
        try:
            return dict(json.loads(path.read_text())["images"])
        except (FileNotFoundError, KeyError, ValueError):
            continue
    return {}


def release_payload(record: dict[str, Any]) -> tuple[bytes, str]:
    """The release's stored bytes and its tag in `dataops/releases`."""
    payload = json.dumps(record, indent=2, sort_keys=True).encode()
    return payload, "release-" + hashlib.sha256(payload).hexdigest()[:20]


def short(release_id: str) -> str:
    return release_id.removeprefix("sha256:")[:12]


class Releases:
    def __init__(self, loaded: LoadedConfig, report: Callable[[str], None]) -> None:
        self.loaded = loaded
        self.report = report
        self.state = StateDir.of(loaded)
        self.secrets = LocalSecrets(self.state)

    # -- plumbing ------------------------------------------------------------------------------
    def registry(self, env: str) -> oci.Registry:
        config = self.loaded.environment(env).registry
        auth = None
        if config.auth is not RegistryAuth.NONE and config.username:
            password = self.loaded.resolve_secret(
                ("environments", env, "registry", "password_env"), self.secrets.values()
            )
            auth = (config.username, password)
        scheme = "https" if config.tls else "http"
        return oci.Registry(f"{scheme}://{config.address}", auth, name=f"{env} ({config.address})")

    def connect(self, env: str) -> psycopg.Connection:
        conn = warehouse.connect(warehouse.conninfo(self.loaded, env), env, "dataops-release")
        row = conn.execute("select to_regclass('dataops.release_history')").fetchone()
        if row is None or row[0] is None:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (PROMOTE_LOCK + 1,))
                conn.execute(HISTORY_DDL.encode())
        return conn

    def history(self, env: str, release_id: str | None = None) -> list[HistoryEntry]:
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

    def active(self, env: str) -> str | None:
        entries = [e for e in self.history(env) if e.action in ACTIVATING and e.ok]
        return entries[-1].release_id if entries else None

    def record(self, env: str, release_id: str) -> dict[str, Any]:
        """The release's JSON, from `env`'s registry."""
        registry = self.registry(env)
        try:
            payload, digest = registry.artifact(RELEASES_REPO, release_id)
        finally:
            registry.close()
        if digest != release_id:
            raise DataOpsError(f"{env} registry served {digest} for release {release_id}")
        return dict(json.loads(payload))

    def resolve(self, env: str, ref: str | None) -> str:
        """A full release id from a prefix, or the active release of `env`."""
        if ref is None:
            active = self.active(env)
            if active is None:
                raise DataOpsError(
                    f"{env} has no active release",
                    f"dataops release create --env {env}, or name one with --release",
                    exit_code=ExitCode.USAGE,
                )
            return active
        wanted = ref if ref.startswith("sha256:") else f"sha256:{ref}"
        known = {
            e.release_id
            for env_name in self.loaded.config.environments
            for e in self._safe_history(env_name)
        }
        matches = sorted(r for r in known if r.startswith(wanted))
        if len(matches) != 1:
            raise DataOpsError(
                f"release {ref!r} matches {len(matches)} known releases",
                "give more of its id (dataops release list)",
                exit_code=ExitCode.USAGE,
            )
        return matches[0]

    def _safe_history(self, env: str) -> list[HistoryEntry]:
        try:
            return self.history(env)
        except (NotReadyError, DataOpsError):
            return []

    # -- create --------------------------------------------------------------------------------
    def create(self, env: str) -> tuple[str, dict[str, Any], bool]:
        """A release of what `env` was last built with; it becomes active in `env`.
        Returns (id, record, new)."""
        builds = self.state.root / "builds" / f"{env}.json"
        try:
            images = json.loads(builds.read_text())["images"]
        except (FileNotFoundError, KeyError, ValueError):
            raise NotReadyError(
                f"nothing is built for {env}", f"dataops images build --push --env {env}"
            ) from None
        manifest = dbt.manifest_of_image(
            self.state.root / "manifests", images["transform"]["ref"], self.report
        )
        migrations = read_migrations(self.loaded.root / self.loaded.config.migrations.path)
        newest = migrations.versioned[-1].version_label if migrations.versioned else None
        commit = subprocess.run(
            ["git", "-C", str(self.loaded.root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        record = {
            "schema": 1,
            "project": self.loaded.config.project,
            "git_commit": commit or "unknown",
            "images": {
                name: {"digest": info["digest"], "tag": info["content_hash"]}
                for name, info in sorted(images.items())
            },
            "dbt_manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
            "migration_version": newest,
            "migration_checksums": {m.script: m.checksum for m in migrations.versioned},
        }
        payload, tag = release_payload(record)
        registry = self.registry(env)
        try:
            release_id = registry.push_artifact(RELEASES_REPO, tag, payload, RELEASE_MEDIA)
        finally:
            registry.close()
        with self.connect(env) as conn:
            known = conn.execute(
                "select 1 from dataops.release_history where release_id = %s and action ="
                " 'created'",
                (release_id,),
            ).fetchone()
            if known is None:
                self._log(conn, release_id, "created", True, {"env": env, "tag": tag})
            elif self.active(env) != release_id:  # an older build made again: active again
                self._log(conn, release_id, "created", True, {"env": env, "again": True})
        self._write_active(env, release_id, record)
        return release_id, record, known is None

    def check(self, env: str, release_id: str, name: str, passed: bool, detail: str) -> None:
        with self.connect(env) as conn:
            self._log(conn, release_id, "check", passed, {"check": name, "detail": detail})

    def _write_active(self, env: str, release_id: str, record: dict[str, Any]) -> Path:
        address = self.loaded.environment(env).registry.address
        images = {
            name: {
                "ref": f"{address}/dataops/{name}@{info['digest']}",
                "digest": info["digest"],
                "content_hash": info["tag"],
            }
            for name, info in record["images"].items()
        }
        path = active_file(self.state, env)
        atomic_write(
            path,
            json.dumps({"release": release_id, "env": env, "images": images}, indent=2) + "\n",
        )
        return path

    def smoke(self, env: str, release_id: str) -> list[str]:
        """Problems of the release in `env`: every image manifest and blob served by digest
        from env's registry, and env's migrations current. Empty when it passes."""
        from dataops.platform.migrator import Migrator

        problems: list[str] = []
        record = self.record(env, release_id)
        registry = self.registry(env)
        try:
            for name, info in record["images"].items():
                repo = f"dataops/{name}"
                raw, _, digest = registry.manifest(repo, info["digest"])
                if digest != info["digest"]:
                    problems.append(f"{repo}: served {digest}, expected {info['digest']}")
                document = json.loads(raw)
                for blob in [document.get("config"), *document.get("layers", [])]:
                    if blob and not registry.has_blob(repo, blob["digest"]):
                        problems.append(f"{repo}: blob {blob['digest']} missing")
        finally:
            registry.close()
        status = Migrator.for_environment(self.loaded, env, self.report).status()
        if status.pending:
            problems.append(f"{len(status.pending)} migration(s) pending in {env}")
        problems += [f"schema drift: {line}" for line in status.drift]
        return problems

    # -- gates ---------------------------------------------------------------------------------
    def gates(self, target: str, release_id: str, approve: bool, approver: str) -> dict[str, str]:
        """Every gate of promoting `release_id` to `target`: {gate: result}; raises when one
        fails (after the caller recorded it)."""
        gates_config = self.loaded.environment(target).gates
        source = gates_config.promote_from
        if source is None:
            raise DataOpsError(
                f"{target} has no promote_from in dataops.yml: nothing promotes into it",
                "promote to an environment with gates.promote_from",
                exit_code=ExitCode.USAGE,
            )
        results: dict[str, str] = {}
        source_history = self.history(source, release_id)
        if not any(e.action in ACTIVATING and e.ok for e in source_history):
            results[f"was active in {source}"] = "failed: never active there"
        else:
            results[f"was active in {source}"] = "passed"
        # The target's require_checks must have passed in the source (ci in dev for staging,
        # smoke in staging for prod).
        for name in gates_config.require_checks:
            checks = [
                e for e in source_history if e.action == "check" and e.detail.get("check") == name
            ]
            if not checks:
                results[f"check {name} in {source}"] = "failed: never ran"
            elif not checks[-1].ok:
                results[f"check {name} in {source}"] = "failed: " + str(
                    checks[-1].detail.get("detail", "failed")
                )
            else:
                results[f"check {name} in {source}"] = "passed"
        if gates_config.require_approval:
            if not approve:
                results["approval"] = "failed: prod needs --approve"
            elif approver not in gates_config.approvers:
                results["approval"] = (
                    f"failed: {approver!r} may not approve (approvers: "
                    f"{', '.join(gates_config.approvers)})"
                )
            else:
                results["approval"] = f"passed: approved by {approver}"
        return results

    # -- promote -------------------------------------------------------------------------------
    def promote(
        self, target: str, release_ref: str | None, approve: bool, approver: str
    ) -> PromotionResult:
        source = self.loaded.environment(target).gates.promote_from
        if source is None:
            self.gates(target, "", approve, approver)  # raises the usage error
        assert source is not None
        release_id = self.resolve(source, release_ref)
        results = self.gates(target, release_id, approve, approver)
        failed = {k: v for k, v in results.items() if not v.startswith("passed")}
        with self.connect(target) as conn:
            if failed:
                self._log(conn, release_id, "refused", False, {"from": source, "gates": results})
                raise GateRefused(
                    f"promotion of {short(release_id)} to {target} refused: "
                    + "; ".join(f"{k}: {v}" for k, v in failed.items()),
                    "nothing was copied or activated; satisfy the gates above",
                )
            self._lock(conn, target)
            record = self.record(source, release_id)
            result = PromotionResult(release_id, target, {}, gates=results)
            try:
                self._copy(source, target, release_id, record, result)
                result.migrations = self._migrate(target)
            except DataOpsError as exc:
                self._log(
                    conn,
                    release_id,
                    "promote-failed",
                    False,
                    {"from": source, "gates": results, "error": exc.reason[:500]},
                )
                raise DataOpsError(
                    f"promotion of {short(release_id)} to {target} failed: {exc.reason}",
                    f"the active release of {target} is unchanged; {exc.instruction or 'retry'}",
                ) from None
            self._log(
                conn,
                release_id,
                "promoted",
                True,
                {
                    "from": source,
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

    def _lock(self, conn: psycopg.Connection, env: str) -> None:
        row = conn.execute("select pg_try_advisory_lock(%s)", (PROMOTE_LOCK,)).fetchone()
        if not (row and row[0]):
            self.report(f"waiting for another promotion to {env} to finish")
            conn.execute("select pg_advisory_lock(%s)", (PROMOTE_LOCK,))

    def _copy(
        self,
        source: str,
        target: str,
        release_id: str,
        record: dict[str, Any],
        result: PromotionResult,
    ) -> None:
        src, dst = self.registry(source), self.registry(target)
        try:
            for name, info in record["images"].items():
                self.report(f"copying dataops/{name}@{info['digest'][:19]} {source} -> {target}")
                oci.copy_image(
                    src, dst, f"dataops/{name}", info["digest"], info["tag"], result.stats
                )
                result.images[name] = info["digest"]
                pause("promote.after_image")  # tests stop a registry here
            tag = release_payload(record)[1]
            oci.copy_image(src, dst, RELEASES_REPO, release_id, tag, result.stats)
        finally:
            src.close()
            dst.close()

    def _migrate(self, env: str) -> list[str]:
        from dataops.platform.migrator import Migrator

        applied, _ = Migrator.for_environment(self.loaded, env, self.report).apply()
        return [a.script for a in applied]

    # -- rollback ------------------------------------------------------------------------------
    def rollback(self, env: str, to: str | None) -> str:
        history = self.history(env)
        activations = [e.release_id for e in history if e.action in ACTIVATING and e.ok]
        if not activations:
            raise DataOpsError(
                f"{env} has no active release to roll back", exit_code=ExitCode.USAGE
            )
        current = activations[-1]
        if to is None:
            previous = [r for r in reversed(activations) if r != current]
            if not previous:
                raise DataOpsError(
                    f"{env} has never run another release than {short(current)}",
                    "nothing to roll back to",
                    exit_code=ExitCode.USAGE,
                )
            release_id = previous[0]
        else:
            release_id = self.resolve(env, to)
            if release_id not in activations:
                raise DataOpsError(
                    f"release {short(release_id)} was never active in {env}",
                    "roll back only to a release that ran there (dataops release list --env "
                    f"{env})",
                    exit_code=ExitCode.USAGE,
                )
        record = self.record(env, release_id)
        registry = self.registry(env)
        try:
            for name, info in record["images"].items():
                if registry.manifest_digest(f"dataops/{name}", info["digest"]) != info["digest"]:
                    raise DataOpsError(
                        f"{env} registry no longer has dataops/{name}@{info['digest']}",
                        "promote the release again instead",
                    )
        finally:
            registry.close()
        with self.connect(env) as conn:
            self._lock(conn, env)
            self._log(conn, release_id, "rolled-back", True, {"from": current})
            self._write_active(env, release_id, record)
        return release_id
