"""Pipeline spec -> Airflow 3 DAG whose tasks are containers pinned by digest.

The environment's runtime (dataops.yml `runtime.kind`, passed as DATAOPS_RUNTIME) picks the
operator: DockerOperator on the worker's engine, or KubernetesPodOperator on a cluster.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, BaseOperator
from docker.types import Mount

from dataops.airflow import runtime, spec_cache
from dataops.airflow.operators import TaskContainerOperator, TransformContainerOperator
from dataops.core.config import RuntimeConfig, RuntimeKind
from dataops.core.pipeline import PipelinePlan, PipelineSpec, TaskPlan, plan
from dataops.core.pods import render_pod, task_args, task_env
from dataops.core.promotion import release_tag
from dataops.core.release_record import ReleaseRecord

DOCKER_URL = "unix://var/run/docker.sock"

if TYPE_CHECKING:  # for mypy only: nothing more to make when a DAG file is parsed
    from typing import TypedDict

    class _Queue(TypedDict, total=False):
        """The operator's Celery `queue` when the spec names one (else Airflow's default)."""

        queue: str


def dag_for_stub(stub_file: str) -> DAG:
    """The DAG of `dags/pipelines/<name>.yml`, for the stub `dags/pipeline_<name>.py`."""
    stub = Path(stub_file)
    name = stub.stem.removeprefix("pipeline_")
    spec_path = stub.parent / "pipelines" / f"{name}.yml"
    return build_dag(plan(spec_cache.load(spec_path), str(spec_path)), bundle_root=stub.parent)


def _doc(pipeline: PipelinePlan, release: tuple[str, ReleaseRecord] | None) -> str:
    spec = pipeline.spec
    target = spec.target
    lines = [
        f"# {spec.pipeline}",
        "",
        spec.description.strip() or "(no description in the spec)",
        "",
        f"- **spec**: `dags/pipelines/{spec.pipeline}.yml`",
        f"- **source**: file drop `{spec.source.path}`",
        f"- **target**: `{target.table}` ({target.mode.value}"
        + (f" on {', '.join(target.key)}" if target.key else "")
        + (f" by {', '.join(target.partition)}" if target.partition else "")
        + ")",
        f"- **dbt**: `{spec.dbt.select}`" if spec.dbt else "- **dbt**: none",
        f"- **owner**: {spec.owner}; retries {spec.retries}; timeout {spec.timeout_minutes} min",
        "",
        "Every task is a container whose image is pinned by digest for this environment.",
    ]
    if release:
        release_id, record = release
        lines.insert(-2, f"- **release**: `{release_id}` (commit `{record.git_commit[:12]}`)")
    try:  # the spec itself (the Code tab shows the stub that loads it)
        text = Path(pipeline.source_file).read_text()
    except OSError:
        text = ""
    if text:
        lines += ["", f"## The spec: `dags/pipelines/{spec.pipeline}.yml`", "", "```yaml"]
        lines += [text.rstrip().replace("```", "` ` `"), "```"]
    return "\n".join(lines)


@cache
def _airflow_dag_defaults() -> dict[str, Any]:
    """Airflow's own defaults for the DAG arguments a spec does not set, read once per process.

    Left out, each is read from Airflow's configuration by every DAG as it is made (each lookup
    tries environment, command, secret, file and defaults in turn); read once and
    passed, every DAG gets the same values without the lookups.
    """
    from airflow.sdk.configuration import conf

    return {
        "max_active_tasks": conf.getint("core", "max_active_tasks_per_dag"),
        "max_consecutive_failed_dag_runs": conf.getint(
            "core", "max_consecutive_failed_dag_runs_per_dag"
        ),
        "disable_bundle_versioning": conf.getboolean("dag_processor", "disable_bundle_versioning"),
    }


def build_dag(pipeline: PipelinePlan, bundle_root: Path | None = None) -> DAG:
    spec = pipeline.spec
    env = runtime.environment()
    # The release this DAG code came with (its bundle version): named in the DAG's tags and
    # docs, so each release is a DAG version of its own in Airflow.
    release = runtime.release_of(bundle_root) if bundle_root else None
    release_tags = [release_tag(release[0])] if release and release[0] else []
    default_args: dict[str, Any] = {
        "owner": spec.owner,
        "retries": spec.retries,
        "retry_delay": timedelta(seconds=spec.retry_delay_seconds),
        "execution_timeout": timedelta(minutes=spec.timeout_minutes),
    }
    dag = DAG(
        dag_id=spec.pipeline,
        description=(spec.description.strip().splitlines() or [""])[0][:200],
        doc_md=_doc(pipeline, release),
        schedule=spec.schedule,
        start_date=datetime.combine(spec.start_date, datetime.min.time(), tzinfo=UTC),
        end_date=(
            datetime.combine(spec.end_date, datetime.max.time(), tzinfo=UTC)
            if spec.end_date
            else None
        ),
        catchup=spec.catchup,
        max_active_runs=spec.max_active_runs,
        tags=[*spec.tags, f"env:{env}", *release_tags],
        default_args=default_args,
        user_defined_macros={
            "dataops_image": partial(runtime.image_ref, str(bundle_root or Path.cwd()))
        },
        **_airflow_dag_defaults(),
    )
    config = runtime.runtime_config()
    make = _pod_operator if config.kind is RuntimeKind.KUBERNETES else _docker_operator
    tasks = {task.task_id: make(dag, spec, task, env, config) for task in pipeline.tasks}
    for task in pipeline.tasks:
        for upstream in task.upstream:
            tasks[upstream] >> tasks[task.task_id]
    return dag


def _image(task: TaskPlan) -> str:
    return f"{{{{ dataops_image('{task.image}') }}}}"


def _docker_operator(
    dag: DAG, spec: PipelineSpec, task: TaskPlan, env: str, config: RuntimeConfig
) -> BaseOperator:
    conn = f"conn.warehouse_{env}"
    # No password here: the operator mounts it as a file (see TaskContainerOperator).
    warehouse = {
        "PGHOST": f"{{{{ {conn}.host }}}}",
        "PGPORT": f"{{{{ {conn}.port }}}}",
        "PGDATABASE": f"{{{{ {conn}.schema }}}}",
        "PGUSER": f"{{{{ {conn}.login }}}}",
    }
    # The deployment's own registry login, when its registry needs one (staging, prod).
    registry_conn = (
        f"registry_{env}" if os.environ.get(f"AIRFLOW_CONN_REGISTRY_{env.upper()}") else None
    )
    operator = TransformContainerOperator if task.image == "transform" else TaskContainerOperator
    queue: _Queue = {"queue": task.queue} if task.queue else {}
    made = operator(
        dag=dag,
        task_id=task.task_id,
        docker_conn_id=registry_conn,
        image=_image(task),
        command=task_args(spec, task, env),
        environment={**warehouse, **task_env(spec, task, env)},
        # One Docker engine may serve several deployments: the name carries the environment,
        # so a try never removes another environment's container of the same interval.
        container_name=f"dataops-{env}-{dag.dag_id}-{task.task_id}-{{{{ ts_nodash }}}}",
        docker_url=DOCKER_URL,
        network_mode="host",
        mounts=[Mount(target="/data", source=runtime.data_dir(), type="bind")],
        mount_tmp_dir=False,
        auto_remove="force",
        force_pull=False,
        tty=False,
        **queue,
    )
    made.warehouse_conn_id = f"warehouse_{env}"
    return made


def _pod_operator(
    dag: DAG, spec: PipelineSpec, task: TaskPlan, env: str, config: RuntimeConfig
) -> BaseOperator:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    pod = render_pod(spec, task, env, config, _image(task))
    queue: _Queue = {"queue": task.queue} if task.queue else {}
    return KubernetesPodOperator(
        dag=dag,
        task_id=task.task_id,
        name=pod["metadata"]["name"],
        namespace=config.namespace,
        image=_image(task),
        pod_template_dict=pod,
        get_logs=True,
        on_finish_action="delete_pod",
        in_cluster=True,
        **queue,
    )
