"""The Celery app configuration of a CeleryExecutor deployment (`[celery] celery_config_options`
names `CELERY_CONFIG`): the provider's own, plus `imports` that a worker loads before it forks
its pool processes, so each one's task supervisor has `dataops.patches.airflow.supervisor`'s
fix."""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": [*DEFAULT_CELERY_CONFIG.get("imports", ()), "dataops.airflow.celery_worker"],
}
