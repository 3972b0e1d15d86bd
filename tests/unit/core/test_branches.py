"""Which branch a command acts for, where its build record lives, what only main may do."""

from __future__ import annotations

import pytest

from dataops.core.branches import branch_folder, effective_branch, is_main, require_main
from dataops.errors import DataOpsError, ExitCode


@pytest.mark.parametrize(
    ("ci", "checkout", "acts_for"),
    [
        ("", "main", "main"),
        ("", "feature/x", "feature/x"),
        ("", "HEAD", "HEAD"),  # detached, and no CI job named the branch
        ("", "", ""),  # not a git checkout
        ("main", "HEAD", "main"),  # main's CI job on a detached checkout of main's commit
        ("pr-7", "main", "pr-7"),  # a CI job names its branch whatever the checkout says
    ],
)
def test_the_ci_variable_names_the_branch_else_git_does(
    ci: str, checkout: str, acts_for: str
) -> None:
    assert effective_branch(ci, checkout) == acts_for


def test_main_and_no_checkout_act_as_main_and_nothing_else_does() -> None:
    assert is_main("main") and is_main("")
    assert not any(is_main(b) for b in ("HEAD", "mainline", "Main", "feature/main", "master"))


def test_branch_folders_are_safe_and_never_shared_by_two_branches() -> None:
    assert branch_folder("fix-typo") == "fix-typo"
    names = ["feature/x", "feature-x", "feature x", "../x", ".x", "a" * 200, "x/../../y"]
    folders = [branch_folder(b) for b in names]
    assert len(set(folders)) == len(names)
    for folder in folders:
        assert "/" not in folder and not folder.startswith(".") and len(folder) <= 80


def test_only_main_passes_and_the_refusal_says_what_to_do() -> None:
    require_main("main", "release create --env dev")
    require_main("", "release create --env dev")
    with pytest.raises(DataOpsError) as refused:
        require_main("feature/x", "release create --env dev")
    assert refused.value.exit_code == ExitCode.USAGE
    assert "release create --env dev refused" in refused.value.reason
    assert "'feature/x'" in refused.value.reason and "nothing changed" in refused.value.reason
    assert "dataops ci run" in str(refused.value.instruction)
