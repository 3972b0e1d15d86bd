"""Benchmark: another team's dbt project (tests/fixtures/acme_dbt) and ours through the toolkit.

Run:
  .venv/bin/python bench/bench_byo_dbt.py              lint timings (no platform needed)
  .venv/bin/python bench/bench_byo_dbt.py --dbt-step   also the acme dbt step (platform up)

1. `dataops lint` end to end (a fresh `dataops` process each time, best of 3): every model of
   the project (`--all`), and one changed model (a scratch git checkout with one model edited,
   `--base HEAD`), for our flights project and for the acme project (its own .sqlfluff, its
   project macros and two packages' macros rendered).
2. `--dbt-templater VENV`: the same one-model lint of the acme project with sqlfluff's dbt
   templater instead, from a scratch venv (it needs sqlfluff pinned to its own version:
   `uv venv /tmp/dbtt && VIRTUAL_ENV=/tmp/dbtt uv pip install sqlfluff==4.4.0
   sqlfluff-templater-dbt==4.4.0 "dbt-core~=1.11.0" dbt-postgres`), on the build copy with the
   toolkit's profile; it compiles through dbt, which connects to the warehouse (platform up).
3. `--dbt-step`: builds the acme transform image (`dataops images build transform` in a scratch
   checkout), then runs its dbt step as the DAG does (`docker run IMAGE transform ...`, 3 models,
   a seed, a snapshot, 12 tests, write-audit-publish) against warehouse_dev twice: a first run
   into empty schemas and a second one (the snapshot merging into its published history).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import run_dataops  # noqa: E402
from tests.integration.test_byo_dbt import (  # noqa: E402
    CRM,
    acme_copy,
    drop_published,
    make_crm,
    run_transform,
    stranger,
)


def best_of(runs: int, argv: list[str], config: Path, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        done = run_dataops(*argv, config=config, env=env)
        times.append(time.monotonic() - started)
        if done.returncode != 0:
            raise SystemExit(f"dataops {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return min(times)


def lint_times(tmp: Path) -> None:
    acme = stranger(tmp / "acme")
    ours = tmp / "ours" / "project"
    shutil.copytree(acme, ours, symlinks=True, ignore=shutil.ignore_patterns("acme"))
    shutil.copy(ROOT / "dataops.yml", ours / "dataops.yml")
    shutil.copytree(ROOT / "dbt_project", ours / "dbt_project")
    cases = [
        (
            "flights (ours)",
            ours,
            "dbt_project/models/staging/nycflights/stg_nycflights__planes.sql",
        ),
        ("acme_analytics", acme, "acme/analytics/models/staging/stg_crm__orders.sql"),
    ]
    print("| project | `lint --all` | one changed model |")
    print("|---|---|---|")
    for name, project, model in cases:
        env = {"DATAOPS_STATE_DIR": str(project / ".state")}
        git = ["git", "-C", str(project)]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run(
            [*git, "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "x"], check=True
        )
        all_files = best_of(3, ["lint", "--all"], project / "dataops.yml", env)
        path = project / model
        path.write_text(path.read_text() + "\n-- edited\n")
        one = best_of(3, ["lint", "--base", "HEAD"], project / "dataops.yml", env)
        print(f"| {name} | {all_files:.2f} s | {one:.2f} s |")


def dbt_templater(tmp: Path, venv: Path) -> None:
    from dataops.clients import dbt
    from dataops.core.config import DbtConfig
    from dataops.project.secrets import read_env_file

    secrets = read_env_file(ROOT / ".dataops" / "secrets.env")
    source = acme_copy(tmp / "templater" / "acme")
    copy = dbt.prepare_project(
        DbtConfig(), source / "analytics", tmp / "templater" / "copy", {"dev": "dev"},
        tmp / "logs", lambda _: None,
    )  # fmt: skip
    config = copy.path / "dbt-templater.sqlfluff"
    own = (source / "analytics" / ".sqlfluff").read_text()
    config.write_text(
        own.replace("project_dir = .", f"project_dir = {copy.path}\nprofiles_dir = {copy.path}")
    )
    env = {
        **os.environ, "PGHOST": "127.0.0.1", "PGUSER": "dataops_dev",
        "PGPASSWORD": secrets["DATAOPS_WAREHOUSE_DEV_PASSWORD"], "PGDATABASE": "warehouse_dev",
    }  # fmt: skip
    times = []
    for _ in range(3):
        started = time.monotonic()
        done = subprocess.run(
            [str(venv / "bin" / "sqlfluff"), "lint", "models/staging/stg_crm__orders.sql",
             "--config", str(config), "--ignore-local-config"],
            cwd=copy.path, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        times.append(time.monotonic() - started)
        if done.returncode != 0:
            raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    print(f"| acme_analytics, dbt templater (sqlfluff 4.4.0) | - | {min(times):.2f} s |")


def dbt_step(tmp: Path) -> None:
    import psycopg

    from dataops.project.secrets import read_env_file

    secrets = read_env_file(ROOT / ".dataops" / "secrets.env")
    project = stranger(tmp / "step", schema="acme")
    started = time.monotonic()
    built = run_dataops(
        "images", "build", "transform", "--json",
        config=project / "dataops.yml", env={"DATAOPS_STATE_DIR": str(tmp / "state")},
    )  # fmt: skip
    if built.returncode != 0:
        raise SystemExit(built.stderr[-3000:])
    print(f"acme transform image build (dbt deps, 2 parses, docker build): "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip
    import json

    image = json.loads(built.stdout)["images"][0]["local"]
    conn = psycopg.connect(
        host="127.0.0.1", dbname="warehouse_dev", user="dataops",
        password=secrets["DATAOPS_POSTGRES_ADMIN_PASSWORD"], autocommit=True,
    )  # fmt: skip
    try:
        make_crm(conn)
        for label in ("first run (empty schemas)", "second run (snapshot merges into history)"):
            started = time.monotonic()
            done = run_transform(image, secrets, "dev")
            if done.returncode != 0:
                raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
            print(f"acme dbt step, {label}: {time.monotonic() - started:.1f} s (container)")
    finally:
        drop_published(conn, "acme")
        conn.execute(f"drop schema if exists {CRM} cascade")
        subprocess.run(["docker", "rmi", image], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dbt-step", action="store_true", help="also time the acme dbt step")
    parser.add_argument(
        "--dbt-templater", type=Path, metavar="VENV", help="also time sqlfluff's dbt templater"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        lint_times(tmp)
        if args.dbt_templater:
            dbt_templater(tmp, args.dbt_templater)
        if args.dbt_step:
            dbt_step(tmp)


if __name__ == "__main__":
    main()
