"""What DAGs read from the environment the Airflow processes run in (set by `dataops up`).

Only environment variables are read at parse time; the image refs are read when a task is
rendered (in the worker) from the environment's active release, so promoting or rolling back a
release changes the next run with no DAG file edited and no I/O while Airflow parses DAGs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dataops.core.config import RuntimeConfig
from dataops.core.promotion import active_release_filename


def environment() -> str:
    return os.environ.get("DATAOPS_ENV", "dev")


def runtime_config() -> RuntimeConfig:
    """`DATAOPS_RUNTIME` (the environment's `runtime:` of dataops.yml, as JSON); docker if unset."""
    raw = os.environ.get("DATAOPS_RUNTIME")
    return RuntimeConfig.model_validate_json(raw) if raw else RuntimeConfig()


def data_dir() -> str:
    return os.environ.get("DATAOPS_DATA_DIR", "/var/lib/dataops/data")


def image_ref(name: str) -> str:
    """`registry/dataops/NAME@sha256:...` of the environment's active release (a Jinja macro in
    the DAGs)."""
    path = Path(
        os.environ.get(
            "DATAOPS_ACTIVE_FILE",
            f"/var/lib/dataops/releases/{active_release_filename(environment())}",
        )
    )
    try:
        images = json.loads(path.read_text())["images"]
        return str(images[name]["ref"])
    except (FileNotFoundError, KeyError, ValueError):
        raise RuntimeError(
            f"no image {name!r} in the active release of {environment()!r} ({path}): "
            f"run `dataops release create --env {environment()}` after building the images"
        ) from None
