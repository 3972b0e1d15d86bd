"""Every piece of dataops that reaches into Airflow's or dbt's private internals, in one place.

Each sub-package names the versions its patches were written against (`TARGET`, `TARGETS`) and
each patch module says in its docstring which private internal it touches and how to check it
on an upgrade; README.md beside this file lists them all. tests/unit/patches/test_versions.py
fails, naming the patches to re-check, as soon as an installed or locked version differs.

- `dataops.patches.airflow`: runs in Airflow's processes; only `dataops.airflow` imports it.
- `dataops.patches.dbt`: runs in the transform image (the task images carry this file and
  `patches/dbt/`, `dataops.release.images.PACKAGE_PARTS`); `dataops.task` imports it.

Nothing here imports another dataops package, and this file imports nothing: a task image,
which has no Airflow, imports it.
"""
