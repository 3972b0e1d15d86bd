"""DataOps CI/CD toolkit: containerized Airflow pipelines, dbt gates, migrations, promotion."""

from __future__ import annotations

__version__ = "0.1.0"
