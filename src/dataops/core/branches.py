"""Which git branch a command acts for, and what only main may do (pure).

Main owns the shared environments: only a checkout of main makes or activates a release in one
(`release create`, `promote`, `rollback`) or applies dev's migrations (`migrate apply`), and
main's build record (`builds/<env>.json`) is the one its releases are made from. Any other
branch pushes its images (content-addressed, so nothing an environment runs changes) into a
build record of its own, and tests in its own CI scope (`dataops ci run`).
"""

from __future__ import annotations

import hashlib
import re

from dataops.errors import DataOpsError, ExitCode

MAIN_BRANCH = "main"
DETACHED = "HEAD"  # what git names the branch of a detached HEAD
# The variable a CI job sets to the branch its (usually detached) checkout was made from.
CI_BRANCH_VARIABLE = "DATAOPS_CI_BRANCH"


def effective_branch(ci_branch: str, checkout: str) -> str:
    """The branch a command acts for: `ci_branch` ($DATAOPS_CI_BRANCH) when set, else the
    checkout's (git's name; "HEAD" when detached, "" outside a git checkout)."""
    return ci_branch or checkout


def is_main(branch: str) -> bool:
    """Main, or no git checkout at all (a project outside git behaves as main)."""
    return branch in (MAIN_BRANCH, "")


def branch_folder(branch: str) -> str:
    """A folder name for `branch`: the name itself when it is safe as one, else its safe
    characters and a short hash of the full name (`feature/x` and `feature-x` stay apart)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", branch).strip(".-")[:60]
    if slug == branch:
        return slug
    return f"{slug or 'branch'}-{hashlib.sha256(branch.encode()).hexdigest()[:8]}"


def describe(branch: str) -> str:
    return "a detached HEAD" if branch == DETACHED else f"branch {branch!r}"


def require_main(branch: str, what: str) -> None:
    """Refuse `what` (e.g. "release create --env dev") unless the command acts for main."""
    if is_main(branch):
        return
    detached = (
        f"; a CI job on a detached checkout sets {CI_BRANCH_VARIABLE} to its branch"
        if branch == DETACHED
        else ""
    )
    raise DataOpsError(
        f"{what} refused: this checkout is on {describe(branch)}, and only {MAIN_BRANCH} makes "
        "or activates a release in a shared environment, or migrates one; nothing changed",
        f"push the branch and merge it into {MAIN_BRANCH}, whose CI releases it; test the branch "
        "with `dataops ci run` (it builds into the branch's own build record and tests in its own "
        f"ci_<branch> schema), or check out {MAIN_BRANCH} to act for it{detached}",
        exit_code=ExitCode.USAGE,
    )
