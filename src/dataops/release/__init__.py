"""Releases and what moves them: image builds, migrations, promotion by digest, smoke runs,
pipeline runs in an environment's own Airflow, rollback."""
