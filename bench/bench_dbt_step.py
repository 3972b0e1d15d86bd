"""Benchmark: the dbt step of one interval, as its task log shows it.

Run (platform up, a dev release made and the reference data loaded: `make demo`, or the
pipelines of `tests/integration/conftest.py::pipelines_ready`):
  .venv/bin/python bench/bench_dbt_step.py [--pipeline flights] [--runs 5] [--env dev]

Runs PIPELINE for N consecutive intervals of 2013 through `dataops run` (one after the other,
so no step waits for another's publish), then reads each run's dbt task log (the JSON lines
Airflow writes) and reports, per run and as the median:
  - step: what the task process measured itself, start to published (`"seconds"` of its
    last line);
  - container: from the task's "Starting docker container" line to that last line (container
    start, Python start and imports included);
  - whether dbt parsed the project ("Starting full parse") or ran on the baked manifest.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = re.compile(r"/runs/(\S+)")


def events(log: Path) -> list[dict]:
    found = []
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            found.append(event)
    return found


def measure(log: Path) -> dict:
    items = events(log)
    start = next(e for e in items if str(e.get("event", "")).startswith("Starting docker"))
    last = next(
        e for e in reversed(items) if str(e.get("event", "")).startswith('{"step": "transform"')
    )
    stamp = lambda e: datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00"))  # noqa: E731
    return {
        "step": json.loads(last["event"]).get("seconds"),
        "container": round((stamp(last) - stamp(start)).total_seconds(), 2),
        "parsed": any("Starting full parse" in str(e.get("event", "")) for e in items),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="flights")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--env", default="dev")
    args = parser.parse_args()
    logs = ROOT / ".dataops" / "airflow" / args.env / "logs" / f"dag_id={args.pipeline}"
    results = []
    for month in range(1, args.runs + 1):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "dataops.cli.main",
                "run",
                args.pipeline,
                "--env",
                args.env,
                "--date",
                f"2013-{month:02d}-01",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        match = RUN_ID.search(done.stdout + done.stderr)
        if done.returncode != 0 or not match:
            raise SystemExit(f"run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        attempts = sorted(
            (logs / f"run_id={match.group(1)}" / "task_id=dbt").glob("attempt=*.log"),
            key=lambda p: int(p.stem.split("=")[1]),  # attempt=10 after attempt=9
        )
        result = measure(attempts[-1])
        results.append(result)
        print(
            f"2013-{month:02d}: step {result['step']} s, container {result['container']} s"
            f"{', parsed the project' if result['parsed'] else ', baked manifest'}"
        )
    steps = [r["step"] for r in results if r["step"] is not None]
    print(
        f"median of {len(results)}: step {statistics.median(steps) if steps else '-'} s, "
        f"container {statistics.median(r['container'] for r in results)} s"
    )


if __name__ == "__main__":
    main()
