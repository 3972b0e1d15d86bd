"""`dataops validate`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dataops.cli.context import Context, pass_context
from dataops.errors import ConfigError, ExitCode

if TYPE_CHECKING:
    from dataops.core.config import CeleryConfig


@click.command()
@pass_context
def validate(ctx: Context) -> None:
    """Check the project files without side effects: dataops.yml, every pipeline spec
    (dags/pipelines/*.yml, each with its dags/pipeline_<name>.py stub) and the migration files
    (names, duplicate versions, destructive changes without the allow annotation), the dbt
    section (the project is there, its local packages exist, vendored packages are checked in),
    that every task's queue is served by a worker of each Celery environment, and that a task
    queued ahead there (celery.queue_ahead) cannot outwait celery.task_queued_timeout_seconds.

    Every problem is reported as file:line:col with the key and what is allowed; exit 2 when
    any is found."""
    from dataops.core.migrations import destructive_changes, read_migrations
    from dataops.core.pipeline import load_spec, plan, spec_files, unserved_queues
    from dataops.core.yaml_loader import load_yaml_file

    loaded = ctx.loaded()
    envs = ", ".join(loaded.config.environments)
    source = loaded.document.source
    ctx.console.print(
        f"[green]ok[/] {source}: project {loaded.config.project!r}, environments {envs}"
    )
    problems: list[str] = []
    served = {
        name: env.airflow.queues
        for name, env in loaded.config.environments.items()
        if env.airflow.executor == "celery"
    }
    dags = loaded.root / "dags"
    specs = spec_files(dags / "pipelines")
    loaded_specs: list[tuple[Path, Any]] = []
    for path in specs:
        try:
            spec = load_spec(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        for env, task, queue in unserved_queues(plan(spec, str(path)), served):
            document = load_yaml_file(path, display=f"dags/pipelines/{path.name}")
            key = ("queue", task) if isinstance(spec.queue, dict) else ("queue",)
            workers = loaded.document.where(("environments", env, "airflow", "celery", "workers"))
            problems.append(
                f"{document.where(key)}: queue: task {task} goes to queue {queue!r}, which no "
                f"Celery worker of {env} serves (the workers at {workers} serve "
                f"{', '.join(sorted(served[env]))}); add it to a worker's queues or change "
                "the spec's queue"
            )
        loaded_specs.append((path, spec))
        stub = dags / f"pipeline_{spec.pipeline}.py"
        if not stub.exists():
            problems.append(f"dags/pipelines/{path.name}: no DAG stub dags/{stub.name}")
            continue
        target = f"{spec.target.table} ({spec.target.mode.value})"
        ctx.console.print(f"[green]ok[/] dags/pipelines/{path.name}: {target}")
    problems += _queued_timeout_problems(loaded, loaded_specs)
    names = {p.stem for p in specs}
    for stub in sorted(dags.glob("pipeline_*.py")):
        name = stub.stem.removeprefix("pipeline_")
        if name not in names:
            problems.append(f"dags/{stub.name}: no spec dags/pipelines/{name}.yml")
    folder = loaded.root / loaded.config.migrations.path
    try:
        found = read_migrations(folder)
    except ConfigError as exc:
        problems.append(str(exc))
    else:
        for migration in [*found.versioned, *found.repeatable]:
            problems += [str(f) for f in destructive_changes(migration)]
        count = len(found.versioned) + len(found.repeatable)
        ctx.console.print(f"[green]ok[/] {loaded.config.migrations.path}/: {count} migration(s)")
    problems += _dbt_problems(ctx)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(int(ExitCode.USAGE))


def _dbt_problems(ctx: Context) -> list[str]:
    """The dbt section: the project is there, packages can be had as configured."""
    from dataops.core.config import DbtPackages
    from dataops.core.dbt_project import read_project

    loaded = ctx.loaded()
    dbt = loaded.config.dbt
    where = loaded.document.where(("dbt", "project_dir"))
    try:
        project = read_project(loaded.dbt_dir)
    except ConfigError as exc:
        return [f"{where}: dbt.project_dir {dbt.project_dir!r}: {exc}"]
    problems = []
    for folder in project.local_package_dirs():
        if not (folder / "dbt_project.yml").is_file():
            problems.append(
                f"{project.root.name}/packages.yml: local package {folder} has no dbt_project.yml"
            )
    installed = project.packages_dir
    if (
        dbt.packages is DbtPackages.VENDORED
        and project.packages
        and not (installed.is_dir() and any(installed.iterdir()))
    ):
        problems.append(
            f"{loaded.document.where(('dbt', 'packages'))}: dbt.packages is vendored, but "
            f"{installed} is missing or empty (run `dbt deps` where the network is reachable "
            "and commit it)"
        )
    if not problems:
        packages = f", {len(project.packages)} package(s) ({dbt.packages.value})"
        ctx.console.print(
            f"[green]ok[/] {dbt.project_dir}/: dbt project {project.name!r}"
            f"{packages if project.packages else ''}"
        )
    return problems


def register(group: click.Group) -> None:
    group.add_command(validate)


# What a queued task may wait on top of the tasks ahead of it (Airflow's own default).
QUEUED_MARGIN_SECONDS = 600


def queued_wait_seconds(
    celery: CeleryConfig, slots: dict[str, int], longest_seconds: int
) -> dict[str, int]:
    """The longest a task of each queue may wait queued: the scheduler queues up to
    `parallelism` (every slot times 1 + queue_ahead) tasks, so behind the slots that serve a
    queue wait the rest, one round of the longest task for each time those slots are full, plus
    the margin. `slots` maps each worker to its task slots."""
    parallelism = celery.scheduler_parallelism(sum(slots.values()))
    waits = {}
    for queue in sorted(celery.queues):
        serving = sum(slots[w.name] for w in celery.workers if queue in w.queues)
        rounds = -(-(parallelism - serving) // serving)  # ceil
        if rounds > 0:
            waits[queue] = rounds * longest_seconds + QUEUED_MARGIN_SECONDS
    return waits


def _queued_timeout_problems(loaded: Any, specs: list[tuple[Path, Any]]) -> list[str]:
    """A task waiting queued behind others past `task_queued_timeout_seconds` is given back by
    the scheduler (and failed after its retries) although it is healthy: refuse a longest task
    timeout that allows it, in each Celery environment."""
    from dataops.core.yaml_loader import load_yaml_file
    from dataops.local.deployment import celery_worker_slots, hosted_here

    if not specs:
        return []
    path, spec = max(specs, key=lambda item: item[1].timeout_minutes)
    environments = loaded.config.environments
    hosted = sum(1 for env in environments.values() if hosted_here(env.airflow.url)) or 1
    problems = []
    for name, env in environments.items():
        celery = env.airflow.celery
        if env.airflow.executor != "celery" or celery is None:
            continue
        slots = celery_worker_slots(celery, hosted)
        waits = queued_wait_seconds(celery, slots, spec.timeout_minutes * 60)
        late = {q: wait for q, wait in waits.items() if wait > celery.task_queued_timeout_seconds}
        if not late:
            continue
        queue, needed = max(late.items(), key=lambda item: item[1])
        document = load_yaml_file(path, display=f"dags/pipelines/{path.name}")
        key = ("timeout_minutes",) if "timeout_minutes" in document.data else ("pipeline",)
        at = loaded.document.where(("environments", name, "airflow", "celery"))
        problems.append(
            f"{document.where(key)}: timeout_minutes: a task may run {spec.timeout_minutes} "
            f"min, so in {name} (queue_ahead: {celery.queue_ahead}, {sum(slots.values())} "
            f"slot(s)) a task of queue {queue!r} may wait queued up to {needed} s (with 600 s "
            f"to spare), past {name}'s task_queued_timeout_seconds: "
            f"{celery.task_queued_timeout_seconds} ({at}), and the scheduler would give it "
            f"back; raise task_queued_timeout_seconds to at least {needed}, lower the timeout, "
            "queue fewer tasks ahead (queue_ahead), or let more workers serve that queue"
        )
    return problems
