"""Load: COPY a staged batch into a temporary table, then merge or swap it into the target.

Everything happens in one transaction, under an advisory lock per target table: a load killed
at any point (mid-COPY, before the merge, after the merge) leaves the target as it was, and the
retry produces exactly the table one clean run would. Rows carry a deterministic batch id and
their data interval, so re-running an interval gives the same table, byte for byte. Every
committed load writes one row to `dataops.load_audit` in the same transaction.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from dataops.core.pipeline import LoadMode, PipelineSpec
from dataops.task.failpoints import failpoint
from dataops.task.files import CHUNK, Manifest, TaskError, staged_dir

BATCH = "_dataops_batch"
INTERVAL = "_dataops_interval_start"

AUDIT_DDL = """
create schema if not exists dataops;
create table if not exists dataops.load_audit (
    id bigserial primary key,
    pipeline text not null,
    target text not null,
    interval_start timestamptz not null,
    interval_end timestamptz not null,
    batch text not null,
    mode text not null,
    rows bigint not null,
    sha256 text not null,
    started_at timestamptz not null,
    finished_at timestamptz not null default clock_timestamp(),
    duration_ms integer not null
);
create index if not exists load_audit_pipeline_interval
    on dataops.load_audit (pipeline, interval_start);
"""


@dataclass(frozen=True)
class LoadResult:
    target: str
    mode: str
    batch: str
    rows: int
    rows_replaced: int
    sha256: str
    seconds: float


def batch_id(pipeline: str, table: str, start: datetime, sha256: str) -> str:
    text = f"{pipeline}|{table}|{start.isoformat()}|{sha256}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load(
    spec: PipelineSpec, data_dir: Path, start: datetime, end: datetime, conninfo: str = ""
) -> LoadResult:
    folder = staged_dir(data_dir, spec.pipeline, start)
    manifest = Manifest.read(folder / "manifest.json")
    return load_file(spec, folder / "data.csv", manifest.sha256, start, end, conninfo)


def load_file(
    spec: PipelineSpec,
    path: Path,
    expected_sha256: str | None,
    start: datetime,
    end: datetime,
    conninfo: str = "",
) -> LoadResult:
    target = spec.target
    table = sql.Identifier(target.schema, target.name)
    columns = list(target.columns)
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    began = time.monotonic()
    with psycopg.connect(conninfo, autocommit=False) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [f"dataops.load:{target.table}"])
        conn.execute(AUDIT_DDL)
        conn.execute(
            sql.SQL("create schema if not exists {}").format(sql.Identifier(target.schema))
        )
        conn.execute(
            sql.SQL(
                "create table if not exists {} ({}, {} text not null, {} timestamptz not null)"
            ).format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(kind))
                    for c, kind in target.columns.items()
                ),
                sql.Identifier(BATCH),
                sql.Identifier(INTERVAL),
            )
        )
        if target.mode is LoadMode.MERGE:
            conn.execute(
                sql.SQL("create unique index if not exists {} on {} ({})").format(
                    sql.Identifier(f"{target.name}_dataops_key"),
                    table,
                    sql.SQL(", ").join(sql.Identifier(c) for c in target.key),
                )
            )
        conn.execute(
            sql.SQL("create temporary table _dataops_stage ({}) on commit drop").format(
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(kind))
                    for c, kind in target.columns.items()
                )
            )
        )
        digest = hashlib.sha256()
        copy_sql = sql.SQL(
            "copy _dataops_stage ({}) from stdin "
            "with (format csv, header true, null {}, delimiter {})"
        ).format(col_ids, sql.Literal(spec.source.null), sql.Literal(spec.source.delimiter))
        with conn.cursor() as cur:
            try:
                with cur.copy(copy_sql) as copy, path.open("rb") as handle:
                    first = True
                    while chunk := handle.read(CHUNK):
                        copy.write(chunk)
                        digest.update(chunk)
                        if first:
                            failpoint("load.copy")
                            first = False
            except psycopg.errors.DataError as exc:
                raise TaskError(f"{path.name}: rejected by COPY: {exc}".strip()) from None
            except FileNotFoundError:
                raise TaskError(f"no staged file {path}: run the extract task first") from None
            rows = cur.rowcount
        sha256 = digest.hexdigest()
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise TaskError(
                f"{path}: content changed since extract "
                f"(sha256 {sha256}, manifest {expected_sha256})"
            )
        failpoint("load.before_merge")
        batch = batch_id(spec.pipeline, target.table, start, sha256)
        replaced = _merge(conn, spec, table, col_ids, batch, start)
        failpoint("load.after_merge")
        conn.execute(
            "insert into dataops.load_audit (pipeline, target, interval_start, interval_end, "
            "batch, mode, rows, sha256, started_at, duration_ms) values "
            "(%s, %s, %s, %s, %s, %s, %s, %s, now(), %s)",
            [
                spec.pipeline,
                target.table,
                start,
                end,
                batch,
                target.mode.value,
                rows,
                sha256,
                int((time.monotonic() - began) * 1000),
            ],
        )
        conn.commit()
    failpoint("load.after_commit")
    return LoadResult(
        target.table, target.mode.value, batch, rows, replaced, sha256, time.monotonic() - began
    )


def _merge(
    conn: psycopg.Connection,
    spec: PipelineSpec,
    table: sql.Composable,
    col_ids: sql.Composable,
    batch: str,
    start: datetime,
) -> int:
    target = spec.target
    stamp = sql.SQL("{}, {}").format(sql.Identifier(BATCH), sql.Identifier(INTERVAL))
    insert = sql.SQL("insert into {} ({}, {}) select {}, %s, %s from _dataops_stage").format(
        table, col_ids, stamp, col_ids
    )
    replaced = 0
    if target.mode is LoadMode.APPEND:
        # Earlier loads of this interval go, so a re-run never duplicates.
        cur = conn.execute(
            sql.SQL("delete from {} where {} = %s").format(table, sql.Identifier(INTERVAL)), [start]
        )
        replaced = cur.rowcount
        conn.execute(insert, [batch, start])
    elif target.mode is LoadMode.REPLACE_PARTITION:
        parts = sql.SQL(", ").join(sql.Identifier(c) for c in target.partition)
        cur = conn.execute(
            sql.SQL("delete from {} where ({}) in (select distinct {} from _dataops_stage)").format(
                table, parts, parts
            )
        )
        replaced = cur.rowcount
        conn.execute(insert, [batch, start])
    else:  # merge on key
        updates = [c for c in target.columns if c not in target.key] + [BATCH, INTERVAL]
        try:
            cur = conn.execute(
                sql.SQL("{} on conflict ({}) do update set {}").format(
                    insert,
                    sql.SQL(", ").join(sql.Identifier(c) for c in target.key),
                    sql.SQL(", ").join(
                        sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
                        for c in updates
                    ),
                ),
                [batch, start],
            )
        except psycopg.errors.CardinalityViolation:
            raise TaskError(
                f"the batch holds the same key ({', '.join(target.key)}) more than once; "
                "a merge needs one row per key"
            ) from None
    return replaced
