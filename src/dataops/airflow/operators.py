"""DockerOperator that never trips over the container of an earlier, killed try, and does not
retry a failed data-quality gate."""

from __future__ import annotations

import re
from typing import Any

from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk.exceptions import AirflowFailException

# dataops-task's exit code for "a dbt data test failed": the same data fails the same way.
EXIT_QUALITY_GATE = 3


class TaskContainerOperator(DockerOperator):
    """Runs one pipeline task as a container named after its DAG, task and interval.

    A try that was killed (worker lost, task killed) can leave its container behind; the next
    try removes any container with its name before it starts, so a retry is never blocked by it.
    """

    def execute(self, context: Any) -> Any:
        if self.container_name:
            try:
                self.cli.remove_container(self.container_name, force=True)
                self.log.info("removed the container %s of an earlier try", self.container_name)
            except Exception as exc:  # docker.errors.NotFound: nothing was left behind
                if getattr(getattr(exc, "response", None), "status_code", None) != 404:
                    raise
        try:
            return super().execute(context)
        except DockerContainerFailedException as exc:
            if re.search(rf"'StatusCode': {EXIT_QUALITY_GATE}\b", str(exc)):
                raise AirflowFailException(
                    "a dbt data test failed (the quality gate): nothing was published; "
                    "fix the data or the model, then run again"
                ) from exc
            raise
