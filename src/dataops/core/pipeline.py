"""Pipeline specs (`dags/pipelines/<name>.yml`): the schema, loading, and the neutral task plan.

A spec declares where data comes from, the target table with its columns, key and load mode,
and the dbt selection to run after loading. `plan()` turns it into neutral task objects; only
the DAG factory turns those into Airflow operators (as astronomer-cosmos does for dbt).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dataops.core.config import DEFAULT_QUEUE, QueueName, _Strict
from dataops.core.schema import validate
from dataops.core.yaml_loader import load_yaml_bytes, load_yaml_file
from dataops.errors import ConfigError

_IDENT = r"^[a-z_][a-z0-9_]*$"
_TABLE = r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$"
_COLUMN_TYPES = {
    "text",
    "integer",
    "bigint",
    "smallint",
    "numeric",
    "double precision",
    "real",
    "boolean",
    "date",
    "timestamp",
    "timestamptz",
}

Identifier = Annotated[str, Field(pattern=_IDENT)]
SCHEDULE_PRESETS = frozenset(
    {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}
)


class LoadMode(StrEnum):
    APPEND = "append"  # insert; a re-run of an interval first removes that interval's rows
    MERGE = "merge"  # upsert on `key`; nothing is deleted
    REPLACE_PARTITION = "replace_partition"  # rows whose `partition` values the batch holds


class SourceSpec(_Strict):
    """A file drop: files arrive in the drop folder, one per interval (or one for all)."""

    type: Literal["file_drop"] = "file_drop"
    # Relative to the drop folder; `{interval_start:%Y-%m}` style fields name the interval's file.
    path: Annotated[str, Field(min_length=1)]
    format: Literal["csv"] = "csv"
    null: str = ""  # the text that stands for NULL in the file (e.g. NA)
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("must be a path inside the drop folder (relative, no '..')")
        try:
            value.format(interval_start=datetime(2000, 1, 1), interval_end=datetime(2000, 1, 2))
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(
                f"bad placeholder ({exc}); use {{interval_start:%Y-%m}} or {{interval_end:%Y%m%d}}"
            ) from None
        return value


class TargetSpec(_Strict):
    """The table the data is loaded into: its columns, and how a load changes it."""

    table: Annotated[str, Field(pattern=_TABLE)]
    columns: dict[Identifier, str]
    mode: LoadMode
    key: list[Identifier] = []
    partition: list[Identifier] = []

    @field_validator("columns")
    @classmethod
    def _types(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("declare at least one column")
        for name, kind in value.items():
            if kind not in _COLUMN_TYPES:
                raise ValueError(
                    f"column {name}: type {kind!r} is not one of {', '.join(sorted(_COLUMN_TYPES))}"
                )
        return value

    @model_validator(mode="after")
    def _mode_fields(self) -> TargetSpec:
        if self.mode is LoadMode.MERGE and not self.key:
            raise ValueError("mode: merge needs `key` (the columns that identify a row)")
        if self.mode is LoadMode.REPLACE_PARTITION and not self.partition:
            raise ValueError("mode: replace_partition needs `partition` (e.g. [year, month])")
        for name in [*self.key, *self.partition]:
            if name not in self.columns:
                raise ValueError(f"key/partition column {name!r} is not in `columns`")
        return self

    @property
    def schema_name(self) -> str:
        return self.table.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".")[1]


class DbtSpec(_Strict):
    """The dbt models built (and tested, then published) after each load."""

    # dbt's node selection syntax (`stg_x+`, `tag:y`, `path:models/z`, space for a union);
    # `dataops validate` refuses one whose criteria select no node of the dbt project.
    select: Annotated[str, Field(min_length=1)]


TASK_IDS = ("extract", "load", "dbt")


class PipelineSpec(_Strict):
    """One pipeline: a spec file `dags/pipelines/<pipeline>.yml`, one Airflow DAG."""

    pipeline: Identifier
    description: str = ""
    owner: Annotated[str, Field(min_length=1)]
    tags: Annotated[list[str], Field(min_length=1)]
    schedule: str | None
    start_date: date
    end_date: date | None = None
    catchup: bool = False
    max_active_runs: Annotated[int, Field(ge=1, le=16)] = 1
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    retry_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    timeout_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 30
    source: SourceSpec
    target: TargetSpec
    dbt: DbtSpec | None = None
    # The Celery queue its tasks go to: one for every task, or per task ({load: heavy});
    # unset, Airflow's default queue. `dataops validate` refuses a queue no worker serves.
    queue: QueueName | dict[Literal["extract", "load", "dbt"], QueueName] | None = None

    def queue_of(self, task_id: str) -> str | None:
        if isinstance(self.queue, dict):
            per_task: dict[str, str] = {str(k): v for k, v in self.queue.items()}
            return per_task.get(task_id)
        return self.queue

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None or value in SCHEDULE_PRESETS or len(value.split()) == 5:
            return value
        raise ValueError(
            f"{value!r} is not a cron expression (5 fields) or one of {sorted(SCHEDULE_PRESETS)}"
        )


@dataclass(frozen=True)
class TaskPlan:
    """One neutral task: which image runs it and with what arguments."""

    task_id: str
    image: str  # the logical image name: extract, load, transform
    args: tuple[str, ...]
    upstream: tuple[str, ...] = ()
    queue: str | None = None  # the Celery queue (None: the deployment's default queue)


@dataclass(frozen=True)
class PipelinePlan:
    spec: PipelineSpec
    source_file: str
    tasks: tuple[TaskPlan, ...] = field(default=())

    @property
    def dag_id(self) -> str:
        return self.spec.pipeline


def plan(spec: PipelineSpec, source_file: str) -> PipelinePlan:
    """The tasks of one pipeline: extract -> load (-> dbt: build, test, publish)."""
    q = spec.queue_of
    tasks = [
        TaskPlan("extract", "extract", ("extract",), queue=q("extract")),
        TaskPlan("load", "load", ("load",), upstream=("extract",), queue=q("load")),
    ]
    if spec.dbt is not None:
        select = ("transform", "--select", spec.dbt.select)
        tasks.append(TaskPlan("dbt", "transform", select, upstream=("load",), queue=q("dbt")))
    return PipelinePlan(spec, source_file, tuple(tasks))


def unserved_queues(
    pipeline: PipelinePlan, served: dict[str, set[str]]
) -> list[tuple[str, str, str]]:
    """(environment, task, queue) for each task whose queue no worker of that environment
    serves; `served` maps each Celery environment to its workers' queues (LocalExecutor
    environments run every task and are not in it)."""
    problems = []
    for env, queues in served.items():
        for task in pipeline.tasks:
            queue = task.queue or DEFAULT_QUEUE
            if queue not in queues:
                problems.append((env, task.task_id, queue))
    return problems


def load_spec(path: Path, raw: bytes | None = None) -> PipelineSpec:
    """Load and validate one spec; the file name must match its `pipeline`. `raw`: the file's
    bytes when the caller has read them already (they are what is validated)."""
    display = _display(path)
    document = (
        load_yaml_file(path, display=display) if raw is None else load_yaml_bytes(raw, display)
    )
    if not isinstance(document.data, dict):
        raise ConfigError(f"{document.source}:1:1: a pipeline spec must be a map")
    spec = validate(
        PipelineSpec, document.data, document, "fix the spec; `dataops validate` checks it"
    )
    if spec.pipeline != path.stem:
        raise ConfigError(
            f"{document.where(('pipeline',))}: pipeline: {spec.pipeline!r} must equal the file "
            f"name {path.stem!r}",
            f"rename the file to {spec.pipeline}.yml or change `pipeline`",
        )
    return spec


def is_spec_name(name: str) -> bool:
    """Whether a file of the specs' folder, by its name, is a pipeline spec."""
    return name.endswith(".yml") and not name.startswith((".", "_"))


def spec_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yml") if is_spec_name(p.name))


def _display(path: Path) -> str:
    parts = path.resolve().parts
    if "dags" in parts:
        return str(Path(*parts[parts.index("dags") :]))
    return str(path)


def interval_path(spec: SourceSpec, interval_start: datetime, interval_end: datetime) -> str:
    return spec.path.format(interval_start=interval_start, interval_end=interval_end)
