"""Benchmark: the same burst of task containers on LocalExecutor (dev) and on CeleryExecutor
with two workers (staging), in one run, on this host.

Run (platform up, staging running dev's release, the flights data delivered):
  .venv/bin/python bench/bench_celery.py [--months 8]

The burst is `dataops run flights --from 2013-05-01 --to 2013-12-31` in each environment: 8
monthly runs x 3 task containers (extract, load, dbt) = 24 tasks, 2 runs at a time (the spec's
max_active_runs), with two task slots on both sides (dev: LocalExecutor parallelism 2; staging:
2 Celery workers x 1 slot). Reported per environment: wall time, tasks per minute, the mean
queued-to-start delay of a task (what the executor adds), and the Celery/Local ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import run_dataops  # noqa: E402
from tests.integration.conftest import AIRFLOW, ready_secrets  # noqa: E402

from dataops.clients.airflow_api import AirflowClient  # noqa: E402


def burst(env: str, months: int, secrets: dict[str, str]) -> dict[str, float]:
    first = datetime(2013, 13 - months, 1, tzinfo=UTC)
    started = time.monotonic()
    result = run_dataops(
        "run",
        "flights",
        "--env",
        env,
        "--from",
        first.date().isoformat(),
        "--to",
        "2013-12-31",
        timeout=3600,
    )
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(
            f"{env}: the burst failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    delays, hosts, tasks = [], set(), 0
    password = secrets[f"DATAOPS_AIRFLOW_{env.upper()}_PASSWORD"]
    with AirflowClient(AIRFLOW[env], "admin", password) as client:
        for month in range(13 - months, 13):
            run_id = client.run_for_interval("flights", datetime(2013, month, 1, tzinfo=UTC))
            for ti in client.task_instances("flights", str(run_id)):
                tasks += 1
                hosts.add(ti["hostname"])
                queued, start = ti.get("queued_when"), ti.get("start_date")
                if queued and start:
                    delays.append(
                        (
                            datetime.fromisoformat(start) - datetime.fromisoformat(queued)
                        ).total_seconds()
                    )
    return {
        "tasks": tasks,
        "wall_seconds": round(wall, 1),
        "tasks_per_minute": round(tasks / wall * 60, 2),
        "mean_queued_to_start_seconds": round(statistics.mean(delays), 2) if delays else -1,
        "hosts": len(hosts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=8, help="monthly runs per environment")
    args = parser.parse_args()
    secrets = ready_secrets()
    figures = {}
    for env in ("dev", "staging"):  # LocalExecutor, then Celery with 2 workers
        figures[env] = burst(env, args.months, secrets)
        print(env, json.dumps(figures[env]), flush=True)
    ratio = figures["staging"]["tasks_per_minute"] / figures["dev"]["tasks_per_minute"]
    print(
        f"LocalExecutor (dev): {figures['dev']['tasks_per_minute']} tasks/min; "
        f"Celery, 2 workers (staging): {figures['staging']['tasks_per_minute']} tasks/min; "
        f"ratio Celery/Local {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
