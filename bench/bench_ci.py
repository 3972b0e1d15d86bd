"""Benchmark: `dataops ci run` with no change against the first run of the same commit.

Run (platform up, a dev release made: `make demo`, or `dataops migrate apply --env dev`,
`dataops images build --push --env dev`, `dataops release create --env dev`):
  .venv/bin/python bench/bench_ci.py [--commit REV] [--model]

Clones REV (default HEAD) into a temp dir on a branch of its own (feature-branch CI: nothing
shared changes), and runs `dataops ci run` there twice with that checkout's own code, against
the platform of this checkout (its state dir):
  1. the first run of the commit (`--no-cache`: every stage runs, and its pass is recorded);
  2. the same command again, nothing changed.
With --model, a third run after changing one dbt model (a comment in a staging model):
lint, the project tests (they parse the dbt project) and slim dbt CI run again.
Commits older than the stage keys have no --no-cache: both runs are then plain runs.
Prints each stage's time and outcome and the ratio of the two runs.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "dbt_project/models/staging/nycflights/stg_nycflights__planes.sql"
LINE = re.compile(r"^[-> ] (\w+)\s+(PASSED in [\d.]+s|skipped|FAILED in [\d.]+s)", re.M)


def ci_run(checkout: Path, *args: str) -> tuple[float, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout / "src"),
        "DATAOPS_STATE_DIR": str(ROOT / ".dataops"),
        "DATAOPS_CI_BRANCH": "bench-ci",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dataops.cli.main", "ci", "run", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"ci run failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def stages(output: str) -> str:
    return ", ".join(f"{m.group(1)} {m.group(2).split(' in ')[-1]}" for m in LINE.finditer(output))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--model", action="store_true", help="also time a one-model change")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as tmp:
        checkout = Path(tmp) / "checkout"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
        git = ["git", "-C", str(checkout)]
        subprocess.run([*git, "checkout", "-q", "-b", "bench-ci", args.commit], check=True)
        subprocess.run([*git, "config", "user.email", "bench@example.com"], check=True)
        subprocess.run([*git, "config", "user.name", "bench"], check=True)
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        help_text = subprocess.run(
            [sys.executable, "-m", "dataops.cli.main", "ci", "run", "--help"],
            cwd=checkout,
            env={**os.environ, "PYTHONPATH": str(checkout / "src")},
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        first_args = ["--no-cache"] if "--no-cache" in help_text else []
        first, first_out = ci_run(checkout, *first_args)
        print(f"commit {commit}, feature branch")
        print(f"first run {' '.join(first_args)}: {first:.1f} s ({stages(first_out)})")
        again, again_out = ci_run(checkout)
        print(f"no change:  {again:.1f} s ({stages(again_out)})")
        print(f"ratio no change / first: {again / first:.2f}")
        if args.model:
            model = checkout / MODEL
            model.write_text(model.read_text() + "-- a comment: the model changed\n")
            subprocess.run([*git, "commit", "-q", "-am", "touch a model"], check=True)
            changed, changed_out = ci_run(checkout)
            print(f"one model:  {changed:.1f} s ({stages(changed_out)})")


if __name__ == "__main__":
    main()
