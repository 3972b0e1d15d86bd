"""The code task containers run (`dataops-task`): extract from the file drop, load into Postgres.

It needs only pydantic, PyYAML and psycopg, so the task images stay small, and it is the same
code the host's tests run.
"""
