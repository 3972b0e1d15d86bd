"""`dataops-task`: the entry point of the task images (extract, load, transform).

Configuration comes from the environment, as a container's does:
  DATAOPS_TASK             the step when none is given (each image sets its own)
  DATAOPS_TASK_SPEC        the pipeline spec as JSON (the DAG passes it)
  DATAOPS_INTERVAL_START   the data interval, ISO 8601 (Airflow's data_interval_start)
  DATAOPS_INTERVAL_END
  DATAOPS_DATA_DIR         the shared data folder (default /data): incoming/ and staged/
  PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD   the warehouse (libpq's own variables)
  DATAOPS_SECRETS_FILE     KEY=VALUE lines read into the environment first: the deployment
                           mounts the task's credentials (PGPASSWORD) as this file, so they
                           are never in the container's configuration (`docker inspect`)

transform (the dbt step) takes --select, --target and --audit instead of a spec and an
interval: it builds and tests the selection in audit schemas and publishes it only when every
test passed (see dataops.task.transform).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from dataops.core.pipeline import PipelineSpec
from dataops.task.files import TaskError


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise TaskError(f"environment variable {name} is not set (the DAG sets it for the task)")
    return value


def _interval() -> tuple[datetime, datetime]:
    try:
        return (
            datetime.fromisoformat(_env("DATAOPS_INTERVAL_START")),
            datetime.fromisoformat(_env("DATAOPS_INTERVAL_END")),
        )
    except ValueError as exc:
        raise TaskError(f"bad interval: {exc}") from None


def _spec() -> PipelineSpec:
    try:
        return PipelineSpec.model_validate(json.loads(_env("DATAOPS_TASK_SPEC")))
    except (ValueError, ValidationError) as exc:
        raise TaskError(f"DATAOPS_TASK_SPEC is not a valid pipeline spec: {exc}") from None


def load_secrets_file() -> None:
    """The credentials the deployment mounted for this task, into this process's environment
    (the child processes, dbt and psql, inherit them). Never printed."""
    path = os.environ.get("DATAOPS_SECRETS_FILE")
    if not path:
        return
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TaskError(f"cannot read the task's credentials file {path}: {exc.strerror}") from None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            os.environ[key.strip()] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dataops-task",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "step",
        nargs="?",
        default=os.environ.get("DATAOPS_TASK"),
        choices=["extract", "load", "transform", "bake"],
        help="what this task does (default: $DATAOPS_TASK, the image's own step)",
    )
    parser.add_argument("--select", help="transform: the dbt selection")
    parser.add_argument("--target", help="transform: the dbt target (the environment)")
    parser.add_argument("--audit", help="transform: the audit schema suffix (the pipeline)")
    args = parser.parse_args(argv)
    if args.step is None:
        parser.error("name the step (extract, load or transform), or set DATAOPS_TASK")
    data_dir = Path(os.environ.get("DATAOPS_DATA_DIR", "/data"))
    try:
        load_secrets_file()
    except TaskError as exc:
        print(f"dataops-task {args.step} failed: {exc}", file=sys.stderr)
        return 1
    if args.step == "bake":  # the transform image's build: its dbt manifests, one per target
        from dataops.task.dbt_manifest import bake

        root = Path(os.environ.get("DBT_PROJECT_DIR", "/opt/dataops/dbt_project"))
        state = Path(os.environ.get("DATAOPS_DBT_STATE", "/opt/dataops/dbt_state/manifest.json"))
        try:
            for path in bake(root, state.parent):
                print(f"baked {path} ({path.stat().st_size:,} bytes)")
        except TaskError as exc:
            print(f"dataops-task bake failed: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.step == "transform":
        missing = [f"--{n}" for n in ("select", "target", "audit") if not getattr(args, n)]
        if missing:
            parser.error(f"transform needs {', '.join(missing)}")
        from dataops.task.transform import main_transform

        try:
            return main_transform(args)
        except TaskError as exc:
            print(f"dataops-task transform failed: {exc}", file=sys.stderr)
            return 1
    try:
        spec = _spec()
        start, end = _interval()
        if args.step == "extract":
            from dataops.task.extract import extract

            result: object = extract(spec, data_dir, start, end)
        else:
            from dataops.task.load import load

            result = load(spec, data_dir, start, end)
    except TaskError as exc:
        print(f"dataops-task {args.step} failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the task log must say what broke, in one line first
        print(f"dataops-task {args.step} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
    print(json.dumps({"step": args.step, **asdict(result)}, default=str))  # type: ignore[call-overload]
    return 0


def exit_now(code: int) -> None:
    """End the task container's process once its step has returned: its work is committed and
    its files closed, so only the output is flushed. Python's own teardown of every module and
    object the step left (dbt's thousands of modules) would hold every dbt step's slot longer."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())  # an exception out of main() still ends the usual way, with its traceback
