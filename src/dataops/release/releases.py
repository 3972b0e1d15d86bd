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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from dataops.clients import dbt, git, oci
from dataops.core import archive, compiled_specs, promotion
from dataops.core.branches import require_main
from dataops.core.failpoints import pause
from dataops.core.migrations import read_migrations
from dataops.core.progress import Report
from dataops.core.promotion import (
    DAGS_MEDIA,
    MIGRATIONS_MEDIA,
    RELEASE_MEDIA,
    RELEASES_REPO,
    HistoryEntry,
    serves,
    short,
)
from dataops.core.release_record import (
    SCHEMA,
    ReleaseImage,
    ReleaseRecord,
    ReleaseSources,
    SourceLayer,
)
from dataops.errors import DataOpsError, ExitCode, NotReadyError
from dataops.project.environment import Environment, Project
from dataops.project.state import atomic_write
from dataops.release.migrator import Migrator

DAGS_FOLDER = "dags"
PROMOTE_LOCK = 0x70726F6D6F7465  # "promote"


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
            conn.close()
            raise NotReadyError(
                f"{env.name}'s warehouse {env.config.warehouse.database} has no release history",
                "run `dataops up` (it creates dataops.release_history, owned by the platform's"
                " admin role)",
            )
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

    def record(self, env: Environment, release_id: str) -> ReleaseRecord:
        """The release's record, from `env`'s registry."""
        with env.registry() as registry:
            payload, digest = registry.artifact(RELEASES_REPO, release_id)
        if digest != release_id:
            raise DataOpsError(f"{env.name} registry served {digest} for release {release_id}")
        return ReleaseRecord.parse(payload, f"{short(release_id)} in {env.name}'s registry")

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
    def create(self, env: Environment) -> tuple[str, ReleaseRecord, bool]:
        """A release of what `env` was last built with; it becomes active in `env`.
        Returns (id, record, new). Refused, before anything is read or written, unless the
        checkout acts for main (core.branches)."""
        self.require_main(f"release create --env {env.name}")
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
        # The DAG layer: the dags/ folder as it is, plus each spec compiled (its validated
        # form, so a deployment's first parse of a DAG skips the YAML; core.compiled_specs).
        dags = compiled_specs.pack_dags(self.project.root / DAGS_FOLDER)
        sql = archive.pack(self.project.migrations_folder)
        dirty = git.dirty_paths(self.project.root, DAGS_FOLDER, self.project.config.migrations.path)
        record = ReleaseRecord(
            record_schema=SCHEMA,
            project=self.project.config.project,
            git_commit=self.project.commit or "unknown",
            # A release ships the exact tree it was made from (its DAG code and migrations are
            # layers of the release); files that differed from the commit are named here.
            git_dirty=dirty,
            sources=ReleaseSources(
                dags=SourceLayer(digest=archive.digest(dags), size=len(dags)),
                migrations=SourceLayer(digest=archive.digest(sql), size=len(sql)),
            ),
            images={
                name: ReleaseImage(digest=info["digest"], tag=info["content_hash"])
                for name, info in sorted(images.items())
            },
            dbt_manifest_sha256=hashlib.sha256(manifest.read_bytes()).hexdigest(),
            migration_version=newest,
            migration_checksums={m.script: m.checksum for m in migrations.versioned},
        )
        payload, tag = record.payload(), record.tag()
        with env.registry() as registry:
            release_id = registry.push_artifact(
                RELEASES_REPO,
                tag,
                payload,
                RELEASE_MEDIA,
                [(dags, DAGS_MEDIA), (sql, MIGRATIONS_MEDIA)],
            )
        with self.connect(env) as conn:
            known = conn.execute(
                "select 1 from dataops.release_history where release_id = %s and action ="
                " 'created'",
                (release_id,),
            ).fetchone()
            if known is None:
                self._log(conn, release_id, "created", True, {**self._made_on(env), "tag": tag})
            elif self.active(env) != release_id:  # an older build made again: active again
                self._log(conn, release_id, "created", True, {**self._made_on(env), "again": True})
        self._activate(env, release_id, record)
        return release_id, record, known is None

    def _made_on(self, env: Environment) -> dict[str, Any]:
        """Where an activation was made: the environment and the branch the checkout acted for
        (None outside git). Only a release activated from main is offered downstream."""
        return {"env": env.name, "branch": self.project.branch or None}

    def require_main(self, what: str) -> None:
        """Refuse `what` unless this command acts for main (core.branches): only main changes
        what a shared environment runs, or records the checks its promotions are gated on."""
        require_main(self.project.branch, what)

    def check(
        self, env: Environment, release_id: str, name: str, passed: bool, detail: str
    ) -> None:
        # A check is a gate of promotion: a branch must not pass (or fail) main's release.
        self.require_main(f"release check --env {env.name}")
        with self.connect(env) as conn:
            self._log(conn, release_id, "check", passed, {"check": name, "detail": detail})
        try:  # informational (the check is recorded): a registry that fails is only named
            if self.active(env) == release_id:
                self._offer(env, release_id, self.record(env, release_id))
        except DataOpsError as exc:
            self.report(f"the downstream Releases pages were not told: {exc.reason}")

    def _offer(self, env: Environment, release_id: str, record: ReleaseRecord) -> None:
        """Append a `candidate` row to the history of each environment promoted from `env`:
        what `env` runs now and its checks there, so that environment's Releases page shows
        what it would receive (its deployment reads only its own warehouse). Informational: an
        environment that cannot be reached is named, and nothing else changes."""
        downstream = [
            e for e in self.project.environments() if e.config.gates.promote_from == env.name
        ]
        if not downstream:
            return
        try:
            history = self.history(env, release_id)
        except DataOpsError as exc:
            self.report(f"could not read {env.name}'s checks of {short(release_id)}: {exc.reason}")
            return
        if not promotion.activated_from_main(history):
            self.report(
                f"{short(release_id)} was activated in {env.name} from a branch other than main: "
                "it is not offered downstream"
            )
            return
        detail = promotion.candidate_detail(env.name, record, history)
        for target in downstream:
            try:
                with self.connect(target) as conn:
                    self._log(conn, release_id, promotion.CANDIDATE, True, detail)
            except (DataOpsError, psycopg.Error) as exc:
                reason = exc.reason if isinstance(exc, DataOpsError) else str(exc).strip()
                self.report(
                    f"{target.name}'s Releases page does not show {short(release_id)} as its "
                    f"candidate ({reason.splitlines()[0] if reason else 'unreachable'})"
                )

    def sources(self, env: Environment, release_id: str, what: str) -> Path:
        """The release's `dags` or `migrations` folder, fetched by digest from `env`'s registry
        and extracted once under the state dir (never the working tree)."""
        dest = env.state.release_sources(release_id) / what
        if dest.exists():
            return dest
        media = {"dags": DAGS_MEDIA, "migrations": MIGRATIONS_MEDIA}[what]
        with env.registry() as registry:
            data = registry.artifact_layer(RELEASES_REPO, release_id, media)
        return archive.unpack(data, dest)

    def migrations_for(self, env: Environment, writing: bool) -> Path | None:
        """The migrations `dataops migrate --env ENV` uses: None (the working tree's) for an
        environment that makes releases (dev); else those of the release ENV runs. Before ENV
        runs any release, reading commands (plan, status, validate) look at the working tree's
        and writing ones (apply, baseline, repair) are refused: only a promotion brings
        migrations into an environment that receives releases."""
        if env.config.gates.promote_from is None:
            return None
        try:
            release_id = self.active(env)
        except NotReadyError:  # no release history there at all
            release_id = None
        if release_id is not None:
            return self.sources(env, release_id, "migrations")
        if writing:
            raise DataOpsError(
                f"{env.name} applies only the migrations of the release it runs, and runs none",
                f"dataops promote --to {env.name} (it applies the release's migrations)",
                exit_code=ExitCode.USAGE,
            )
        self.report(f"{env.name} runs no release yet: reading the working tree's migrations")
        return None

    def active_dags(self, env: Environment) -> tuple[str, Path]:
        """(id, DAG folder) of the release `env` runs, or a clear error before any release."""
        release_id = self.active(env)
        if release_id is None:
            raise NotReadyError(
                f"{env.name} runs no release yet",
                f"dataops release create --env {env.name}"
                if env.config.gates.promote_from is None
                else f"dataops promote --to {env.name}",
            )
        return release_id, self.sources(env, release_id, "dags")

    def _activate(self, env: Environment, release_id: str, record: ReleaseRecord) -> None:
        """Make `release_id` the one `env` runs: the active-release file its deployment's DAG
        bundle follows, then wait until the deployment serves it."""
        self._write_active(env, release_id, record)
        self._offer(env, release_id, record)
        try:
            self.await_deployment(env, release_id)
        except DataOpsError as exc:
            raise NotReadyError(
                f"release {short(release_id)} is active in {env.name} (recorded), but its "
                f"Airflow did not load it: {exc.reason}",
                f"{exc.instruction}; or go back: dataops rollback --env {env.name}",
            ) from None

    def _write_active(self, env: Environment, release_id: str, record: ReleaseRecord) -> Path:
        images = {
            name: {
                "ref": f"{env.image_repository(name)}@{image.digest}",
                "digest": image.digest,
                "content_hash": image.tag,
            }
            for name, image in record.images.items()
        }
        document = {"release": release_id, "env": env.name, "images": images}
        atomic_write(env.active_release_file, json.dumps(document, indent=2) + "\n")
        return env.active_release_file

    def await_deployment(self, env: Environment, release_id: str, timeout: float = 90) -> bool:
        """Wait until `env`'s Airflow serves every DAG from `release_id` (its DAG bundle follows
        the active release within seconds). False when the deployment is not running: it runs
        the release when it starts."""
        deadline = time.monotonic() + timeout
        with env.airflow() as airflow:
            said = requested = False
            while True:
                try:
                    dags = airflow.dags()
                except NotReadyError:
                    self.report(f"{env.name}'s Airflow is not running; it runs the release when up")
                    return False
                if dags and all(serves(d, release_id) for d in dags):
                    return True
                if not requested:
                    # Ask for each stale DAG file to be parsed first (the dag-processor would
                    # otherwise reach them on its normal cycle, 30 s apart).
                    for dag in dags:
                        if not serves(dag, release_id) and dag.get("file_token"):
                            airflow.request("PUT", f"/parseDagFile/{dag['file_token']}")
                    requested = True
                if time.monotonic() > deadline:
                    old = sorted({str(d.get("bundle_version")) for d in dags} - {release_id})
                    raise NotReadyError(
                        f"{env.name}'s Airflow still serves {', '.join(map(short, old)) or 'no'}"
                        f" DAGs after {timeout:.0f}s, not release {short(release_id)}",
                        f"read {env.airflow_home}/logs/dag_processor and the import errors in "
                        "the web UI",
                    )
                if not said:
                    self.report(
                        f"waiting for {env.name}'s Airflow to load release {short(release_id)}"
                    )
                    said = True
                time.sleep(0.5)

    # -- promote -------------------------------------------------------------------------------
    def promote(
        self, target: Environment, release_ref: str | None, approve: bool, approver: str
    ) -> PromotionResult:
        """Gates, copy by digest from the source's registry, the target's migrations, then
        activation in `target`; on any failure the target's active release is unchanged.
        Refused, before anything is read or written, unless the checkout acts for main."""
        self.require_main(f"promote --to {target.name}")
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
                result.migrations = self._migrate(target, release_id)
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
                    "branch": self.project.branch or None,
                    "gates": results,
                    "blobs_sent": result.stats.blobs_sent,
                    "blobs_skipped": result.stats.blobs_skipped,
                    "blobs_mounted": result.stats.blobs_mounted,
                    "bytes_sent": result.stats.bytes_sent,
                    "migrations": result.migrations,
                },
            )
            self._activate(target, release_id, record)
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
        record: ReleaseRecord,
        result: PromotionResult,
    ) -> None:
        with source.registry() as src, target.registry() as dst:
            for name, image in record.images.items():
                self.report(
                    f"copying dataops/{name}@{image.digest[:19]} {source.name} -> {target.name}"
                )
                oci.copy_image(src, dst, f"dataops/{name}", image.digest, image.tag, result.stats)
                result.images[name] = image.digest
                pause("promote.after_image")  # tests stop a registry here
            oci.copy_image(src, dst, RELEASES_REPO, release_id, record.tag(), result.stats)

    def _migrate(self, env: Environment, release_id: str) -> list[str]:
        """`env`'s migrations from the release itself (its migrations layer), not the tree."""
        folder = self.sources(env, release_id, "migrations")
        applied, _ = Migrator.for_environment(env, self.report, folder).apply()
        return [a.script for a in applied]

    # -- rollback ------------------------------------------------------------------------------
    def rollback(
        self, env: Environment, to: str | None, approve: bool = False, approver: str = ""
    ) -> str:
        """Re-activate an earlier release in `env` (images and DAG code); an environment that
        requires approval for promotions requires it for rollbacks too. Recorded either way.
        Refused, before anything is read or written, unless the checkout acts for main."""
        self.require_main(f"rollback --env {env.name}")
        history = self.history(env)
        current = promotion.active_release(history)
        wanted = self.resolve(env, to) if to is not None and current is not None else None
        release_id = promotion.rollback_target(env.name, history, wanted)
        gate = promotion.approval_gate(env.config.gates, approve, approver)
        failed = promotion.failed_gates(gate)
        if failed:
            with self.connect(env) as conn:
                self._log(conn, release_id, "refused", False, {"rollback": True, "gates": gate})
            raise GateRefused(
                f"rollback of {env.name} to {short(release_id)} refused: "
                + "; ".join(f"{k}: {v}" for k, v in failed.items()),
                "nothing changed; roll back with --approve as one of the approvers",
            )
        record = self.record(env, release_id)
        if not record.carries_code:  # made before releases carried their DAG code
            raise DataOpsError(
                f"release {short(release_id)} carries no DAG code (a schema-1 release): "
                f"{env.name}'s Airflow cannot run it; nothing changed",
                "roll back to a newer release (--to ID), or promote a new one",
                exit_code=ExitCode.USAGE,
            )
        with env.registry() as registry:
            for name, image in record.images.items():
                if registry.manifest_digest(f"dataops/{name}", image.digest) != image.digest:
                    raise DataOpsError(
                        f"{env.name} registry no longer has dataops/{name}@{image.digest}",
                        "promote the release again instead",
                    )
        with self.connect(env) as conn:
            self._lock(conn, env)
            self._log(
                conn,
                release_id,
                "rolled-back",
                True,
                {"from": current, "branch": self.project.branch or None, "gates": gate},
            )
            self._activate(env, release_id, record)
        return release_id
