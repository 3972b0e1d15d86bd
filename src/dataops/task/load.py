"""Load: COPY a staged batch into a staging table, then merge or swap it into the target.

Append targets are partitioned by data interval: the batch is COPYed into a new table that is
swapped in as the interval's partition (one write, as fast as a plain COPY). Merge and
replace-partition loads COPY into a temporary table and then upsert / delete+insert.
A big staged file (the extract recorded it in two parts split at a row boundary) is COPYed into
that table on two sessions at once, one per core: the table is created and committed first (so
the second session sees it; it carries a comment that registers it as this toolkit's stage of
the target), the second part is committed by its own session, and the first part, the swap and
the audit row are one transaction; a stage left behind by a load killed on the way is dropped by
the next load of the same target, before anything else.
Everything else happens in one transaction, under an advisory lock per target table: a load killed
at any point (mid-COPY, before the merge, after the merge) leaves the target as it was, and the
retry produces exactly the table one clean run would. Rows carry a deterministic batch id and
their data interval, so re-running an interval gives the same table, byte for byte. Every
committed load writes one row to `dataops.load_audit` in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypedDict

import psycopg
from psycopg import sql

from dataops.core.failpoints import failpoint
from dataops.core.pipeline import LoadMode, PipelineSpec
from dataops.task.files import CHUNK, Manifest, Part, TaskError, staged_dir

BATCH = "_dataops_batch"
INTERVAL = "_dataops_interval_start"
# The comment that registers a committed stage table as ours (two-stream loads); only tables with
# it that are not partitions are ever dropped as leftovers.
STAGE_COMMENT = "dataops load stage of {}"


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
    return load_file(
        spec, folder / "data.csv", manifest.sha256, start, end, conninfo, parts=manifest.parts
    )


def load_file(
    spec: PipelineSpec,
    path: Path,
    expected_sha256: str | None,
    start: datetime,
    end: datetime,
    conninfo: str = "",
    parts: Sequence[Part] = (),
) -> LoadResult:
    """Load one file for one interval; `expected_sha256` (the extract manifest's) is verified,
    or, when the manifest split the file in `parts`, each part's sha256 as its stream reads it."""
    if expected_sha256 is None:
        expected_sha256 = _sha256(path)
    target = spec.target
    batch = batch_id(spec.pipeline, target.table, start, expected_sha256)
    began = time.monotonic()
    two_streams = target.mode is LoadMode.APPEND and len(parts) == 2
    if two_streams:
        _check_parts(path, parts)
    with psycopg.connect(conninfo, autocommit=False) as conn:
        # Two streams commit the stage table before the load's transaction: the lock is then held
        # by the session (released when it ends, a killed one included), not the transaction.
        lock = "pg_advisory_lock" if two_streams else "pg_advisory_xact_lock"
        conn.execute(f"select {lock}(hashtext(%s))", [f"dataops.load:{target.table}"])
        audit = conn.execute("select to_regclass('dataops.load_audit')").fetchone()
        if audit is None or audit[0] is None:
            raise TaskError(
                "the warehouse has no dataops.load_audit table: its migrations were not "
                "applied (run `dataops migrate apply --env ENV`)"
            )
        conn.execute(
            sql.SQL("create schema if not exists {}").format(sql.Identifier(target.schema_name))
        )
        swap = target.mode is LoadMode.APPEND and _ensure_target(conn, spec, partitioned=True)
        if not swap:
            _ensure_target(conn, spec, partitioned=False)
        if swap:
            _drop_leftover_stages(conn, spec)
        stage = _create_stage(conn, spec, batch, start, regular=swap)
        if swap and two_streams:
            conn.execute(
                sql.SQL("comment on table {} is {}").format(
                    stage, sql.Literal(STAGE_COMMENT.format(target.table))
                )
            )
            conn.commit()  # the stage, for the second session to see
            failpoint("load.stage_committed")
            rows = _copy_two(conn, conninfo, spec, stage, path, parts)
        else:
            rows = _copy(conn, spec, stage, path, expected_sha256)
        failpoint("load.before_merge")
        if swap:
            replaced = _swap_partition(conn, spec, stage, start)
        else:
            replaced = _merge(conn, spec, batch, start)
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
                expected_sha256,
                int((time.monotonic() - began) * 1000),
            ],
        )
        conn.commit()
    failpoint("load.after_commit")
    return LoadResult(
        target.table,
        target.mode.value,
        batch,
        rows,
        replaced,
        expected_sha256,
        time.monotonic() - began,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise TaskError(f"no staged file {path}: run the extract task first") from None
    return digest.hexdigest()


def _column_defs(spec: PipelineSpec) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(kind))
        for c, kind in spec.target.columns.items()
    )


