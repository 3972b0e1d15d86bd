"""git, read-only: the commit and branch of a checkout, and whether a folder is a bare repo."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def head_commit(root: Path) -> str:
    """The full commit id of HEAD, or "" outside a repository."""
    return _git(root, "rev-parse", "HEAD")


def current_branch(root: Path) -> str:
    """The checked-out branch ("HEAD" when detached), or "" outside a repository. A branch
    with no commit yet is named too."""
    branch = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
    if branch:
        return branch
    return "HEAD" if _git(root, "rev-parse", "--git-dir") else ""


def resolve(root: Path, ref: str) -> str:
    """The commit `ref` (or `origin/<ref>`) names, or "" when neither resolves."""
    for candidate in (ref, f"origin/{ref}"):
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        if commit:
            return commit
    return ""


def is_bare(repo: Path) -> bool:
    return _git(repo, "rev-parse", "--is-bare-repository") == "true"


def dirty_paths(root: Path, *paths: str) -> list[str]:
    """Files under `paths` (all when none) that differ from HEAD or are untracked."""
    argv = ["git", "-C", str(root), "status", "--porcelain", "-z", "--untracked-files=all"]
    done = subprocess.run(
        [*argv, "--", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return []
    # -z: "XY path\0" entries (a rename adds its old path as one more entry, skipped here)
    entries = done.stdout.split("\0")
    found, skip = [], False
    for entry in entries:
        if skip or len(entry) < 4:
            skip = False
            continue
        found.append(entry[3:])
        skip = entry[0] in "RC"
    return found
