"""The dbt step of a pipeline: write, audit, publish.

1. When a build of the same selection and dbt project already published this interval's rows,
   stop here (coalescing, below). Otherwise load dbt and the baked manifest, then take a
   warehouse-wide advisory lock (one dbt build and publish at a time per warehouse; a killed
   container's session ends and so does its lock), check the coalescing again, and drop what a
   previous failed run left in this pipeline's audit schemas.
2. `dbt build` the selection with `--vars {dataops_audit: NAME}`: every selected model goes to
   `<published schema>__audit_NAME` (the toolkit's generate_schema_name, core/dbt_toolkit.sql),
   and its tests run there. Unselected parents are deferred to the published relations through the
   manifest baked into the image when it was built (`--defer --favor-state`).
3. Only when every model and every test passed, move the audited relations into the published
   schemas in one transaction (readers see the old marts or the new ones, never a mix). When a
   test fails nothing is published, and the audit schemas keep the rejected build for inspection.

Coalescing (a backfill's loads run ahead of its dbt steps): the models read the whole raw
table, so a build that started after an interval's load committed holds that interval's rows.
Every publish records, in `dataops.dbt_publishes`, the newest load of the pipeline
(`dataops.load_audit`, commit-ordered per target by the load's lock) its build could see. An
interval whose own load is at or below the watermark of a publish of the same selection, dbt
project (manifest hash) and target was built, tested and published by that build: the step
says so and exits 0 without building. A build that fails its tests records nothing, so every
interval it covered builds (and fails) on its own: a failing interval never publishes.

Changed rows (`changed_since_publish`): the loads newer than the last publish of the same key
go to dbt as the var `dataops_changed` (their bounds); a test whose `where` names
`__dataops_changed_from__`/`_to__` reads only those rows (the toolkit's get_where_subquery).
No such publish, or no new load: no var, and those tests read every row.

Exit codes: 0 published (or already published); 1 dbt or the warehouse failed (a retry may
help); 3 a data test failed (the quality gate: retrying the same data would fail the same way).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dataops.core.dbt_artifacts import BuildSummary, retarget_manifest, summarize
from dataops.core.dbt_project import dbt_target
from dataops.patches.dbt import jinja_cache
from dataops.patches.dbt import manifest as dbt_internals
from dataops.task import dbt_manifest
from dataops.task.files import TaskError

AUDIT_INFIX = "__audit_"
# pg_advisory_lock key of "dbt publish" (the load task locks per target table with other keys).
PUBLISH_LOCK = 0x64627470_75626C73 & 0x7FFFFFFFFFFFFFFF
EXIT_QUALITY_GATE = 3
_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}


@dataclass
class TransformResult(BuildSummary):
    published: list[str] = field(default_factory=list)
    exit_code: int = 0
    coalesced: int | None = None  # the publish that already held this interval


def audit_schemas(conn: psycopg.Connection, name: str) -> list[str]:
    pattern = "%" + (AUDIT_INFIX + name).replace("_", r"\_")
    rows = conn.execute(
        "select nspname from pg_namespace where nspname like %s order by nspname", (pattern,)
    ).fetchall()
    return [row[0] for row in rows if row[0].endswith(AUDIT_INFIX + name)]


def drop_audit_schemas(conn: psycopg.Connection, name: str) -> list[str]:
    schemas = audit_schemas(conn, name)
    for schema in schemas:
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    return schemas


def publish(conn: psycopg.Connection, name: str) -> list[str]:
    """Publish the audit schemas of `name` in one transaction; returns the published relations.

    Views are replaced in place (`create or replace view` with the audited definition pointed
    at the published schemas, upstream first), so views that other models or readers built on
    them keep working; a view whose columns changed incompatibly is dropped and created
    instead, which fails, naming the dependents, if something outside the build still depends
    on it. Tables are dropped and the audited table
    is moved in (`alter table ... set schema`); a reader's own view on a replaced table stops
    the publish (no CASCADE) instead of vanishing.
    """
    published: list[str] = []
    with conn.transaction():
        # Qualify every name in view definitions, so they can be re-pointed at the published
        # schemas.
        conn.execute("set local search_path = pg_catalog")
        schemas = audit_schemas(conn, name)
        suffix = AUDIT_INFIX + name
        rows = conn.execute(
            "select c.oid, n.nspname, c.relname, c.relkind from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(%s) and c.relkind = any(%s) order by 2, 3",
            (schemas, list(_KINDS)),
        ).fetchall()
        relations = {
            oid: (schema, schema[: -len(suffix)], rel, kind) for oid, schema, rel, kind in rows
        }
        for target in sorted({r[1] for r in relations.values()}):
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(target)))
        views = [oid for oid, r in relations.items() if r[3] == "v"]
        for oid in _upstream_first(conn, views):
            _, target, rel, _ = relations[oid]
            _publish_view(conn, oid, target, rel, schemas, suffix)
            published.append(f"{target}.{rel}")
        for schema, target, rel, kind in relations.values():
            if kind == "v":
                continue
            old = _relkind(conn, target, rel)
            if old is not None:
                conn.execute(
                    sql.SQL("drop {} {}").format(sql.SQL(_KINDS[old]), sql.Identifier(target, rel))
                )
            conn.execute(
                sql.SQL("alter {} {} set schema {}").format(
                    sql.SQL(_KINDS[kind]), sql.Identifier(schema, rel), sql.Identifier(target)
                )
            )
            published.append(f"{target}.{rel}")
        for schema in schemas:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))
    return sorted(published)


def _relkind(conn: psycopg.Connection, schema: str, rel: str) -> str | None:
    row = conn.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s",
        (schema, rel),
    ).fetchone()
    return row[0] if row is not None and row[0] in _KINDS else None


def _upstream_first(conn: psycopg.Connection, views: list[int]) -> list[int]:
    """The views ordered so that a view comes after the views it reads."""
    edges = conn.execute(
        "select distinct r.ev_class, d.refobjid from pg_depend d"
        " join pg_rewrite r on r.oid = d.objid"
        " where d.classid = 'pg_rewrite'::regclass and r.ev_class = any(%s)"
        " and d.refobjid = any(%s) and d.refobjid <> r.ev_class",
        (views, views),
    ).fetchall()
    reads: dict[int, set[int]] = {oid: set() for oid in views}
    for view, parent in edges:
        reads[view].add(parent)
    ordered: list[int] = []
    while reads:
        ready = sorted(oid for oid, parents in reads.items() if not parents - set(ordered))
        if not ready:  # a cycle cannot happen between views; keep going rather than spin
            ready = sorted(reads)
        for oid in ready:
            ordered.append(oid)
            del reads[oid]
    return ordered


def _publish_view(
    conn: psycopg.Connection,
    oid: int,
    target: str,
    rel: str,
    schemas: list[str],
    suffix: str,
) -> None:
    row = conn.execute("select pg_get_viewdef(%s::oid)", (oid,)).fetchone()
    definition: str = row[0] if row else ""
    for audit in schemas:
        published = audit[: -len(suffix)]
        definition = definition.replace(f'"{audit}".', f'"{published}".')
        definition = definition.replace(f"{audit}.", f"{published}.")
    old = _relkind(conn, target, rel)
    replace = sql.SQL("create or replace view {} as ").format(sql.Identifier(target, rel))
    if old == "v":
        try:
            with conn.transaction():  # a savepoint: an incompatible change falls through
                conn.execute(replace + sql.SQL(definition))
            return
        except psycopg.errors.InvalidTableDefinition:
            pass  # columns removed, renamed or retyped: drop the old view, then create it
    if old is not None:
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("drop {} {}").format(sql.SQL(_KINDS[old]), sql.Identifier(target, rel))
                )
        except psycopg.errors.DependentObjectsStillExist as exc:
            raise TaskError(
                f"cannot publish {target}.{rel}: its columns changed and "
                f"{(exc.diag.message_detail or 'other objects depend on it').splitlines()[0]}; "
                "select the dependent models too (e.g. `MODEL+`) or drop the reader's view"
            ) from None
    conn.execute(replace + sql.SQL(definition))


PUBLISHES_DDL = """
create table if not exists dataops.dbt_publishes (
    id bigserial primary key,
    audit text not null,
    selection text not null,
    project text not null,
    target text not null,
    load_watermark bigint not null,
    relations text[] not null,
    published_at timestamptz not null default clock_timestamp()
)
"""


def _has(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("select to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] is not None


def load_watermark(conn: psycopg.Connection, pipeline: str) -> int:
    """The newest committed load of `pipeline` (its load_audit id), 0 when none."""
    if not _has(conn, "dataops.load_audit"):
        return 0
    row = conn.execute(
        "select coalesce(max(id), 0) from dataops.load_audit where pipeline = %s", (pipeline,)
    ).fetchone()
    return int(row[0]) if row else 0


def covering_publish(
    conn: psycopg.Connection, pipeline: str, key: tuple[str, str, str], start: str | None
) -> dict[str, Any] | None:
    """The publish that already holds this interval's load, or None (build it)."""
    if not start or not _has(conn, "dataops.dbt_publishes") or not _has(conn, "dataops.load_audit"):
        return None
    mine = conn.execute(
        "select max(id) from dataops.load_audit where pipeline = %s and interval_start = %s",
        (pipeline, start),
    ).fetchone()
    if mine is None or mine[0] is None:
        return None  # no load of this interval: nothing says a build holds it
    row = conn.execute(
        "select id, load_watermark, published_at from dataops.dbt_publishes"
        " where audit = %s and selection = %s and project = %s and target = %s"
        " and load_watermark >= %s order by id desc limit 1",
        (pipeline, *key, mine[0]),
    ).fetchone()
    if row is None:
        return None
    return {"load": int(mine[0]), "publish": row[0], "watermark": row[1], "at": row[2]}


