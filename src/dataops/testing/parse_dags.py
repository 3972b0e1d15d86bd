"""Parse a DAG folder in a fresh interpreter, as Airflow's dag-processor would, and report.

Usage: python -m dataops.testing.parse_dags DAGS_FOLDER  -> a line `RESULT <json>` on stdout:
  dag_ids, import_errors {file: message}, dags {id: {owner, tags, retries}}, lookups (connection
  or variable lookups made while parsing), parse_seconds, import_seconds.
The metadata DB is pointed at a closed port, so any DB query during parsing fails loudly, and
the secrets backend is `lookup_trap.LookupTrap`, which records every lookup and finds nothing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

home = tempfile.mkdtemp(prefix="airflow-parse-")
os.environ.update(
    {
        "AIRFLOW_HOME": home,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://nobody:x@127.0.0.1:9/none",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # Asked first for every connection and variable: records the lookup, finds nothing.
        "AIRFLOW__SECRETS__BACKEND": "dataops.testing.lookup_trap.LookupTrap",
    }
)
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag  # noqa: E402

from dataops.testing.lookup_trap import LOOKUPS  # noqa: E402

imported = time.perf_counter()

folder = sys.argv[1]
before = time.perf_counter()
bag = DagBag(dag_folder=folder, safe_mode=True)
after = time.perf_counter()
print(
    "RESULT "
    + json.dumps(
        {
            "dag_ids": sorted(bag.dag_ids),
            "import_errors": {os.path.basename(k): v for k, v in bag.import_errors.items()},
            "dags": {
                dag_id: {
                    "owner": dag.owner,
                    "tags": sorted(dag.tags),
                    "retries": min(t.retries or 0 for t in dag.tasks),
                    "tasks": [t.task_id for t in dag.tasks],
                    "doc_md": dag.doc_md or "",
                    "queues": {t.task_id: t.queue for t in dag.tasks},
                }
                for dag_id, dag in bag.dags.items()
            },
            "lookups": LOOKUPS,
            "import_seconds": imported - started,
            "parse_seconds": after - before,
        }
    )
)
