"""Patches of dbt's private internals, for the versions below only (see ../README.md).

Runs in the transform image (its dbt comes from requirements.lock, as the host's does), so this
folder imports neither Airflow nor any dataops package. `TARGET` is the dbt-core release;
`TARGETS` every distribution whose private code a patch here touches, as pinned in
requirements.lock. tests/unit/patches/test_versions.py fails when an installed or locked version
differs: re-check each patch named in its message, then move the pins here.
"""

TARGET = "dbt-core==1.11.16"
DBT_COMMON = "dbt-common==1.39.0"  # MacroFuzzEnvironment, get_environment, MACRO_DEBUGGING
JINJA2 = "jinja2==3.1.6"  # Environment.compile's signature
MASHUMARO = "mashumaro==3.14"  # the msgpack form of the baked Manifest
TARGETS = (TARGET, DBT_COMMON, JINJA2, MASHUMARO)
# The patch modules of this folder, each with its own TARGETS and UPGRADE_CHECK.
PATCHES = ("jinja_cache", "manifest")
