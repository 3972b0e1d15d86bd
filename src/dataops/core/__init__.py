"""Pure logic: config models, validation, planning. Imports no Airflow, Docker, DB driver or CLI."""
