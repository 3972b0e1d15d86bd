"""The one DAG bundle of a deployment: the DAG code of its environment's active release.

A release carries its `dags/` folder as a layer of its OCI artifact (see
`dataops.release.releases`), so the release id (the artifact's manifest digest) is the bundle
version: Airflow records it on every DAG version and DAG run, and the UI shows which release a
run ran. The dag-processor follows the active release (`DATAOPS_ACTIVE_FILE`, written on every
activation: release create, promote, rollback); a worker asked for a version materializes
exactly that one. Each version is fetched by digest from the environment's own registry,
verified, and extracted once (atomically) under the bundle's versions folder. The working tree
is never read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from airflow.dag_processing.bundles.base import BaseDagBundle, BundleVersion

from dataops.clients.oci import RegistryClient
from dataops.core import archive
from dataops.core.promotion import DAGS_MEDIA, RELEASE_FILE, RELEASE_MEDIA, RELEASES_REPO


def active_release_id(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text())["release"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def registry_client(env: str) -> RegistryClient:
    """The deployment's own registry, with its own credentials (AIRFLOW_CONN_REGISTRY_<ENV>)."""
    url = os.environ.get("DATAOPS_REGISTRY_URL", "http://127.0.0.1:5001")
    auth = None
    uri = os.environ.get(f"AIRFLOW_CONN_REGISTRY_{env.upper()}")
    if uri:
        parts = urlsplit(uri)
        auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    return RegistryClient(url, auth, name=f"{env} ({url})")


class ReleaseDagBundle(BaseDagBundle):
    """DAG code by release id, from the environment's registry."""

    supports_versioning = True

    def __init__(self, *, active_file: str | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.env = os.environ.get("DATAOPS_ENV", "dev")
        configured = active_file or os.environ.get("DATAOPS_ACTIVE_FILE")
        if not configured and not self.version:
            raise RuntimeError(
                "DATAOPS_ACTIVE_FILE is not set: the dag-processor follows the active release "
                "file `dataops up` names (a worker, asked for a version, needs none)"
            )
        # A worker (a remote Celery worker, a pod) gets its version from the task and fetches
        # it by digest from the registry: it needs no file of the deployment's host.
        self.active_file = Path(configured or "/nonexistent")
        # What `path` serves now: the requested version, or the active release last refreshed.
        self._current: str | None = self.version

    def folder(self, release_id: str) -> Path:
        # Exactly Airflow's own path for a version (its stale-version cleanup removes it).
        return self.versions_dir / release_id

    @property
    def path(self) -> Path:
        if self.version:  # a worker: exactly the version its task's run was created on
            return self.folder(self.version)
        # The dag-processor: one stable path (Airflow keeps file paths across refreshes, as a
        # git bundle's do) whose link is swapped to the active release in one rename.
        return self.base_dir / "current"

    def get_current_version(self) -> BundleVersion | None:
        return BundleVersion(self._current) if self._current else None

    def materialize(self, release_id: str) -> Path:
        """The release's DAG folder, fetched by digest and extracted once."""
        dest = self.folder(release_id)
        if dest.exists():
            return dest
        with registry_client(self.env) as registry:
            dags = registry.artifact_layer(RELEASES_REPO, release_id, DAGS_MEDIA)
            record = registry.artifact_layer(RELEASES_REPO, release_id, RELEASE_MEDIA)
        staging = dest.with_name(dest.name + ".src")
        archive.unpack(dags, staging)
        # The record (verified by digest above) with the release id it belongs to.
        document = {"id": release_id, **json.loads(record)}
        (staging / RELEASE_FILE).write_text(json.dumps(document, indent=2) + "\n")
        try:
            os.rename(staging, dest)
        except OSError:
            if not dest.exists():
                raise
        return dest

    def initialize(self) -> None:
        with self.lock():
            if self.version:
                self.materialize(self.version)
            else:
                self._refresh()
        super().initialize()

    def refresh(self) -> None:
        if self.version:  # a pinned version never changes
            return
        with self.lock():
            self._refresh()

    def _refresh(self) -> None:
        wanted = active_release_id(self.active_file)
        if wanted is None:
            target = self.base_dir / "no-active-release"
            target.mkdir(parents=True, exist_ok=True)
        else:
            target = self.materialize(wanted)
        link = self.base_dir / "current"
        try:
            current = os.readlink(link)
        except OSError:
            current = None
        if current != str(target):
            scratch = self.base_dir / ".current.new"
            scratch.unlink(missing_ok=True)
            os.symlink(target, scratch)
            os.replace(scratch, link)
        self._current = wanted
