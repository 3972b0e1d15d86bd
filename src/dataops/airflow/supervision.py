"""Moved to `dataops.patches.airflow.supervisor` (the patches of Airflow's private internals, in
one labelled place); this name stays because the comments of the airflow.cfg that
`dataops.local.deployment` writes point here. New code imports the patch module."""

from __future__ import annotations

from dataops.patches.airflow.supervisor import EXIT_POLL_SECONDS, install

__all__ = ["EXIT_POLL_SECONDS", "install"]
