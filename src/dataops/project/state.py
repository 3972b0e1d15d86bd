"""Where the local platform keeps its state: one directory (`.dataops/` by default)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dataops.core.branches import MAIN_BRANCH, branch_folder, is_main
from dataops.core.config import LoadedConfig
from dataops.core.promotion import active_release_filename


@dataclass(frozen=True)
class StateDir:
    """Every path the platform writes: data, logs, pid files, generated secrets."""

    root: Path

    @classmethod
    def of(cls, loaded: LoadedConfig) -> StateDir:
        configured = Path(os.environ.get("DATAOPS_STATE_DIR") or loaded.config.platform.state_dir)
        return cls((loaded.root / configured).resolve())

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.env"

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def registries(self) -> Path:
        return self.root / "registries"

    def airflow_home(self, env: str) -> Path:
        """AIRFLOW_HOME of ENV's deployment: airflow.cfg, its logs, its DAG bundle versions."""
        return self.root / "airflow" / env

    def data(self, env: str) -> Path:
        """ENV's task containers' /data: incoming/ (the file drop) and staged/ (extracted
        batches). One folder per environment: no environment's tasks see another's files."""
        return self.root / "data" / env

    def task_secrets(self, env: str) -> Path:
        """Where ENV's deployment writes each task container's credentials file (0700), mounted
        read-only into the container and removed when the task ends."""
        return self.root / "run" / "task-secrets" / env

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def manifests(self) -> Path:
        """dbt manifests read out of transform images, cached by image digest."""
        return self.root / "manifests"

    @property
    def dbt_logs(self) -> Path:
        return self.logs / "dbt"

    def builds(self, env: str, branch: str = MAIN_BRANCH) -> Path:
        """`branch`'s last `images build --push --env ENV`: every image's ref by digest.
        Main's is `builds/<env>.json` (what its releases are made from); any other branch has
        its own under `builds/branches/<branch>/`, so a branch build never changes main's."""
        if is_main(branch):
            return self.root / "builds" / f"{env}.json"
        return self.root / "builds" / "branches" / branch_folder(branch) / f"{env}.json"

    def active_release(self, env: str) -> Path:
        """The release ENV runs: its image refs, written on every activation."""
        return self.root / "releases" / active_release_filename(env)

    def release_sources(self, release_id: str) -> Path:
        """A release's DAG code and migrations, extracted from its artifact (read-only use)."""
        return self.root / "releases" / "sources" / release_id.replace(":", "-")

    def build_context(self, image: str) -> Path:
        return self.root / "build" / image

    @property
    def ci_cache(self) -> Path:
        """One file per CI stage pass, named by the stage's key (`dataops ci run` skips)."""
        return self.root / "ci" / "cache"

    def ci_run(self, run_id: str) -> Path:
        """Logs, result.json, junit.xml and summary.md of one `dataops ci run`."""
        return self.root / "ci" / "runs" / run_id

    def ci_work(self, schema: str) -> Path:
        """Slim CI's dbt state and target folders for one CI schema."""
        return self.root / "ci" / schema

    def dbt_docs(self, env: str) -> Path:
        return self.root / "dbt-docs" / env

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def ensure(self, envs: tuple[str, ...] = ()) -> None:
        for folder in (self.root, self.logs, self.run, self.cache):
            folder.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for env in envs:
            (self.data(env) / "incoming").mkdir(parents=True, exist_ok=True)
            # Task containers run as uid 10001; they write extracted batches here.
            staged = self.data(env) / "staged"
            staged.mkdir(parents=True, exist_ok=True)
            staged.chmod(0o1777)
            secrets = self.task_secrets(env)
            secrets.mkdir(parents=True, exist_ok=True)
            secrets.chmod(0o711)


def atomic_write(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write `text` to `path` via a temporary file and rename; False when it was already so."""
    try:
        if path.read_text() == text and (path.stat().st_mode & 0o777) == mode:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
