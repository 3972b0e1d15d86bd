"""DockerOperator that never trips over the container of an earlier, killed try."""

from __future__ import annotations

from typing import Any

from airflow.providers.docker.operators.docker import DockerOperator


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
        return super().execute(context)
