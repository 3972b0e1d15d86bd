"""Benchmark: parse time of the DAG folder, for the shipped specs and 1, 10, 100, 1000 generated.

Run: .venv/bin/python bench/bench_dag_parse.py
Each folder is parsed in a fresh interpreter (tests/dags/parse_dags.py, as Airflow's
dag-processor does: DagBag over the folder). Prints the time to import Airflow, the time to
parse the folder, and the parse time per DAG, which should stay flat as specs are added.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARSER = ROOT / "tests" / "dags" / "parse_dags.py"


def parse(folder: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, str(PARSER), str(folder)], capture_output=True, text=True, check=True
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


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("shipped dags/", ROOT / "dags")]
        cases += [(f"{n} generated specs", generated(n, Path(tmp))) for n in (1, 10, 100, 1000)]
        print(
            f"{'folder':<22} {'DAGs':>5} {'import Airflow':>15} {'parse folder':>13} {'per DAG':>9}"
        )
        for label, folder in cases:
            best = min((parse(folder) for _ in range(3)), key=lambda r: r["parse"])
            per = best["parse"] / best["dags"] * 1000
            print(
                f"{label:<22} {best['dags']:>5} {best['import']:>13.2f} s {best['parse']:>11.3f} s "
                f"{per:>6.1f} ms"
            )
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