def _ensure_target(conn: psycopg.Connection, spec: PipelineSpec, *, partitioned: bool) -> bool:
    """Create the target if missing; True when it is partitioned by data interval.

    Append targets are created partitioned by `_dataops_interval_start` (one partition per
    interval), so a load swaps a whole partition in; a table that already exists unpartitioned
    keeps working through the staging-table merge.
    """
    target = spec.target
    table = sql.Identifier(target.schema_name, target.table_name)
    conn.execute(
        sql.SQL(
            "create table if not exists {} ({}, {} text not null, {} timestamptz not null){}"
        ).format(
            table,
            _column_defs(spec),
            sql.Identifier(BATCH),
            sql.Identifier(INTERVAL),
            sql.SQL(" partition by list ({})").format(sql.Identifier(INTERVAL))
            if partitioned
            else sql.SQL(""),
        )
    )
    if target.mode is LoadMode.MERGE:
        conn.execute(
            sql.SQL("create unique index if not exists {} on {} ({})").format(
                sql.Identifier(f"{target.table_name}_dataops_key"),
                table,
                sql.SQL(", ").join(sql.Identifier(c) for c in target.key),
            )
        )
    kind = conn.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relname = %s",
        [target.schema_name, target.table_name],
    ).fetchone()
    return bool(kind and kind[0] == "p")


def _create_stage(
    conn: psycopg.Connection, spec: PipelineSpec, batch: str, start: datetime, *, regular: bool
) -> sql.Identifier:
    """The staging table the batch is COPYed into.

    For a partition swap it is a new regular table in the target's schema (named after the
    interval, the batch and this attempt) that becomes the interval's partition: its batch and
    interval columns default to this load's values, and a CHECK lets ATTACH skip its
    validation scan. Otherwise it is a temporary table.
    """
    target = spec.target
    if not regular:
        conn.execute(
            sql.SQL("create temporary table _dataops_stage ({}) on commit drop").format(
                _column_defs(spec)
            )
        )
        return sql.Identifier("_dataops_stage")
    # A name of this attempt's own: a re-run of the interval with the same file has the same
    # batch, and the partition it replaces must stay untouched until the swap. Nothing is
    # dropped by name here (a table that somehow has this name makes CREATE fail instead).
    name = _relname(
        f"{target.table_name}__{start:%Y%m%dT%H%M%S}__{batch[:8]}_{secrets.token_hex(3)}"
    )
    stage = sql.Identifier(target.schema_name, name)
    conn.execute(
        sql.SQL(
            "create table {} ({}, {} text not null default {}, "
            "{} timestamptz not null default {} check ({} = {}))"
        ).format(
            stage,
            _column_defs(spec),
            sql.Identifier(BATCH),
            sql.Literal(batch),
            sql.Identifier(INTERVAL),
            sql.Literal(start),
            sql.Identifier(INTERVAL),
            sql.Literal(start),
        )
    )
    return stage


def _relname(text: str) -> str:
    if len(text) <= 63:
        return text
    return f"{text[:50]}_{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _copy(
    conn: psycopg.Connection,
    spec: PipelineSpec,
    stage: sql.Identifier,
    path: Path,
    sha256: str,
    part: Part | None = None,
    point: str = "load.copy",
) -> int:
    """COPY the file (or one part of it) into `stage`; the bytes sent are the bytes hashed."""
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in spec.target.columns)
    header = part is None or part.offset == 0
    copy_sql = sql.SQL(
        "copy {} ({}) from stdin with (format csv, header {}, null {}, delimiter {})"
    ).format(
        stage,
        col_ids,
        sql.SQL("true" if header else "false"),
        sql.Literal(spec.source.null),
        sql.Literal(spec.source.delimiter),
    )
    digest = hashlib.sha256()
    with conn.cursor() as cur:
        try:
            with cur.copy(copy_sql) as copy, path.open("rb") as handle:
                limit, sent = (part.bytes if part else None), 0
                if part:
                    handle.seek(part.offset)
                first = True
                end_of_data = _EndOfData(path, part.offset if part else 0)
                while chunk := handle.read(CHUNK if limit is None else min(CHUNK, limit - sent)):
                    end_of_data.feed(chunk)  # before the chunk is sent: nothing is cut short
                    copy.write(chunk)
                    digest.update(chunk)
                    sent += len(chunk)
                    if first:
                        failpoint(point)
                        first = False
                end_of_data.finish()
        except psycopg.errors.DataError as exc:
            shown = (
                f" (the part from line {part.line} on: COPY counts its lines from there)"
                if part and part.offset
                else ""
            )
            raise TaskError(f"{path.name}: rejected by COPY{shown}: {exc}".strip()) from None
        except FileNotFoundError:
            raise TaskError(f"no staged file {path}: run the extract task first") from None
        rows = cur.rowcount
    if digest.hexdigest() != sha256:
        what = f"bytes {part.offset} to {part.offset + part.bytes} of {path}" if part else path
        raise TaskError(
            f"{what}: content changed since extract "
            f"(sha256 {digest.hexdigest()}, manifest {sha256})"
        )
    return rows


