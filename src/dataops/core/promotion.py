"""Promotion rules: the gates a release passes before it enters an environment, which release
an environment runs, and which one a rollback returns to. Pure: the history comes in as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dataops.core.branches import is_main
from dataops.core.config import GatesConfig
from dataops.core.release_record import ReleaseRecord
from dataops.errors import DataOpsError, ExitCode

# A release is an OCI artifact in `dataops/releases` of each registry: its record (JSON) and
# its sources as layers: the DAG bundle (dags/) the deployments run and the migrations its
# environments apply. The record names their digests, so the release id (the artifact's
# manifest digest) covers them, and promotion copies them by digest with the record.
RELEASES_REPO = "dataops/releases"
RELEASE_MEDIA = "application/vnd.dataops.release.v1+json"
DAGS_MEDIA = "application/vnd.dataops.dags.v1.tar+gzip"
MIGRATIONS_MEDIA = "application/vnd.dataops.migrations.v1.tar+gzip"
RELEASE_FILE = "release.json"  # the record, next to the DAG files of a bundle version

# History actions after which the release is the one the environment runs.
ACTIVATING = ("created", "promoted", "rolled-back")
# Written into an environment's history when the one it is promoted from activates or checks
# a release: what that environment would receive (its Releases page diffs it with its own).
CANDIDATE = "candidate"
# The parts of a release record a candidate row carries (no DAG code: that stays upstream).
CANDIDATE_FIELDS = ("git_commit", "dbt_manifest_sha256", "migration_version", "migration_checksums")
PASSED = "passed"
# The append-only release history of one warehouse. `dataops up` creates it as the platform's
# admin role (not by a migration, so a refused promotion into a never-migrated warehouse is
# recorded too); the environments' roles may only read and append (local/postgres.py).
RELEASE_HISTORY_DDL = """
create schema if not exists dataops;
create table if not exists dataops.release_history (
    id bigserial primary key,
    release_id text not null,
    action text not null,
    actor text not null,
    at timestamptz not null default clock_timestamp(),
    ok boolean not null,
    detail jsonb not null default '{}'
);
create or replace function dataops.release_history_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'dataops.release_history is append-only (% refused)', tg_op;
end;
$$;
create or replace trigger release_history_append_only
    before update or delete or truncate on dataops.release_history
    for each statement execute function dataops.release_history_append_only()
"""


@dataclass(frozen=True)
class HistoryEntry:
    """One row of an environment's append-only release history."""

    id: int
    release_id: str
    action: str
    actor: str
    at: str
    ok: bool
    detail: dict[str, Any]


def active_release_filename(env: str) -> str:
    """The file that names the release `env` runs (under the state dir's releases/); the
    deployment's DAGs read it, `dataops release create|promote|rollback` write it."""
    return f"active-{env}.json"


def short(release_id: str) -> str:
    return release_id.removeprefix("sha256:")[:12]


def release_tag(release_id: str) -> str:
    """The tag every DAG of a release carries (`release:<12 hex>`): set by the DAG factory,
    checked when an activation waits for a deployment."""
    return f"release:{short(release_id)}"


def dag_tags(dag: dict[str, Any]) -> set[str]:
    """The tag names of a DAG as Airflow's API shows it."""
    return {t["name"] if isinstance(t, dict) else str(t) for t in dag.get("tags") or []}


def serves(dag: dict[str, Any], release_id: str) -> bool:
    """A DAG (as Airflow's API shows it) was parsed from `release_id`'s own code: its bundle
    version is the release, and so is the tag its code put on it."""
    return dag.get("bundle_version") == release_id and release_tag(release_id) in dag_tags(dag)


def candidate_detail(
    source: str, record: ReleaseRecord, source_history: Sequence[HistoryEntry]
) -> dict[str, Any]:
    """The detail of a `candidate` row: what `source` runs now (the release's images by
    digest, commit, manifest, migrations) and the checks it passed or failed there."""
    document = record.document()
    return {
        "from": source,
        "images": record.image_digests(),
        **{k: document.get(k) for k in CANDIDATE_FIELDS},
        "checks": [
            {"check": e.detail.get("check"), "ok": e.ok, "actor": e.actor, "at": e.at}
            | ({"detail": str(e.detail["detail"])[:200]} if e.detail.get("detail") else {})
            for e in source_history
            if e.action == "check"
        ],
    }


