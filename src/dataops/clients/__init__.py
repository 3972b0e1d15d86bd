"""Clients of outside systems: OCI registries, Airflow's REST API, the warehouse, dbt, git, Docker.

Each takes what it needs as arguments (URLs, credentials, paths); none reads dataops.yml."""
