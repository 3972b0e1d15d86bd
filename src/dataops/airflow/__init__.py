"""The one place that turns neutral pipeline plans into Airflow DAGs and operators."""
