"""Quality gates: lint (sqlfluff, hadolint, spec schemas)."""
