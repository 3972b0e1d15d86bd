"""Comparison: the shipped DAG folder parsed with astronomer-cosmos rendering the dbt step.

Why this exists: the dbt issue asked for Cosmos (manifest load mode, container execution)
unless it fails a requirement here. This renders each shipped pipeline's dbt selection with
Cosmos' DbtTaskGroup (LoadMode.DBT_MANIFEST, ExecutionMode.DOCKER, the image as the same
by-digest template our tasks use) and parses the folder the way the DAG budget is measured.

Cosmos is not a dependency of dataops; run this in a scratch copy of the venv:
  cp -r .venv /tmp/cosmos-venv
  .venv/bin/uv pip install --python /tmp/cosmos-venv/bin/python astronomer-cosmos==1.15.1
  /tmp/cosmos-venv/bin/python bench/bench_cosmos_parse.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dataops.clients.dbt import parse_manifest  # noqa: E402
from dataops.core.pipeline import load_spec, spec_files  # noqa: E402

PARSER = ROOT / "tests" / "dags" / "parse_dags.py"
DAG = """
from datetime import datetime
from airflow.sdk import DAG
from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, LoadMode, TestBehavior

with DAG("{name}", start_date=datetime(2013, 1, 1), schedule=None) as dag:
    DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(manifest_path="{manifest}", project_name="flights"),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.DOCKER, dbt_project_path="/opt/dataops/dbt_project"
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST, select=["{select}"],
            test_behavior=TestBehavior.AFTER_EACH,
        ),
        operator_args={{"image": "{{{{ dataops_image('transform') }}}}", "network_mode": "host"}},
    )
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "dags"
        folder.mkdir()
        manifest = parse_manifest(ROOT / "dbt_project", Path(tmp) / "state", Path(tmp) / "logs")
        for path in spec_files(ROOT / "dags" / "pipelines"):
            spec = load_spec(path)
            if spec.dbt:
                (folder / f"cosmos_{spec.pipeline}.py").write_text(
                    DAG.format(name=spec.pipeline, manifest=manifest, select=spec.dbt.select)
                )
        runs = []
        for _ in range(3):
            done = subprocess.run(
                [sys.executable, str(PARSER), str(folder)],
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
            runs.append(json.loads(line.removeprefix("RESULT ")))
        best = min(runs, key=lambda r: r["parse_seconds"])
        assert not best["import_errors"], best["import_errors"]
        tasks = best.get("task_counts", {})
        print(f"Cosmos DAGs: {len(best['dag_ids'])}, tasks per DAG: {tasks or '(n/a)'}")
        print(
            f"import Airflow {best['import_seconds']:.2f} s, parse folder "
            f"{best['parse_seconds']:.2f} s (best of 3; budget: under 1 s)"
        )


if __name__ == "__main__":
    main()
