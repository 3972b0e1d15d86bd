"""DockerOperator that never trips over the container of an earlier, killed try, does not
retry a failed data-quality gate, logs the container's stderr at WARNING (stdout at INFO), and
(for the dbt step) keeps the per-model and per-test results as an XCom behind an extra link."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.hooks.docker import DockerHook
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import BaseHook, BaseOperatorLink
from airflow.sdk.exceptions import AirflowFailException
from docker.types import Mount

from dataops.core.dbt_artifacts import RESULTS_XCOM, results_url
from dataops.core.timespan import interval_for
from dataops.patches.airflow.docker_operator import (
    NO_CONVERTER_NAMES,
    declare_no_converters,
    hook_without_login,
    set_login_hook,
)

# dataops-task's exit code for "a dbt data test failed": the same data fails the same way.
EXIT_QUALITY_GATE = 3
SECRETS_MOUNT = "/run/dataops"
SECRETS_FILE = f"{SECRETS_MOUNT}/secrets.env"
TASK_UID = 10001  # the task images' user
MICROSECOND = timedelta(microseconds=1)


class TaskContainerOperator(DockerOperator):
    """Runs one pipeline task as a container named after its DAG, task and interval.

    A try that was killed (worker lost, task killed) can leave its container behind; the next
    try removes any container with its name before it starts, so a retry is never blocked by it.

    The warehouse password never goes into the container's configuration (which `docker
    inspect` and the rendered task fields show): it is written for this try only to a file
    (0400, the task user's) in the deployment's task-secrets folder, mounted read-only at
    /run/dataops, read by `dataops-task` at start, and removed when the try ends.

    `warehouse_conn_id` (the connection whose password is handed over) is set on the operator
    after it is made (`op.warehouse_conn_id = ...`): this class has no `__init__` of its own, as
    each one Airflow wraps adds to every DAG parse, once per task.
    """

    warehouse_conn_id: str | None = None
    _streams: SplitStreams | None = None
    # No field is a template file: a command argument ending in `.sh` or `.env` is an argument,
    # not a file to read (and parsing skips a Jinja environment per task looking for them).
    template_ext: Sequence[str] = ()

    @cached_property
    def hook(self) -> DockerHook:
        """The provider's hook without the registry login: its login runs for every task, and
        each one makes the registry check the password (bcrypt, deliberately slow). An image
        pinned by digest that the engine already has is run without pulling, so nothing needs
        the login then; `_login_if_pulling` logs in when the image must be pulled."""
        return hook_without_login(self)

    def _login_if_pulling(self) -> None:
        """Log in to the registry (a new client, as the provider makes it) when DockerOperator's
        `execute` is about to pull: the image is not in the engine, or `force_pull`."""
        if self.docker_conn_id and (self.force_pull or not self.cli.images(name=self.image)):
            set_login_hook(self)

    @property
    def cli(self) -> Any:
        """The Docker API client, with `attach` splitting the container's stdout and stderr."""
        client = super().cli
        if self._streams is None or self._streams.client is not client:
            self._streams = SplitStreams(client, self.log)
        return self._streams

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        interval = missing_interval(context, self.dag)
        if interval is not None:
            self.log.warning(
                "this run has no logical date: it runs the interval %s .. %s (the last complete "
                "one before the run was triggered); trigger with a logical date to choose one",
                interval[0].isoformat(),
                interval[1].isoformat(),
            )
        super().render_template_fields(context, jinja_env)

    def execute(self, context: Any) -> Any:
        folder = self._write_secrets()
        try:
            return self._execute(context)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _write_secrets(self) -> Path | None:
        if not self.warehouse_conn_id:
            return None
        password = BaseHook.get_connection(self.warehouse_conn_id).password or ""
        base = Path(os.environ.get("DATAOPS_TASK_SECRETS_DIR", "/var/lib/dataops/task-secrets"))
        root = os.geteuid() == 0
        # As root the file is handed to the task user (0400). Otherwise the folder gets an
        # unguessable name in a folder nobody may list (0711), so only this try finds it.
        name = self.container_name or self.task_id
        folder = base / (name if root else f"{name}-{secrets.token_hex(16)}")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, mode=0o700 if root else 0o711)
        path = folder / "secrets.env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400 if root else 0o444)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"PGPASSWORD={password}\n")
        if root:
            os.chown(folder, TASK_UID, TASK_UID)
            os.chown(path, TASK_UID, TASK_UID)
        self.mounts = [
            *self.mounts,
            Mount(target=SECRETS_MOUNT, source=str(folder), type="bind", read_only=True),
        ]
        self.environment = {**self.environment, "DATAOPS_SECRETS_FILE": SECRETS_FILE}
        return folder

    def _execute(self, context: Any) -> Any:
        if self.container_name:
            try:
                self.cli.remove_container(self.container_name, force=True)
                self.log.info("removed the container %s of an earlier try", self.container_name)
            except Exception as exc:  # docker.errors.NotFound: nothing was left behind
                if getattr(getattr(exc, "response", None), "status_code", None) != 404:
                    raise
        self._login_if_pulling()
        try:
            output = super().execute(context)
        except DockerContainerFailedException as exc:
            self.on_output(context, list(exc.logs or []))
            if re.search(rf"'StatusCode': {EXIT_QUALITY_GATE}\b", str(exc)):
                failed = failed_tests([*(exc.logs or []), *self.stderr_lines()])
                raise AirflowFailException(
                    "a dbt data test failed (the quality gate): "
                    + (f"{', '.join(failed)}; " if failed else "")
                    + "nothing was published; fix the data or the model, then run again"
                ) from exc
            raise
        self.on_output(context, [output] if isinstance(output, str) else list(output or []))
        return output

    def stderr_lines(self) -> list[str]:
        return list(self._streams.lines) if self._streams else []

    def on_output(self, context: Any, stdout: list[str | bytes]) -> None:
        """What the container printed to stdout (the last line when it succeeded, every line
        when it failed): nothing to do here; the dbt step keeps its results."""


class DbtResultsLink(BaseOperatorLink):
    """The dbt step's results page (the dataops plugin renders the step's XCom)."""

    name = "dbt results"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return results_url(ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index)


class TransformContainerOperator(TaskContainerOperator):
    """The dbt step: its per-model and per-test results are an XCom (`dbt_results`) and the
    task has a "dbt results" link to the page that shows them, whether the step passed or not."""

    operator_extra_links = (DbtResultsLink(),)

    def on_output(self, context: Any, stdout: list[str | bytes]) -> None:
        for line in reversed(stdout):
            text = line.decode(errors="replace") if isinstance(line, bytes) else str(line)
            if text.startswith('{"step": "transform"'):
                try:
                    summary = json.loads(text)
                except ValueError:
                    break
                context["ti"].xcom_push(key=RESULTS_XCOM, value=json.dumps(summary))
                return
        self.log.warning("the dbt step printed no results summary; no dbt results to show")


# No failed `_convert_<name>` lookup per attribute set (dataops.patches.airflow.docker_operator);
# TransformContainerOperator too.
NO_CONVERTER = declare_no_converters(TaskContainerOperator, NO_CONVERTER_NAMES)


class SplitStreams:
    """A Docker API client whose streamed `attach` keeps the container's two streams apart:
    stdout goes on to the DockerOperator (logged at INFO, its last line the XCom), stderr is
    logged at WARNING here, line by line, and kept in `lines`."""

    def __init__(self, client: Any, log: Any) -> None:
        self.client, self.log, self.lines = client, log, list[str]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def attach(self, container: Any, **kwargs: Any) -> Any:
        if not (kwargs.get("stream") and kwargs.get("stdout", True) and kwargs.get("stderr", True)):
            return self.client.attach(container, **kwargs)
        return self._split(self.client.attach(container, **{**kwargs, "demux": True}))

    def _split(self, frames: Any) -> Iterator[bytes]:
        pending = ""
        for out, err in frames:
            if err:
                pending += err.decode(errors="replace")
                *done, pending = pending.split("\n")
                for line in done:
                    self._warn(line)
            if out:
                yield out
        if pending:
            self._warn(pending)

    def _warn(self, line: str) -> None:
        line = line.rstrip()
        self.log.warning("%s", line)
        self.lines.append(line)


def failed_tests(lines: list[str | bytes]) -> list[str]:
    """The failing dbt tests a transform container printed (`  fail: test.x.y: ...`)."""
    found = []
    for line in lines:
        text = line.decode(errors="replace") if isinstance(line, bytes) else str(line)
        match = re.search(r"fail: ((?:unit_)?test\.[\w.]+)", text)
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found[:5]


def missing_interval(context: Any, dag: Any) -> tuple[datetime, datetime] | None:
    """A run with no logical date (Airflow 3 allows them) has no data interval: give it the
    last complete interval of the DAG's schedule before the run was triggered (for an
    unscheduled DAG, the moment it was triggered), and the names the task templates use
    (data_interval_start/end, ts_nodash). None when it has one."""
    if context.get("data_interval_start") is not None:
        return None
    run = context.get("dag_run")
    after = getattr(run, "run_after", None) or datetime.now(UTC)
    schedule = getattr(dag, "schedule", None)
    schedule = schedule if isinstance(schedule, str) else None
    current = interval_for(schedule, after)
    start, end = (
        current if current[0] == current[1] else interval_for(schedule, current[0] - MICROSECOND)
    )
    context["data_interval_start"], context["data_interval_end"] = start, end
    if not context.get("ts_nodash"):
        context["ts_nodash"] = after.strftime("%Y%m%dT%H%M%S")
    return start, end
