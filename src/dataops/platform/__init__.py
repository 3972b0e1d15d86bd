"""Adapters for the local platform: real processes (PostgreSQL, Docker, registries, Airflow)."""
