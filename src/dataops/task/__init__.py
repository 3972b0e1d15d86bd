"""The code task containers run (`dataops-task`): extract from the file drop, load into Postgres,
and the dbt step (build and test in audit schemas, publish what passed).

It needs only pydantic, PyYAML and psycopg (plus dbt in the transform image), so the task images
stay small, and it is the same code the host's tests run.
"""