def changed_since_publish(
    conn: psycopg.Connection, pipeline: str, key: tuple[str, str, str], watermark: int
) -> dict[str, Any] | None:
    """The loads this build publishes that no earlier publish of the same selection, dbt
    project and target held: their ids, and bounds that hold their intervals: from the oldest
    one's start to the start of the next interval loaded after the newest one ("infinity" when
    none; Airflow 3's cron schedules give a run a point, not a period, so an interval's own end
    says nothing). None when every row is new to the gate (no such publish yet, e.g. the first
    build of a release) or no load is new: then the tests that opt in test every row."""
    if not _has(conn, "dataops.dbt_publishes") or not _has(conn, "dataops.load_audit"):
        return None
    row = conn.execute(
        "select max(load_watermark) from dataops.dbt_publishes"
        " where audit = %s and selection = %s and project = %s and target = %s",
        (pipeline, *key),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    previous = int(row[0])
    span = conn.execute(
        "select min(id), max(id), min(interval_start), max(interval_start)"
        " from dataops.load_audit where pipeline = %s and id > %s and id <= %s",
        (pipeline, previous, watermark),
    ).fetchone()
    if span is None or span[0] is None:
        return None
    after = conn.execute(
        "select min(interval_start) from dataops.load_audit"
        " where pipeline = %s and interval_start > %s",
        (pipeline, span[3]),
    ).fetchone()
    end = after[0].isoformat() if after is not None and after[0] is not None else "infinity"
    return {
        "loads": (int(span[0]), int(span[1])),
        "since": previous,
        "from": span[2].isoformat(),
        "to": end,
    }


def record_publish(
    conn: psycopg.Connection,
    pipeline: str,
    key: tuple[str, str, str],
    watermark: int,
    relations: list[str],
) -> None:
    conn.execute(PUBLISHES_DDL)  # under the publish lock: no two sessions create it at once
    conn.execute(
        "insert into dataops.dbt_publishes"
        " (audit, selection, project, target, load_watermark, relations)"
        " values (%s, %s, %s, %s, %s, %s)",
        (pipeline, *key, watermark, relations),
    )


def _lock(conn: psycopg.Connection) -> None:
    row = conn.execute("select pg_try_advisory_lock(%s)", (PUBLISH_LOCK,)).fetchone()
    if row is not None and row[0]:
        return
    print("waiting for another dbt run in this warehouse to publish", flush=True)
    started = time.monotonic()
    conn.execute("select pg_advisory_lock(%s)", (PUBLISH_LOCK,))
    print(f"lock taken after {time.monotonic() - started:.1f}s", flush=True)


@dataclass
class _Baked:
    """What a parse-free build needs, made ready before the publish lock is taken."""

    manifest: Any
    templates: int  # baked Jinja code objects installed (dataops.patches.dbt.jinja_cache)
    defer_state: Path | None  # the --state of a manifest with the deferral merged in


# Selector methods that read the --state directory beyond deferral (dbt's state comparison,
# the previous run's results, source freshness): with one of them dbt reads the real state.
_STATE_METHODS = re.compile(r"(?<![\w.])(state|result|source_status)(\.\w+)*:")


def _prepare(
    state_manifest: Path, target: str, name: str, database: str, select: str
) -> _Baked | None:
    """dbt imported, the baked manifest of `target` loaded and renamed for this run, and the
    baked Jinja code installed; None when the image has no usable manifest (dbt parses)."""
    state_dir = state_manifest.parent
    manifest = dbt_manifest.load(state_dir, target, name, database)
    if manifest is None:
        return None
    import dbt.cli.main  # noqa: F401  (the runner's own imports, here rather than under the lock)

    defer_state = None
    if not _STATE_METHODS.search(select):
        defer_state = dbt_manifest.baked_defer_state(state_dir, state_manifest)
    return _Baked(manifest, jinja_cache.install(state_dir), defer_state)


def _run_in_process(args: list[str], project_dir: Path, work_dir: Path, baked: _Baked) -> int:
    """`dbt build` in this process with the baked manifest (no parse); dbt's exit code.

    dbt's own manifest.json of the run is not written (`--no-write-json`: it serializes
    every macro, and nothing reads it); its run_results.json is, as dbt writes it.
    dbt's debug log file is off (`DBT_LOG_LEVEL_FILE`, unless the image sets it): the container
    and its /tmp are removed when the task ends, and the task log holds dbt's output."""
    from dbt.cli.main import dbtRunner

    os.environ["DBT_TARGET_PATH"] = str(work_dir / "target")
    os.environ.setdefault("DBT_LOG_LEVEL_FILE", "none")
    notes = ["baked manifest: no parse", f"baked Jinja code: {baked.templates} templates"]
    if baked.defer_state is not None:
        notes.append("baked deferral")
    print(f"+ dbt {' '.join(args)}   " + " ".join(f"({n})" for n in notes), flush=True)
    runner = dbtRunner(manifest=baked.manifest)
    result = runner.invoke([*args, "--no-write-json", "--project-dir", str(project_dir)])
    # What dbt writes with --write-json, run_results only.
    dbt_internals.write_run_results(result.result, work_dir / "target" / "run_results.json")
    if result.exception is not None:
        print(f"dbt failed: {result.exception}", file=sys.stderr, flush=True)
        return 2
    return 0 if result.success else 1


def transform(
    select: str,
    target: str,
    name: str,
    *,
    project_dir: Path,
    state_manifest: Path,
    work_dir: Path,
    dbt: list[str] | None = None,
    interval_start: str | None = None,
) -> TransformResult:
    """Build and test `select` in the audit schemas of `name`, then publish it."""
    database = os.environ.get("PGDATABASE")
    if not database:
        raise TaskError("environment variable PGDATABASE is not set (the DAG sets it)")
    if not state_manifest.exists():
        raise TaskError(f"no dbt manifest at {state_manifest} (the image build bakes it in)")
    project = hashlib.sha256(state_manifest.read_bytes()).hexdigest()
    key = (select, project, target)
    with psycopg.connect(autocommit=True, application_name=f"dataops-dbt-{name}") as conn:
        # A committed publish record is never taken back, so one that already holds this
        # interval needs no lock to be believed (most months of a coalesced backfill end here).
        covered = covering_publish(conn, name, key, interval_start)
        baked: _Baked | None = None
        if covered is None:
            # dbt's import and the baked manifest (the slow part) before the lock, while another
            # step may hold it: the lock is held for the build and the publish only.
            baked = None if dbt else _prepare(state_manifest, target, name, database, select)
            _lock(conn)
            covered = covering_publish(conn, name, key, interval_start)
        if covered is not None:
            print(
                f"already published: this interval's load (#{covered['load']}) was built, "
                f"tested and published by publish #{covered['publish']} at {covered['at']} "
                f"(loads of {name} up to #{covered['watermark']}, the same selection and dbt "
                "project); nothing to build",
                flush=True,
            )
            return TransformResult(coalesced=covered["publish"])
        watermark = load_watermark(conn, name)
        leftover = drop_audit_schemas(conn, name)
        if leftover:
            print(f"dropped the audit schemas of an earlier run: {', '.join(leftover)}")
        variables: dict[str, Any] = {"dataops_audit": name}
        changed = changed_since_publish(conn, name, key, watermark)
        if changed is not None:
            variables["dataops_changed"] = {"from": changed["from"], "to": changed["to"]}
            first, last = changed["loads"]
            print(
                f"changed rows: loads #{first}..#{last} of {name} ({changed['from']} to "
                f"{changed['to']}); a test whose where names __dataops_changed_from__/_to__ "
                f"tests only those, the rows of loads up to #{changed['since']} passed the "
                "gate of an earlier publish",
                flush=True,
            )
        if baked is not None and baked.defer_state is not None:
            state = baked.defer_state  # the baked manifest carries the deferral
        else:
            state = retarget_manifest(state_manifest, work_dir / "state", database).parent
        args = [
            "build",
            "--select",
            select,
            "--indirect-selection",
            "buildable",
            # Unit tests have fixed inputs: CI runs them (dbt's advice); a run tests data.
            "--exclude-resource-type",
            "unit_test",
            "--target",
            target,
            "--vars",
            json.dumps(variables),
            "--defer",
            "--favor-state",
            "--state",
            str(state),
        ]
        if baked is not None:
            code = _run_in_process(args, project_dir, work_dir, baked)
        else:
            if not dbt:
                differ = dbt_manifest.changed_env(state_manifest.parent)
                print(
                    "no baked dbt manifest for target "
                    f"{target!r} can be used ({', '.join(differ) or 'none in the image'}): "
                    "dbt parses the project",
                    flush=True,
                )
            command = [*(dbt or [sys.executable, "-m", "dbt.cli.main"]), *args]
            print("+ " + " ".join(command), flush=True)
            env = {**os.environ, "DBT_TARGET_PATH": str(work_dir / "target")}
            code = subprocess.run(command, cwd=project_dir, env=env, check=False).returncode
        summary = summarize(work_dir / "target" / "run_results.json")
        result = TransformResult(summary.models, summary.tests, summary.failures, summary.nodes)
        if code != 0:
            tests_failed = any(
                f.startswith(("fail: test.", "fail: unit_test.")) for f in result.failures
            )
            result.exit_code = EXIT_QUALITY_GATE if tests_failed else 1
            schemas = audit_schemas(conn, name)
            print(
                f"dbt build failed: nothing was published; the published relations are "
                f"unchanged. The rejected build stays in {', '.join(schemas) or 'no schema'} "
                f"until the next run of {name}.",
                file=sys.stderr,
            )
            for failure in result.failures:
                print(f"  {failure}", file=sys.stderr)
            return result
        with conn.transaction():  # the relations and their record, or neither
            result.published = publish(conn, name)
            record_publish(conn, name, key, watermark, result.published)
    print(f"published {len(result.published)} relation(s): {', '.join(result.published)}")
    return result


def main_transform(args: Any) -> int:
    started = time.monotonic()
    root = Path(os.environ.get("DBT_PROJECT_DIR", "/opt/dataops/dbt_project"))
    state = Path(os.environ.get("DATAOPS_DBT_STATE", "/opt/dataops/dbt_state/manifest.json"))
    work = Path(os.environ.get("DATAOPS_WORK_DIR", "/tmp/dataops-dbt"))
    target = dbt_target(root, args.target)  # the environment's dbt target (dbt.targets)
    result = transform(
        args.select,
        target,
        args.audit,
        project_dir=root,
        state_manifest=state,
        work_dir=work,
        interval_start=os.environ.get("DATAOPS_INTERVAL_START") or None,
    )
    print(
        json.dumps(
            {
                "step": "transform",
                "models": result.models,
                "tests": result.tests,
                "published": result.published,
                "failures": result.failures,
                "coalesced_into": result.coalesced,
                "results": result.nodes,  # per model/test: the "dbt results" page in Airflow
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )
    return result.exit_code
