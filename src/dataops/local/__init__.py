"""The local platform `dataops up` runs: PostgreSQL, the Docker engine, the registries, Airflow,
the base image, process supervision and the host doctor."""
