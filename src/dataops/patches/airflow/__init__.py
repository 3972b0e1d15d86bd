"""Patches of Airflow's private internals, for the versions below only (see ../README.md).

`TARGET` is the Airflow release; `TARGETS` every distribution whose private code a patch here
touches, as pinned in requirements.lock. tests/unit/patches/test_versions.py fails when an
installed or locked version differs: re-check each patch named in its message, then move the
pins here.
"""

TARGET = "apache-airflow==3.3.2"
TASK_SDK = "apache-airflow-task-sdk==1.3.2"  # Airflow 3.3.2's task SDK: BaseOperator, supervisor
DOCKER_PROVIDER = "apache-airflow-providers-docker==4.6.1"
TARGETS = (TARGET, TASK_SDK, DOCKER_PROVIDER)
# The patch modules of this folder, each with its own TARGETS and UPGRADE_CHECK.
PATCHES = ("supervisor", "docker_operator", "task_runner")
