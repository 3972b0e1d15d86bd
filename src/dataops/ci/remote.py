"""A bare git repository as a CI remote: every push runs `dataops ci run` for the pushed commit.

`install` writes a post-receive hook. The hook only queues each pushed commit (a file in
`<repo>/dataops-ci/queue/`) and starts a worker in the background; the push returns at once.
One worker at a time (an flock) takes the queue in push order: it clones the repository into
a temporary folder, checks the commit out (never the developer's working tree), runs
`dataops ci run` there with the pushed commit's own code, and records the result per commit in
`<repo>/dataops-ci/results/<commit>.json` with its log. Pushes that arrive while a run is going
wait in the queue instead of running on top of it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataops.clients import git
from dataops.errors import DataOpsError, ExitCode
from dataops.project.state import atomic_write

ZERO = "0" * 40
HOOK = """#!/bin/sh
# Installed by `dataops ci install-hook`: queue each pushed commit for CI, return at once.
exec {python} -m dataops.cli.main ci enqueue --repo "{repo}"
"""


def _folder(repo: Path) -> Path:
    return repo / "dataops-ci"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def install(repo: Path, state_dir: Path, python: str = sys.executable) -> Path:
    repo = repo.resolve()
    if not git.is_bare(repo):
        raise DataOpsError(
            f"{repo} is not a bare git repository",
            f"make one with: git init --bare {repo}",
            exit_code=ExitCode.USAGE,
        )
    folder = _folder(repo)
    for sub in ("queue", "results", "logs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    atomic_write(
        folder / "config.json",
        json.dumps({"state_dir": str(state_dir.resolve()), "python": python}, indent=2) + "\n",
    )
    hook = repo / "hooks" / "post-receive"
    atomic_write(hook, HOOK.format(python=python, repo=repo), mode=0o755)
    return hook


def enqueue(repo: Path, updates: list[tuple[str, str, str]]) -> list[str]:
    """Queue (old, new, ref) updates from a push; start a worker; return the queued commits."""
    folder = _folder(repo)
    config = json.loads((folder / "config.json").read_text())
    queued = []
    for old, new, ref in updates:
        if new == ZERO or not ref.startswith("refs/heads/"):
            continue  # a deleted branch or a tag: nothing to test
        entry = {"commit": new, "old": old, "ref": ref, "queued_at": _now()}
        name = f"{time.time_ns()}-{new[:12]}.json"
        atomic_write(folder / "queue" / name, json.dumps(entry) + "\n")
        _record(folder, new, {**entry, "status": "queued"})
        queued.append(new)
    if queued:
        with open(folder / "logs" / "worker.log", "a") as log:  # the worker keeps its own copy
            subprocess.Popen(
                [config["python"], "-m", "dataops.cli.main", "ci", "worker", "--repo", str(repo)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            )
    return queued


def _record(folder: Path, commit: str, data: dict[str, Any]) -> None:
    path = folder / "results" / f"{commit}.json"
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        current = {}
    atomic_write(path, json.dumps({**current, **data}, indent=2) + "\n")


def work(repo: Path) -> int:
    """Run every queued commit, oldest first, one at a time; returns how many ran."""
    folder = _folder(repo)
    config = json.loads((folder / "config.json").read_text())
    ran = 0
    while True:
        with open(folder / "worker.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return ran  # another worker has the queue; it re-checks before it stops
            while entries := sorted((folder / "queue").glob("*.json")):
                _run_one(repo, folder, config, entries[0])
                entries[0].unlink()
                ran += 1
        if not any((folder / "queue").glob("*.json")):
            return ran  # nothing arrived between the last look and the unlock


def _run_one(repo: Path, folder: Path, config: dict[str, str], entry_path: Path) -> None:
    entry = json.loads(entry_path.read_text())
    commit, ref = entry["commit"], entry["ref"]
    branch = ref.removeprefix("refs/heads/")
    log_path = folder / "logs" / f"{commit}.log"
    started = time.monotonic()
    _record(folder, commit, {"status": "running", "started_at": _now(), "log": str(log_path)})
    workdir = Path(tempfile.mkdtemp(prefix="dataops-ci-"))
    checkout = workdir / "checkout"
    status = "failed"
    try:
        with log_path.open("w") as log:
            log.write(f"dataops ci: {commit} ({branch}) in a clean checkout {checkout}\n")
            log.flush()
            steps = [
                ["git", "clone", "--quiet", "--no-checkout", str(repo), str(checkout)],
                ["git", "-C", str(checkout), "checkout", "--quiet", commit],
            ]
            ok = all(
                subprocess.run(step, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
                == 0
                for step in steps
            )
            if ok:
                base = entry["old"] if entry["old"] != ZERO else f"{commit}~1"
                env = {
                    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
                    "PYTHONPATH": str(checkout / "src"),
                    "DATAOPS_STATE_DIR": config["state_dir"],
                    "DATAOPS_CI_BRANCH": branch,
                    "DATAOPS_CONFIG": str(checkout / "dataops.yml"),
                }
                done = subprocess.run(
                    [config["python"], "-m", "dataops.cli.main", "ci", "run", "--base", base],
                    cwd=checkout,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
                status = "passed" if done.returncode == 0 else "failed"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        _record(
            folder,
            commit,
            {
                "status": status,
                "finished_at": _now(),
                "seconds": round(time.monotonic() - started, 1),
            },
        )


def results(repo: Path) -> list[dict[str, Any]]:
    folder = _folder(repo)
    if not (folder / "config.json").exists():
        raise DataOpsError(
            f"{repo} has no dataops CI hook",
            f"dataops ci install-hook {repo}",
            exit_code=ExitCode.USAGE,
        )
    found = []
    for path in (folder / "results").glob("*.json"):
        try:
            found.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return sorted(found, key=lambda r: r.get("queued_at", ""))