def activated_from_main(history: Sequence[HistoryEntry]) -> bool:
    """The release's last activation in this history (a release's own rows) was made from
    main: only such a release is offered downstream as a `candidate`. A row written before
    activations recorded their branch counts as main's (nothing else could tell)."""
    activated = [e for e in history if e.action in ACTIVATING and e.ok]
    return not activated or is_main(str(activated[-1].detail.get("branch") or ""))


def activations(history: Sequence[HistoryEntry]) -> list[str]:
    """Every release activated in the environment, oldest first (with repeats)."""
    return [e.release_id for e in history if e.action in ACTIVATING and e.ok]


def active_release(history: Sequence[HistoryEntry]) -> str | None:
    """The release the environment runs: the last one activated there."""
    found = activations(history)
    return found[-1] if found else None


def require_source(gates: GatesConfig, target: str) -> str:
    """The environment that promotes into `target`, or a usage error when none does."""
    if gates.promote_from is None:
        raise DataOpsError(
            f"{target} has no promote_from in dataops.yml: nothing promotes into it",
            "promote to an environment with gates.promote_from",
            exit_code=ExitCode.USAGE,
        )
    return gates.promote_from


def evaluate_gates(
    gates: GatesConfig,
    source: str,
    source_history: Sequence[HistoryEntry],
    approve: bool,
    approver: str,
) -> dict[str, str]:
    """Every gate of promoting a release into the environment `gates` belongs to, given the
    release's history in `source`: {gate: "passed..." | "failed: why"}, in a stable order."""
    results: dict[str, str] = {}
    if any(e.action in ACTIVATING and e.ok for e in source_history):
        results[f"was active in {source}"] = PASSED
    else:
        results[f"was active in {source}"] = "failed: never active there"
    # The target's require_checks must have passed in the source (ci in dev for staging,
    # smoke in staging for prod); the latest result of each check counts.
    for name in gates.require_checks:
        checks = [
            e for e in source_history if e.action == "check" and e.detail.get("check") == name
        ]
        if not checks:
            results[f"check {name} in {source}"] = "failed: never ran"
        elif not checks[-1].ok:
            detail = str(checks[-1].detail.get("detail", "failed"))
            results[f"check {name} in {source}"] = f"failed: {detail}"
        else:
            results[f"check {name} in {source}"] = PASSED
    results.update(approval_gate(gates, approve, approver))
    return results


def approval_gate(gates: GatesConfig, approve: bool, approver: str) -> dict[str, str]:
    """The approval a promotion into (or a rollback of) an environment needs: {} when it
    needs none, else {"approval": "passed..." | "failed: why"}."""
    if not gates.require_approval:
        return {}
    if not approve:
        return {"approval": "failed: this environment needs --approve"}
    if approver not in gates.approvers:
        return {
            "approval": f"failed: {approver!r} may not approve "
            f"(approvers: {', '.join(gates.approvers)})"
        }
    return {"approval": f"passed: approved by {approver}"}


def failed_gates(results: dict[str, str]) -> dict[str, str]:
    return {gate: outcome for gate, outcome in results.items() if not outcome.startswith(PASSED)}


def rollback_target(env: str, history: Sequence[HistoryEntry], wanted: str | None) -> str:
    """The release a rollback of `env` activates: `wanted` (a full id) when it ran there, else
    the last release active before the current one."""
    ran = activations(history)
    if not ran:
        raise DataOpsError(f"{env} has no active release to roll back", exit_code=ExitCode.USAGE)
    current = ran[-1]
    if wanted is None:
        previous = [r for r in reversed(ran) if r != current]
        if not previous:
            raise DataOpsError(
                f"{env} has never run another release than {short(current)}",
                "nothing to roll back to",
                exit_code=ExitCode.USAGE,
            )
        return previous[0]
    if wanted not in ran:
        raise DataOpsError(
            f"release {short(wanted)} was never active in {env}",
            f"roll back only to a release that ran there (dataops release list --env {env})",
            exit_code=ExitCode.USAGE,
        )
    return wanted


def match_release(ref: str, known: set[str]) -> str:
    """The one known release id that `ref` (a full id or a prefix, with or without `sha256:`)
    names, or a usage error."""
    wanted = ref if ref.startswith("sha256:") else f"sha256:{ref}"
    matches = sorted(r for r in known if r.startswith(wanted))
    if len(matches) != 1:
        raise DataOpsError(
            f"release {ref!r} matches {len(matches)} known releases",
            "give more of its id (dataops release list)",
            exit_code=ExitCode.USAGE,
        )
    return matches[0]
