"""Benchmark: the load task vs `psql \\copy`, TPC-H lineitem at scale factor 1, same machine.

Run (with the platform up): .venv/bin/python bench/bench_load.py [--scale 1]
Generates lineitem with tpchgen-cli (cached in .dataops/cache/tpch-sf<scale>/), then, in
warehouse_dev, loads it with `psql \\copy` into a fresh table and with the load task (two COPY
streams into a new partition, then the swap and the audit row in one transaction) into another
fresh table, once more into the same target (the idempotent re-run of the interval), and once
with one stream into a third table. Prints rows/s for each and the ratio to psql.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import psycopg  # noqa: E402

from dataops.core.pipeline import PipelineSpec  # noqa: E402
from dataops.project.secrets import read_env_file  # noqa: E402
from dataops.task.files import CHUNK, StagedDigest  # noqa: E402
from dataops.task.load import load_file  # noqa: E402

COLUMNS = {
    "l_orderkey": "bigint",
    "l_partkey": "bigint",
    "l_suppkey": "bigint",
    "l_linenumber": "integer",
    "l_quantity": "numeric",
    "l_extendedprice": "numeric",
    "l_discount": "numeric",
    "l_tax": "numeric",
    "l_returnflag": "text",
    "l_linestatus": "text",
    "l_shipdate": "date",
    "l_commitdate": "date",
    "l_receiptdate": "date",
    "l_shipinstruct": "text",
    "l_shipmode": "text",
    "l_comment": "text",
}


def generate(scale: float) -> Path:
    folder = ROOT / ".dataops" / "cache" / f"tpch-sf{scale:g}"
    target = folder / "lineitem.csv"
    if not target.exists():
        tool = Path(sys.executable).parent / "tpchgen-cli"
        subprocess.run(
            [
                str(tool),
                "csv",
                "-s",
                f"{scale:g}",
                "--tables",
                "lineitem",
                "--output-dir",
                str(folder),
            ],
            check=True,
        )
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    path = generate(args.scale)
    password = read_env_file(ROOT / ".dataops" / "secrets.env")["DATAOPS_POSTGRES_ADMIN_PASSWORD"]
    dsn = psycopg.conninfo.make_conninfo(
        host="127.0.0.1", port=5432, dbname="warehouse_dev", user="dataops", password=password
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("drop schema if exists bench cascade")
        conn.execute("create schema bench")
        ddl = ", ".join(f"{c} {t}" for c, t in COLUMNS.items())
        conn.execute(f"create table bench.lineitem_psql ({ddl})")
    env = {**os.environ, "PGPASSWORD": password}
    started = time.perf_counter()
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "dataops",
            "-d",
            "warehouse_dev",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"\\copy bench.lineitem_psql from '{path}' with (format csv, header true)",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    psql_seconds = time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("select count(*) from bench.lineitem_psql").fetchone()[0]
        conn.execute("drop table bench.lineitem_psql")
    spec = PipelineSpec.model_validate(
        {
            "pipeline": "bench_lineitem",
            "owner": "bench",
            "tags": ["bench"],
            "schedule": None,
            "start_date": "1992-01-01",
            "source": {"path": "lineitem.csv"},
            "target": {"table": "bench.lineitem", "mode": "append", "columns": COLUMNS},
        }
    )
    start, end = datetime(1992, 1, 1, tzinfo=UTC), datetime(1999, 1, 1, tzinfo=UTC)
    # What the extract task records in the manifest as it stages the file (not timed: it is the
    # extract's work): the sha256, and the two parts split at a row boundary.
    digest = StagedDigest(path.stat().st_size)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    parts = digest.parts()
    first = load_file(spec, path, digest.sha256, start, end, dsn, parts=parts)
    again = load_file(spec, path, digest.sha256, start, end, dsn, parts=parts)
    one_stream = spec.model_copy(
        update={"target": spec.target.model_copy(update={"table": "bench.lineitem_one"})}
    )
    single = load_file(one_stream, path, digest.sha256, start, end, dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        loaded = conn.execute("select count(*) from bench.lineitem").fetchone()[0]
        conn.execute("drop schema bench cascade")
        conn.execute("delete from dataops.load_audit where pipeline = 'bench_lineitem'")
    assert loaded == rows == first.rows == again.rows == single.rows, (loaded, rows, first.rows)
    size = path.stat().st_size / 1e6
    print(f"TPC-H lineitem SF{args.scale:g}: {rows:,} rows, {size:,.0f} MB CSV")
    label = "psql \\copy"
    print(f"{label:<34} {psql_seconds:7.1f} s {rows / psql_seconds:>12,.0f} rows/s")
    print(f"(the load task's two streams split the file at byte {parts[1].offset:,})")
    for name, result in (
        ("load task (fresh table)", first),
        ("load task (re-run, replaces)", again),
        ("load task, one stream (fresh table)", single),
    ):
        rate = result.rows / result.seconds
        ratio = psql_seconds / result.seconds
        print(f"{name:<34} {result.seconds:7.1f} s {rate:>12,.0f} rows/s  {ratio:.2f}x of psql")


if __name__ == "__main__":
    main()
