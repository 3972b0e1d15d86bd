"""What DAGs read from the environment the Airflow processes run in (set by `dataops up`).

Only environment variables are read at parse time. The image refs are read when a task is
rendered (in the worker), from the release record inside the DAG bundle version the run was
created on: a run's DAG code and its images are always the same release's.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from dataops.core.config import RuntimeConfig
from dataops.core.promotion import RELEASE_FILE
from dataops.core.release_record import ReleaseRecord


def worker_hostname() -> str:
    """The host name a task instance records (Airflow's [core] hostname_callable): a Celery
    worker's own name when several share one machine (`dataops up` sets DATAOPS_WORKER_NAME),
    else the machine's."""
    import socket

    return os.environ.get("DATAOPS_WORKER_NAME") or socket.getfqdn()


def environment() -> str:
    return os.environ.get("DATAOPS_ENV", "dev")


def runtime_config() -> RuntimeConfig:
    """`DATAOPS_RUNTIME` (the environment's `runtime:` of dataops.yml, as JSON); docker if unset."""
    return _runtime_config(os.environ.get("DATAOPS_RUNTIME"))


@cache
def _runtime_config(raw: str | None) -> RuntimeConfig:  # validated once per value, not per DAG
    return RuntimeConfig.model_validate_json(raw) if raw else RuntimeConfig()


def data_dir() -> str:
    return os.environ.get("DATAOPS_DATA_DIR", "/var/lib/dataops/data")


def registry() -> str:
    """The deployment's own registry (host:port): every image is pulled from it by digest."""
    return os.environ.get("DATAOPS_REGISTRY", "127.0.0.1:5001")


def _bundle_release(path: Path) -> tuple[str, ReleaseRecord]:
    """(release id, record) from a bundle version's `release.json` (the record with its id)."""
    document = json.loads(path.read_text())
    release_id = str(document.pop("id", ""))
    return release_id, ReleaseRecord.parse(document, f"{release_id or path} in {path.parent}")


def release_of(bundle_root: Path) -> tuple[str, ReleaseRecord] | None:
    """(release id, record) of the DAG bundle version at `bundle_root` (a small local file the
    bundle wrote), or None for a working tree (tests parse `dags/` directly)."""
    try:
        return _bundle_release(bundle_root / RELEASE_FILE)
    except (FileNotFoundError, ValueError):
        return None


def image_ref(bundle_root: str, name: str) -> str:
    """`registry/dataops/NAME@sha256:...` of the release whose DAG code this is (a Jinja macro
    in the DAGs, rendered when a task runs): the images come with the DAG code, from the
    `release.json` of the bundle version the run was created on."""
    path = Path(bundle_root) / RELEASE_FILE
    try:
        digest = _bundle_release(path)[1].images[name].digest
    except FileNotFoundError:
        raise RuntimeError(
            f"{bundle_root} is not a release's DAG bundle (no {RELEASE_FILE}): deployments run "
            f"the DAG code of their active release; `dataops release create --env "
            f"{environment()}` makes one"
        ) from None
    except (KeyError, ValueError):
        raise RuntimeError(f"the release in {path} has no image {name!r}") from None
    return f"{registry()}/dataops/{name}@{digest}"
