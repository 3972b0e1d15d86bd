"""Benchmark: how long after a task's end its executor hears of it, from a scheduler's own log.

Run: .venv/bin/python bench/bench_task_handoff.py [--env dev] [--last N]
After some runs (e.g. `make demo`), reads `.dataops/logs/airflow-<env>-scheduler.log` and pairs
each `TaskInstance Finished ... run_end_date=` (when the task process reported its end) with the
`Received executor event` of the same try (when the executor learnt the slot is free, so the next
task can be queued). Prints the median, the 90th percentile and how many waited over 2 s, for the
last N finished tries (default 60).
"""

from __future__ import annotations

import re
import statistics
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = r"dag_id='?(?P<dag>[\w.-]+)'?, task_id='?(?P<task>[\w.-]+)'?, run_id='?(?P<run>[^',]+)'?"
RECEIVED = re.compile(
    r"^(?P<at>\S+?)Z? \[info\s*\] Received executor event with state \w+ for task instance "
    r"TaskInstanceKey\(" + KEY + r", try_number=(?P<try>\d+)"
)
FINISHED = re.compile(
    r"^\S+ \[info\s*\] TaskInstance Finished: " + KEY + r", map_index=.*?"
    r"run_end_date=(?P<end>[0-9-]+ [0-9:.]+)\+00:00.*?try_number=(?P<try>\d+)"
)


def handoffs(log: Path) -> list[tuple[datetime, str, float]]:
    received: dict[tuple[str, ...], datetime] = {}
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if m := RECEIVED.match(line):
            key = (m["dag"], m["task"], m["run"], m["try"])
            received[key] = datetime.fromisoformat(m["at"]).replace(tzinfo=None)
        elif m := FINISHED.match(line):
            key = (m["dag"], m["task"], m["run"], m["try"])
            end = datetime.fromisoformat(m["end"])
            if key in received:
                wait = (received[key] - end).total_seconds()
                found.append((end, f"{m['dag']}.{m['task']} {m['run'][:30]}", wait))
    return sorted(found)


def main() -> None:
    env = sys.argv[sys.argv.index("--env") + 1] if "--env" in sys.argv else "dev"
    last = int(sys.argv[sys.argv.index("--last") + 1]) if "--last" in sys.argv else 60
    log = ROOT / ".dataops" / "logs" / f"airflow-{env}-scheduler.log"
    if not log.exists():
        raise SystemExit(f"{log}: no scheduler log; run `make demo` (or some runs) first")
    rows = handoffs(log)[-last:]
    if not rows:
        raise SystemExit(f"{log}: no finished task with its executor event yet")
    waits = sorted(wait for _, _, wait in rows)
    p90 = waits[min(len(waits) - 1, int(len(waits) * 0.9))]
    slow = sum(wait > 2 for wait in waits)
    print(f"{env}: the last {len(rows)} tries, task end -> executor event")
    median = statistics.median(waits)
    print(f"  median {median:.2f} s, 90th percentile {p90:.2f} s, max {waits[-1]:.2f} s")
    print(f"  over 2 s: {slow} of {len(rows)}")


if __name__ == "__main__":
    main()