class _EndOfData:
    """Finds a line that is `\\.` alone, outside quotes, in the bytes a COPY is sent.

    PostgreSQL's COPY FROM STDIN takes such a line for the end of the data, also in CSV, and
    drops every row after it without an error. A quoted `"\\."`, and a line of a quoted field
    that spans lines, are data. PostgreSQL's line reader toggles "in quotes" at every quote
    character (a doubled quote toggles twice), so the parity of the quotes before a candidate
    tells which it is; they are counted from the start of the stream only when a candidate
    turns up, so the common file costs one `find` per chunk. `\\r` alone as the line end is
    not looked for (the extract's files end lines with `\\n` or `\\r\\n`)."""

    def __init__(self, path: Path, start: int) -> None:
        self.path, self.start = path, start
        self.tail = b"\n"  # the last bytes fed; the stream starts on a line (a part on a row)
        self.sent = 0  # bytes fed so far
        self.checked = -1  # the file offset of the last `\\.` line checked
        self.quotes_to, self.quotes = start, 0  # quotes counted in the file up to quotes_to

    def feed(self, chunk: bytes) -> None:
        offset = self.start + self.sent  # of chunk[0] in the file
        # The backslashes of the last bytes fed and the chunk's first (their line's start is in
        # the bytes before), then the chunk's own; a mark whose line end is not in yet is
        # decided when the next chunk's bytes are.
        self._scan(self.tail + chunk[:4], offset - len(self.tail), 1, len(self.tail) + 1)
        self._scan(chunk, offset, 1, len(chunk))
        self.sent += len(chunk)
        self.tail = (self.tail + chunk)[-4:] if len(chunk) < 4 else chunk[-4:]

    def _scan(self, data: bytes, origin: int, low: int, high: int) -> None:
        """Check each `\\.` line whose backslash is at data[low:high] (a backslash is rare in
        CSV data, so this is a memchr per chunk)."""
        at = data.find(b"\\", low, high)
        while at != -1:
            if data[at - 1] == 10 and data[at + 1 : at + 2] == b".":  # "\\n\\."
                after = data[at + 2 : at + 4]
                if after[:1] == b"\n" or after == b"\r\n":
                    self._check(origin + at)
            at = data.find(b"\\", at + 1, high)

    def finish(self) -> None:
        """At the end of the stream, a last line `\\.` with no line end is the mark too."""
        for ending in (b"\n\\.", b"\n\\.\r"):
            if self.tail.endswith(ending):
                self._check(self.start + self.sent - len(ending) + 1)

    def _check(self, offset: int) -> None:
        """Refuse the `\\.` line at file `offset` unless it is inside a quoted field."""
        if offset <= self.checked:
            return  # seen from the chunk before (a mark near its end)
        self.checked = offset
        with self.path.open("rb") as handle:
            handle.seek(self.quotes_to)
            remaining = offset - self.quotes_to
            while remaining > 0 and (data := handle.read(min(CHUNK, remaining))):
                self.quotes += data.count(b'"')
                remaining -= len(data)
        self.quotes_to = offset
        if self.quotes % 2:
            return  # a line of a quoted value
        with self.path.open("rb") as handle:
            line, remaining = 1, offset
            while remaining > 0 and (data := handle.read(min(CHUNK, remaining))):
                line += data.count(b"\n")
                remaining -= len(data)
        raise TaskError(
            f"{self.path.name}: line {line} is `\\.` alone, which PostgreSQL's COPY reads as "
            "the end of the data: the rows after it would be dropped without an error. Quote "
            'the value in the source file ("\\.") and deliver it again; nothing was loaded'
        )


def _check_parts(path: Path, parts: Sequence[Part]) -> None:
    """The two parts must cover the staged file end to end, as it is now: each stream checks
    its own part's sha256, so bytes outside the parts would otherwise go unnoticed."""
    first, second = parts
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise TaskError(f"no staged file {path}: run the extract task first") from None
    if first.offset != 0 or first.bytes != second.offset or second.offset + second.bytes != size:
        raise TaskError(
            f"{path}: content changed since extract (the file has {size:,} bytes; the "
            f"manifest's parts cover {first.offset:,} to {first.bytes:,} and "
            f"{second.offset:,} to {second.offset + second.bytes:,})"
        )


class _SecondStream(TypedDict, total=False):
    """What the second stream's thread hands back to the caller's thread."""

    connection: psycopg.Connection  # set once connected, to cancel it if the first part fails
    rows: int  # set when its part is copied
    error: BaseException  # set when it failed


