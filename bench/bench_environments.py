"""Benchmark: what three Airflow deployments cost at rest, and how fast a prod rollback is.

Run (platform up; for the rollback part prod must have run two releases, e.g. after
`make test`, or after `make demo` plus a second promotion):
  .venv/bin/python bench/bench_environments.py [--seconds 60] [--rollback]

1. Idle cost: for `--seconds`, samples every process of the three deployments (found by their
   pid files, with their children: LocalExecutor workers, gunicorn/uvicorn workers, the
   dag-processor's parsers) once a second, and prints the mean CPU (percent of one core, summed
   over the processes, from /proc/PID/stat ticks) and the resident memory (sum of RSS, and of
   PSS from /proc/PID/smaps_rollup, which counts shared pages once) of each deployment and of
   the three together.
2. `--rollback`: `dataops rollback --env prod --approve` to the previous release and back
   again (to leave prod as it was), each timed end to end: the command returns once prod's
   Airflow serves the release.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / ".dataops" / "run"
ENVS = ("dev", "staging", "prod")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TICKS = os.sysconf("SC_CLK_TCK")


def pids_of(env: str) -> list[int]:
    roots = []
    for component in COMPONENTS:
        try:
            roots.append(int((RUN / f"airflow-{env}-{component}.pid").read_text().split()[0]))
        except (FileNotFoundError, ValueError, IndexError):
            continue
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def memory_kib(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def idle(seconds: int) -> None:
    pids = {env: pids_of(env) for env in ENVS}
    missing = [env for env, found in pids.items() if not found]
    if missing:
        sys.exit(f"not running: {', '.join(missing)} (dataops up first)")
    start = {env: sum(cpu_ticks(p) for p in found) for env, found in pids.items()}
    began = time.monotonic()
    samples: dict[str, list[tuple[int, int]]] = {env: [] for env in ENVS}
    while time.monotonic() - began < seconds:
        for env in ENVS:
            pids[env] = pids_of(env)
            rss = pss = 0
            for pid in pids[env]:
                r, p = memory_kib(pid)
                rss, pss = rss + r, pss + p
            samples[env].append((rss, pss))
        time.sleep(1)
    elapsed = time.monotonic() - began
    print(f"idle for {elapsed:.0f}s, {os.cpu_count()} cores")
    print(f"{'deployment':<16} {'procs':>5} {'CPU % of a core':>16} {'RSS MiB':>8} {'PSS MiB':>8}")
    total = [0, 0.0, 0.0, 0.0]
    for env in ENVS:
        used = sum(cpu_ticks(p) for p in pids[env]) - start[env]
        cpu = 100 * used / TICKS / elapsed
        rss = sum(s[0] for s in samples[env]) / len(samples[env]) / 1024
        pss = sum(s[1] for s in samples[env]) / len(samples[env]) / 1024
        name = f"airflow-{env}"
        print(f"{name:<16} {len(pids[env]):>5} {cpu:>16.1f} {rss:>8.0f} {pss:>8.0f}")
        for i, value in enumerate((len(pids[env]), cpu, rss, pss)):
            total[i] += value
    print(f"{'all three':<16} {total[0]:>5} {total[1]:>16.1f} {total[2]:>8.0f} {total[3]:>8.0f}")


def dataops(*args: str) -> float:
    began = time.monotonic()
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "dataops"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"dataops {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    print(done.stdout.strip())
    return time.monotonic() - began


def rollback() -> None:
    there = dataops("rollback", "--env", "prod", "--approve", "--approver", "root")
    back = dataops("rollback", "--env", "prod", "--approve", "--approver", "root")
    print(f"prod rollback: {there:.1f}s; and back again: {back:.1f}s (end to end)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rollback", action="store_true")
    args = parser.parse_args()
    idle(args.seconds)
    if args.rollback:
        rollback()


if __name__ == "__main__":
    main()
