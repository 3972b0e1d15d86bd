"""Imported by each Celery worker at start (Celery's `imports`, see `celery_config`): installs
the task supervisor fix (`dataops.patches.airflow.supervisor`) before the worker forks its
pool."""

from __future__ import annotations

from dataops.patches.airflow.supervisor import install

install()
