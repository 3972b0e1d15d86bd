"""Moved to `dataops.patches.dbt.jinja_cache` (the patches of dbt's private internals, in one
labelled place); this name stays because images/transform/Dockerfile and the integration tests
point here. New code imports the patch module."""

from __future__ import annotations

from dataops.patches.dbt.jinja_cache import bake, cache_path, install, key, sources, uninstall

__all__ = ["bake", "cache_path", "install", "key", "sources", "uninstall"]
