"""Airflow DAG of dags/pipelines/customers.yml (the spec is the source of truth; keep this thin)."""

from dataops.airflow.factory import dag_for_stub

dag = dag_for_stub(__file__)