def _copy_two(
    conn: psycopg.Connection,
    conninfo: str,
    spec: PipelineSpec,
    stage: sql.Identifier,
    path: Path,
    parts: Sequence[Part],
) -> int:
    """The first part on `conn` (in the load's transaction), the second at the same time on a
    session of its own, committed when it is all in: two backends parse the CSV, one per core."""
    first, second = parts
    outcome: _SecondStream = {}

    def run_second() -> None:
        try:
            with psycopg.connect(conninfo, autocommit=False) as other:
                outcome["connection"] = other
                outcome["rows"] = _copy(
                    other, spec, stage, path, second.sha256, second, "load.copy_second"
                )
                other.commit()
            failpoint("load.second_committed")
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run_second, name="dataops-load-second", daemon=True)
    thread.start()
    try:
        rows = _copy(conn, spec, stage, path, first.sha256, first)
    except BaseException:
        # The load fails anyway: stop the second stream rather than let it commit its part.
        other = outcome.get("connection")
        if isinstance(other, psycopg.Connection):
            other.cancel()
        raise
    finally:
        thread.join()
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    return rows + int(outcome["rows"])


def _drop_leftover_stages(conn: psycopg.Connection, spec: PipelineSpec) -> None:
    """Drop the stage tables that two-stream loads of this target committed and never swapped
    in (the load was killed or failed): tables in the target's schema that carry our comment
    for this target and are nobody's partition. Under the target's lock no load of it is under
    way, so every such table is a leftover."""
    target = spec.target
    leftovers = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind = 'r' and not c.relispartition "
        "and obj_description(c.oid, 'pg_class') = %s",
        [target.schema_name, STAGE_COMMENT.format(target.table)],
    ).fetchall()
    for (name,) in leftovers:
        conn.execute(sql.SQL("drop table {}").format(sql.Identifier(target.schema_name, name)))


def _swap_partition(
    conn: psycopg.Connection, spec: PipelineSpec, stage: sql.Identifier, start: datetime
) -> int:
    """Replace the interval's partition with the freshly loaded table, in this transaction."""
    target = spec.target
    table = sql.Identifier(target.schema_name, target.table_name)
    old = conn.execute(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "join pg_class p on p.oid = i.inhparent join pg_namespace n on n.oid = p.relnamespace "
        "where n.nspname = %s and p.relname = %s "
        "and pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%%L)', %s::timestamptz)",
        [target.schema_name, target.table_name, start],
    ).fetchone()
    replaced = 0
    if old:
        old_id = sql.Identifier(target.schema_name, old[0])
        replaced = _rows_of_partition(conn, spec, old_id, start)
        conn.execute(sql.SQL("alter table {} detach partition {}").format(table, old_id))
        conn.execute(sql.SQL("drop table {}").format(old_id))
    conn.execute(
        sql.SQL("alter table {} attach partition {} for values in ({})").format(
            table, stage, sql.Literal(start)
        )
    )
    conn.execute(sql.SQL("comment on table {} is null").format(stage))  # a partition now
    return int(replaced)


def _rows_of_partition(
    conn: psycopg.Connection, spec: PipelineSpec, partition: sql.Identifier, start: datetime
) -> int:
    """The rows in an interval's partition: a partition is written by exactly one load, so its
    audit row (found by the batch of the partition's first row) has the count without a scan
    of millions of rows; a partition with no such audit row is counted."""
    first = conn.execute(
        sql.SQL("select {} from {} limit 1").format(sql.Identifier(BATCH), partition)
    ).fetchone()
    if first is None:
        return 0
    audited = conn.execute(
        "select rows from dataops.load_audit where target = %s and interval_start = %s "
        "and batch = %s order by id desc limit 1",
        [spec.target.table, start, first[0]],
    ).fetchone()
    if audited is not None:
        return int(audited[0])
    counted = conn.execute(sql.SQL("select count(*) from {}").format(partition)).fetchone()
    return int(counted[0]) if counted else 0


def _merge(conn: psycopg.Connection, spec: PipelineSpec, batch: str, start: datetime) -> int:
    """Move the temporary staging table into the target (delete + insert, or upsert)."""
    target = spec.target
    table = sql.Identifier(target.schema_name, target.table_name)
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in target.columns)
    stamp = sql.SQL("{}, {}").format(sql.Identifier(BATCH), sql.Identifier(INTERVAL))
    insert = sql.SQL("insert into {} ({}, {}) select {}, %s, %s from _dataops_stage").format(
        table, col_ids, stamp, col_ids
    )
    replaced = 0
    if target.mode is LoadMode.APPEND:
        # An unpartitioned append target: earlier loads of this interval go first.
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
            conn.execute(
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
