"""Imported by each Celery worker at start (Celery's `imports`, see `celery_config`): installs
the task supervisor fix before the worker forks its pool."""

from __future__ import annotations

from dataops.airflow.supervision import install

install()
