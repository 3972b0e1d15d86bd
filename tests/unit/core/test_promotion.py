"""Promotion rules: gates, the active release, rollback targets and release ids."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from dataops.core.config import GatesConfig
from dataops.core.promotion import (
    HistoryEntry,
    activated_from_main,
    activations,
    active_release,
    evaluate_gates,
    failed_gates,
    match_release,
    require_source,
    rollback_target,
    short,
)
from dataops.errors import DataOpsError, ExitCode

REL_A = "sha256:" + "3f9a0c1be27d4e58" * 4
REL_B = "sha256:" + "a71c2e9d04b6f583" * 4
REL_C = "sha256:" + "a71c0b5e88d2c914" * 4
REL_D = "sha256:" + "0d4e6f8a1b3c5e79" * 4
_IDS = itertools.count(1)


def entry(
    release_id: str,
    action: str,
    *,
    ok: bool = True,
    detail: dict[str, Any] | None = None,
    actor: str = "ci-bot",
    at: str = "2025-03-04T09:15:00+00:00",
) -> HistoryEntry:
    return HistoryEntry(
        id=next(_IDS),
        release_id=release_id,
        action=action,
        actor=actor,
        at=at,
        ok=ok,
        detail=detail or {},
    )


def check(name: str, *, ok: bool, detail: str | None = None) -> HistoryEntry:
    payload: dict[str, Any] = {"check": name}
    if detail is not None:
        payload["detail"] = detail
    return entry(REL_A, "check", ok=ok, detail=payload)


def test_release_ids_are_well_formed() -> None:
    for release in (REL_A, REL_B, REL_C, REL_D):
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", release)


# -- evaluate_gates ----------------------------------------------------------------------------


def test_was_active_gate_passes_after_an_activation_in_the_source() -> None:
    gates = GatesConfig(promote_from="qa")
    history = [entry(REL_A, "promoted", actor="jenkins")]
    assert evaluate_gates(gates, "qa", history, approve=False, approver="") == {
        "was active in qa": "passed"
    }


@pytest.mark.parametrize(
    "history",
    [
        [],
        [entry(REL_A, "created", ok=False)],
        [entry(REL_A, "promote-failed"), entry(REL_A, "refused")],
        [check("smoke", ok=True)],
    ],
    ids=["empty", "failed-create", "non-activating", "only-a-check"],
)
def test_was_active_gate_fails_without_a_successful_activation(
    history: list[HistoryEntry],
) -> None:
    gates = GatesConfig(promote_from="preprod")
    results = evaluate_gates(gates, "preprod", history, approve=False, approver="")
    assert results == {"was active in preprod": "failed: never active there"}


@pytest.mark.parametrize(
    ("checks", "outcome"),
    [
        ([], "failed: never ran"),
        ([check("other", ok=True)], "failed: never ran"),
        ([check("smoke", ok=False, detail="3 of 12 queries returned rows")],
         "failed: 3 of 12 queries returned rows"),
        ([check("smoke", ok=False)], "failed: failed"),
        ([check("smoke", ok=False, detail="timeout"), check("smoke", ok=True)], "passed"),
        ([check("smoke", ok=True), check("smoke", ok=False, detail="row count dropped 40%")],
         "failed: row count dropped 40%"),
        ([check("smoke", ok=True), check("other", ok=False, detail="x")], "passed"),
    ],
    ids=[
        "never-ran",
        "only-another-check",
        "latest-failed-with-detail",
        "latest-failed-no-detail",
        "pass-after-failure",
        "failure-after-pass",
        "another-check-failed",
    ],
)  # fmt: skip
def test_the_latest_result_of_each_required_check_counts(
    checks: list[HistoryEntry], outcome: str
) -> None:
    gates = GatesConfig(promote_from="qa", require_checks=["smoke"])
    history = [entry(REL_A, "promoted"), *checks]
    results = evaluate_gates(gates, "qa", history, approve=False, approver="")
    assert results["check smoke in qa"] == outcome


@pytest.mark.parametrize(
    ("approve", "approver", "outcome"),
    [
        (False, "maria.k", "failed: this environment needs --approve"),
        (True, "tom.r", "failed: 'tom.r' may not approve (approvers: maria.k, j.okafor)"),
        (True, "maria.k", "passed: approved by maria.k"),
        (True, "j.okafor", "passed: approved by j.okafor"),
    ],
)
def test_approval_gate(approve: bool, approver: str, outcome: str) -> None:
    gates = GatesConfig(
        promote_from="preprod", require_approval=True, approvers=["maria.k", "j.okafor"]
    )
    history = [entry(REL_A, "promoted")]
    results = evaluate_gates(gates, "preprod", history, approve=approve, approver=approver)
    assert results["approval"] == outcome


def test_no_approval_key_when_approval_is_not_required() -> None:
    gates = GatesConfig(promote_from="qa", require_checks=["smoke"])
    history = [entry(REL_A, "promoted"), check("smoke", ok=True)]
    results = evaluate_gates(gates, "qa", history, approve=True, approver="maria.k")
    assert "approval" not in results
    assert failed_gates(results) == {}


def test_gates_come_in_a_stable_order() -> None:
    gates = GatesConfig(
        promote_from="staging",
        require_checks=["smoke", "freshness", "ci"],
        require_approval=True,
        approvers=["maria.k"],
    )
    history = [
        check("ci", ok=True),
        entry(REL_A, "promoted"),
        check("freshness", ok=True),
        check("smoke", ok=True),
    ]
    results = evaluate_gates(gates, "staging", history, approve=True, approver="maria.k")
    assert list(results) == [
        "was active in staging",
        "check smoke in staging",
        "check freshness in staging",
        "check ci in staging",
        "approval",
    ]
    assert failed_gates(results) == {}


def test_failed_gates_keeps_only_the_failures() -> None:
    gates = GatesConfig(
        promote_from="staging",
        require_checks=["smoke", "ci"],
        require_approval=True,
        approvers=["maria.k"],
    )
    history = [
        entry(REL_A, "promoted"),
        check("smoke", ok=False, detail="orders: 0 rows"),
        check("ci", ok=True),
    ]
    results = evaluate_gates(gates, "staging", history, approve=False, approver="maria.k")
    assert failed_gates(results) == {
        "check smoke in staging": "failed: orders: 0 rows",
        "approval": "failed: this environment needs --approve",
    }


def test_failed_gates_of_all_passed_or_nothing_is_empty() -> None:
    assert failed_gates({}) == {}
    assert failed_gates({"a": "passed", "approval": "passed: approved by maria.k"}) == {}
    assert failed_gates({"a": "failed: never ran"}) == {"a": "failed: never ran"}


# -- active release, activations ---------------------------------------------------------------


def test_activations_keep_only_successful_activating_actions_in_order() -> None:
    history = [
        entry(REL_A, "created"),
        entry(REL_A, "check", detail={"check": "smoke"}),
        entry(REL_B, "promoted"),
        entry(REL_C, "promoted", ok=False),
        entry(REL_C, "refused"),
        entry(REL_D, "promote-failed"),
        entry(REL_A, "rolled-back", actor="maria.k"),
        entry(REL_D, "check", detail={"check": "ci"}),
    ]
    assert activations(history) == [REL_A, REL_B, REL_A]
    assert active_release(history) == REL_A


@pytest.mark.parametrize(
    "history",
    [[], [entry(REL_A, "created", ok=False)], [entry(REL_B, "check"), entry(REL_B, "refused")]],
)
def test_no_active_release_without_a_successful_activation(history: list[HistoryEntry]) -> None:
    assert activations(history) == []
    assert active_release(history) is None


# -- rollback_target ---------------------------------------------------------------------------


def test_rollback_without_any_activation_is_a_usage_error() -> None:
    history = [entry(REL_A, "created", ok=False), entry(REL_A, "refused")]
    with pytest.raises(DataOpsError, match="preprod has no active release") as caught:
        rollback_target("preprod", history, None)
    assert caught.value.exit_code is ExitCode.USAGE


def test_rollback_when_only_one_release_ever_ran_is_a_usage_error() -> None:
    history = [entry(REL_A, "created"), entry(REL_A, "promoted"), entry(REL_B, "promote-failed")]
    with pytest.raises(DataOpsError, match=f"never run another release than {REL_A[7:19]}") as e:
        rollback_target("qa", history, None)
    assert e.value.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(
    ("ran", "expected"),
    [
        ([REL_A, REL_B], REL_A),
        ([REL_A, REL_B, REL_A], REL_B),
        ([REL_A, REL_B, REL_C, REL_C], REL_B),
        ([REL_D, REL_A, REL_B, REL_A, REL_A], REL_B),
    ],
)
def test_rollback_defaults_to_the_last_different_release(ran: list[str], expected: str) -> None:
    history = [entry(r, "promoted") for r in ran]
    history.insert(1, entry(REL_C, "promoted", ok=False))
    assert rollback_target("qa", history, None) == expected


def test_rollback_to_a_wanted_release_that_never_ran_is_a_usage_error() -> None:
    history = [entry(REL_A, "promoted"), entry(REL_B, "promoted"), entry(REL_C, "refused")]
    with pytest.raises(DataOpsError, match=f"release {REL_C[7:19]} was never active in qa") as e:
        rollback_target("qa", history, REL_C)
    assert e.value.exit_code is ExitCode.USAGE
    assert e.value.instruction is not None
    assert "dataops release list --env qa" in e.value.instruction


def test_rollback_to_a_wanted_release_that_ran() -> None:
    history = [entry(REL_A, "created"), entry(REL_B, "promoted"), entry(REL_C, "promoted")]
    assert rollback_target("preprod", history, REL_A) == REL_A
    assert rollback_target("preprod", history, REL_B) == REL_B


# -- match_release -----------------------------------------------------------------------------

KNOWN = {REL_A, REL_B, REL_C, REL_D}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (REL_B, REL_B),
        (REL_B.removeprefix("sha256:"), REL_B),
        ("3f9a", REL_A),
        ("sha256:3f9a0c", REL_A),
        ("a71c2", REL_B),
        ("sha256:a71c0", REL_C),
        ("0", REL_D),
    ],
)
def test_match_release_finds_the_one_release(ref: str, expected: str) -> None:
    assert match_release(ref, KNOWN) == expected


@pytest.mark.parametrize(
    ("ref", "count"),
    [("a71c", 2), ("sha256:a71", 2), ("", 4), ("ffff", 0), ("sha256:" + "9" * 64, 0)],
)
def test_match_release_ambiguous_or_unknown_is_a_usage_error(ref: str, count: int) -> None:
    with pytest.raises(DataOpsError, match=f"matches {count} known releases") as caught:
        match_release(ref, KNOWN)
    assert caught.value.exit_code is ExitCode.USAGE
    assert repr(ref) in caught.value.reason


# -- short, require_source ----------------------------------------------------


@pytest.mark.parametrize(
    ("release_id", "expected"),
    [(REL_A, "3f9a0c1be27d"), (REL_B.removeprefix("sha256:"), "a71c2e9d04b6"), ("abc", "abc")],
)
def test_short(release_id: str, expected: str) -> None:
    assert short(release_id) == expected


def test_require_source_returns_promote_from() -> None:
    assert require_source(GatesConfig(promote_from="qa"), "preprod") == "qa"


def test_require_source_without_promote_from_is_a_usage_error() -> None:
    with pytest.raises(DataOpsError, match="preprod has no promote_from") as caught:
        require_source(GatesConfig(), "preprod")
    assert caught.value.exit_code is ExitCode.USAGE


def test_a_rollback_needs_the_same_approval_as_a_promotion() -> None:
    """approval_gate is what both `promote` and `rollback` ask; no approval, no entry."""
    from dataops.core.promotion import approval_gate

    open_gates = GatesConfig(promote_from="dev")
    assert approval_gate(open_gates, approve=False, approver="anyone") == {}
    guarded = GatesConfig(promote_from="uat", require_approval=True, approvers=["li.wei"])
    assert approval_gate(guarded, False, "li.wei") == {
        "approval": "failed: this environment needs --approve"
    }
    assert approval_gate(guarded, True, "li.wei") == {"approval": "passed: approved by li.wei"}
    assert failed_gates(approval_gate(guarded, True, "eve")) == {
        "approval": "failed: 'eve' may not approve (approvers: li.wei)"
    }


@pytest.mark.parametrize(
    ("history", "offered"),
    [
        ([entry(REL_A, "created", detail={"env": "dev", "branch": "main"})], True),
        ([entry(REL_A, "created", detail={"env": "dev"})], True),  # before branches were kept
        ([entry(REL_A, "created", detail={"env": "dev", "branch": None})], True),  # no git
        ([entry(REL_A, "created", detail={"env": "dev", "branch": "feature/x"})], False),
        (
            [
                entry(REL_A, "created", detail={"branch": "main"}),
                entry(REL_A, "rolled-back", detail={"branch": "feature/x"}),
            ],
            False,  # the last activation counts
        ),
        (
            [
                entry(REL_A, "promoted", detail={"branch": "main"}),
                entry(REL_A, "created", ok=False, detail={"branch": "feature/x"}),
                check("ci", ok=True),
            ],
            True,  # a failed row activated nothing
        ),
    ],
)
def test_only_a_release_activated_from_main_is_offered_downstream(
    history: list[HistoryEntry], offered: bool
) -> None:
    assert activated_from_main(history) is offered
