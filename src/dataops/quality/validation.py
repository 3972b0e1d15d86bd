"""`dataops validate`'s rules: the project files checked without side effects.

`validate_project` reads dataops.yml's pipelines, migrations and dbt section and returns every
problem as `file:line:col: key: message` text; what was found fine is reported through the
callback, one line each, and so is a check that could not run. Nothing here prints, connects or
writes (dbt parses the project in a temporary folder).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path

from dataops.clients.dbt import DbtParseError, select_nodes
from dataops.core.capacity import celery_worker_slots, hosted_here, queued_wait_seconds
from dataops.core.config import DbtPackages, LoadedConfig
from dataops.core.dbt_project import read_project
from dataops.core.migrations import destructive_changes, read_migrations
from dataops.core.pipeline import PipelineSpec, load_spec, plan, spec_files, unserved_queues
from dataops.core.yaml_loader import load_yaml_file
from dataops.errors import ConfigError

Found = Callable[[str], None]  # told what was checked and found fine, one line each


def validate_project(loaded: LoadedConfig, found: Found, skipped: Found) -> list[str]:
    """Every problem of the project's files (empty: valid); `skipped` is told why a check
    could not run."""
    envs = ", ".join(loaded.config.environments)
    found(f"{loaded.document.source}: project {loaded.config.project!r}, environments {envs}")
    paths = spec_files(loaded.root / "dags" / "pipelines")
    specs, problems = _pipeline_problems(loaded, paths, found)
    problems += smoke_problems(loaded, {p.stem for p in paths})
    problems += queued_timeout_problems(loaded, specs)
    problems += _migration_problems(loaded, found)
    dbt_found = dbt_problems(loaded, found)
    problems += dbt_found or selection_problems(loaded, specs, found, skipped)
    return problems


def _pipeline_problems(
    loaded: LoadedConfig, paths: list[Path], found: Found
) -> tuple[list[tuple[Path, PipelineSpec]], list[str]]:
    """Each spec loads, has its DAG stub (and each stub its spec), and every task's queue is
    served by a worker of each Celery environment."""
    problems: list[str] = []
    served = {
        name: env.airflow.queues
        for name, env in loaded.config.environments.items()
        if env.airflow.executor == "celery"
    }
    dags = loaded.root / "dags"
    specs: list[tuple[Path, PipelineSpec]] = []
    for path in paths:
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
        specs.append((path, spec))
        stub = dags / f"pipeline_{spec.pipeline}.py"
        if not stub.exists():
            problems.append(f"dags/pipelines/{path.name}: no DAG stub dags/{stub.name}")
            continue
        found(f"dags/pipelines/{path.name}: {spec.target.table} ({spec.target.mode.value})")
    names = {p.stem for p in paths}
    for stub in sorted(dags.glob("pipeline_*.py")):
        name = stub.stem.removeprefix("pipeline_")
        if name not in names:
            problems.append(f"dags/{stub.name}: no spec dags/pipelines/{name}.yml")
    return specs, problems


def smoke_problems(loaded: LoadedConfig, pipelines: set[str]) -> list[str]:
    """Every pipeline an environment's `smoke.stages` names is a spec of the project: a smoke
    run of a deleted pipeline would fail only when a release reaches that environment."""
    problems = []
    for env, config in loaded.config.environments.items():
        for i, stage in enumerate(config.smoke.stages):
            for j, pipeline in enumerate(stage):
                if pipeline in pipelines:
                    continue
                where = loaded.document.where(("environments", env, "smoke", "stages", i, j))
                known = ", ".join(sorted(pipelines)) or "none"
                problems.append(
                    f"{where}: environments.{env}.smoke.stages: {pipeline!r} is no pipeline of "
                    f"this project (dags/pipelines/ has: {known}); remove it from the stage or "
                    f"add dags/pipelines/{pipeline}.yml"
                )
    return problems


def _migration_problems(loaded: LoadedConfig, found: Found) -> list[str]:
    """Migration names, duplicate versions, destructive changes without the allow annotation."""
    folder = loaded.root / loaded.config.migrations.path
    try:
        migrations = read_migrations(folder)
    except ConfigError as exc:
        return [str(exc)]
    problems = []
    for migration in [*migrations.versioned, *migrations.repeatable]:
        problems += [str(f) for f in destructive_changes(migration)]
    count = len(migrations.versioned) + len(migrations.repeatable)
    found(f"{loaded.config.migrations.path}/: {count} migration(s)")
    return problems


def dbt_problems(loaded: LoadedConfig, found: Found) -> list[str]:
    """The dbt section: the project is there, packages can be had as configured."""
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
        found(
            f"{dbt.project_dir}/: dbt project {project.name!r}"
            f"{packages if project.packages else ''}"
        )
    return problems


_BARE_NAME = re.compile(r"^(?:\d*\+|@)?([\w.]+?)(?:\+\d*)?$")  # a name with graph operators


def selection_problems(
    loaded: LoadedConfig, specs: list[tuple[Path, PipelineSpec]], found: Found, skipped: Found
) -> list[str]:
    """Every spec's `dbt.select`, and each of its criteria, selects a node of the dbt project,
    as dbt's own selector sees it: a typo would build nothing (or less) and say so only in a
    task log. Skipped, with the reason, while packages.yml's packages are not installed (dbt
    cannot parse the project then, and validate downloads nothing)."""
    selecting = [(path, spec.dbt.select) for path, spec in specs if spec.dbt is not None]
    if not selecting:
        return []
    dbt = loaded.config.dbt
    project = read_project(loaded.dbt_dir)
    missing = project.uninstalled_packages()
    if missing:
        names = ", ".join(p.name for p in missing)
        skipped(
            f"dbt.select of the pipeline specs not checked: {dbt.project_dir}/packages.yml's "
            f"{names} not installed in {dbt.project_dir}/{project.packages_install_path}/ "
            f"(validate downloads nothing); run `dbt deps` in {dbt.project_dir} to check them"
        )
        return []
    first = next(iter(loaded.config.environments))
    try:
        result = select_nodes(
            loaded.dbt_dir,
            dbt.profile or project.profile or project.name,
            dbt.target(first),
            dbt.target_schema,
            [selection for _, selection in selecting],
        )
    except DbtParseError as exc:
        where = f"{dbt.project_dir}/{exc.file}" if exc.file else f"{dbt.project_dir}/"
        return [
            f"{where}: dbt parse failed, so no spec's dbt.select could be checked: "
            f"{exc.reason}\nfix the project (`dbt parse` in {dbt.project_dir} shows the whole "
            "error)"
        ]
    problems = []
    for path, selection in selecting:
        picked = result.selected[selection]
        if picked.error is None and not picked.unmatched and picked.nodes:
            continue
        document = load_yaml_file(path, display=f"dags/pipelines/{path.name}")
        where = f"{document.where(('dbt', 'select'))}: dbt.select"
        listing = f"`dbt ls --select '{selection}'` in {dbt.project_dir} lists what it selects"
        if picked.error is not None:
            problems.append(
                f"{where}: dbt refuses {selection!r}: {picked.error}; write it in dbt's node "
                f"selection syntax ({listing})"
            )
            continue
        criteria = picked.unmatched or (selection,)
        hints = _close_names(criteria, result.names)
        what = (
            f"{selection!r} selects no node"
            if not picked.nodes
            else f"{', '.join(map(repr, criteria))} of {selection!r} "
            f"match{'es' if len(criteria) == 1 else ''} no node"
        )
        problems.append(
            f"{where}: {what} of dbt project {project.name!r}{hints}; fix the selection ({listing})"
        )
    if not problems:
        found(
            f"dags/pipelines/: dbt.select of {len(selecting)} spec(s) selects nodes of dbt "
            f"project {project.name!r}"
        )
    return problems


def _close_names(criteria: tuple[str, ...], names: tuple[str, ...]) -> str:
    """` (did you mean a, b?)` with the project's names closest to the criteria's, if any."""
    close: list[str] = []
    for criterion in criteria:
        bare = _BARE_NAME.match(criterion)
        if bare:
            close += difflib.get_close_matches(bare.group(1), names, n=3, cutoff=0.85)
    return f" (did you mean {', '.join(dict.fromkeys(close))}?)" if close else ""


def queued_timeout_problems(
    loaded: LoadedConfig, specs: list[tuple[Path, PipelineSpec]]
) -> list[str]:
    """A task waiting queued behind others past `task_queued_timeout_seconds` is given back by
    the scheduler (and failed after its retries) although it is healthy: refuse a longest task
    timeout that allows it, in each Celery environment."""
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
