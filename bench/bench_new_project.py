"""Benchmark: from `dataops init` to the first green pipeline run in dev of the new project.

Run (as root, on a host `make setup` prepared; the new project's platform uses the ports of
its dataops.yml, so stop another platform on them first or pass --port-offset):
  .venv/bin/python bench/bench_new_project.py [--port-offset N] [--keep]

Steps, each timed: `dataops init` into a temp folder (its wheel built from this checkout),
`make setup` there (the project's own .venv from its lock and vendored wheel), `dataops up`
(its own platform), `migrate apply`, `images build --push`, `release create`, `data put data`,
`run customers` in dev. Then `dataops down` in the new project and the folder is removed
(--keep leaves both up). Prints one line per step and the total.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-offset", type=int, default=0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="dataops-bench-")) / "newproj"
    dataops = str(project / ".venv" / "bin" / "dataops")
    steps: list[tuple[str, list[str]]] = [
        (
            "init",
            [
                str(ROOT / ".venv" / "bin" / "dataops"),
                "init",
                str(project),
                "--port-offset",
                str(args.port_offset),
            ],
        ),
        ("make setup", ["make", "-C", str(project), "setup"]),
        ("up", [dataops, "up"]),
        ("migrate apply", [dataops, "migrate", "apply", "--env", "dev"]),
        ("images build --push", [dataops, "images", "build", "--push", "--env", "dev"]),
        ("release create", [dataops, "release", "create", "--env", "dev"]),
        ("data put", [dataops, "data", "put", "data", "--env", "dev"]),
        ("run customers", [dataops, "run", "customers", "--env", "dev", "--date", "2024-01-01"]),
    ]
    start = time.monotonic()
    try:
        for name, argv in steps:
            began = time.monotonic()
            cwd = project if project.exists() else project.parent
            done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
            took = time.monotonic() - began
            print(f"{name:22s} {took:7.1f} s  (total {time.monotonic() - start:6.1f} s)")
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        print(f"init -> first green run in dev: {time.monotonic() - start:.1f} s")
    finally:
        if not args.keep and (project / ".venv").exists():
            subprocess.run([dataops, "down"], cwd=project, capture_output=True, check=False)
        if not args.keep:
            shutil.rmtree(project.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
