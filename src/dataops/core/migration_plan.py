"""Migration planning: what an environment's history and the migration files say about an
apply, before any DDL. Pure: the history comes in as rows, the files as a `MigrationSet`.
`dataops.release.migrator` reads the history from the warehouse and applies the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dataops.core.migrations import (
    Migration,
    MigrationSet,
    destructive_changes,
    parse_version,
    version_text,
)


@dataclass(frozen=True)
class HistoryRow:
    """One row of `dataops.schema_history`."""

    rank: int
    version: str | None
    description: str
    type: str  # versioned, repeatable, baseline
    script: str
    checksum: str | None
    installed_by: str
    installed_at: datetime
    execution_ms: int
    success: bool


def applied_versions(history: Sequence[HistoryRow]) -> list[tuple[int, ...]]:
    """The versions applied successfully (a baseline counts as applied)."""
    return [
        parse_version(r.version)
        for r in history
        if r.version is not None and r.success and r.type in ("versioned", "baseline")
    ]


def baseline_version(history: Sequence[HistoryRow]) -> tuple[int, ...] | None:
    """The version of the last baseline: migrations up to it are taken as already there."""
    rows = [r for r in history if r.type == "baseline" and r.version]
    return parse_version(rows[-1].version) if rows and rows[-1].version else None


def problems(
    found: MigrationSet,
    history: Sequence[HistoryRow],
    env: str,
    folder: Path,
    *,
    strict_destructive: bool,
) -> tuple[list[str], list[str]]:
    """(errors, warnings): what stops an apply to `env`, and what does not.

    Errors: a failed migration still recorded, an applied file deleted or edited, a new file
    older than the newest applied version; destructive changes without the annotation when the
    environment is strict (else they are warnings)."""
    errors: list[str] = []
    warnings: list[str] = []
    files = {m.version_label: m for m in found.versioned}
    for row in history:
        if row.type != "versioned" or row.version is None:
            continue
        migration = files.get(row.version)
        if not row.success:
            errors.append(
                f"V{row.version} ({row.script}) failed on {row.installed_at:%Y-%m-%d %H:%M}"
                f" and blocks further applies; clean up what it left, then "
                f"`dataops migrate repair --env {env} --version {row.version}`"
            )
        elif migration is None:
            errors.append(
                f"V{row.version} ({row.script}) was applied but its file is gone from "
                f"{folder}; restore it (applied migrations are never deleted)"
            )
        elif migration.checksum != row.checksum:
            errors.append(
                f"{migration.path}: V{row.version} was edited after it was applied: "
                f"applied checksum {row.checksum}, file checksum {migration.checksum}; "
                "revert the edit and add a new migration, or, if the edit is "
                f"cosmetic, `dataops migrate repair --env {env} --version {row.version}`"
            )
    applied = applied_versions(history)
    applied_labels = {version_text(v) for v in applied}
    newest = max(applied, default=None)
    baseline = baseline_version(history)
    for migration in found.versioned:
        assert migration.version is not None
        if migration.version_label in applied_labels:
            continue
        if baseline is not None and migration.version <= baseline:
            continue
        if newest is not None and migration.version < newest:
            errors.append(
                f"{migration.path}: V{migration.version_label} is older than the applied "
                f"V{version_text(newest)} (out of order); give it a version above "
                f"{version_text(newest)}"
            )
    for migration in [*found.versioned, *found.repeatable]:
        for finding in destructive_changes(migration):
            if strict_destructive:
                errors.append(f"{finding} ({env} requires the annotation)")
            else:
                warnings.append(str(finding))
    return errors, warnings


def pending(found: MigrationSet, history: Sequence[HistoryRow]) -> list[Migration]:
    """What an apply runs, in order: versioned migrations not applied (and above the baseline),
    then repeatable ones that are new or whose checksum changed since they last ran."""
    applied = {version_text(v) for v in applied_versions(history)}
    baseline = baseline_version(history)
    todo = [
        m
        for m in found.versioned
        if m.version_label not in applied
        and not (baseline is not None and m.version is not None and m.version <= baseline)
    ]
    latest: dict[str, str | None] = {}
    for row in history:
        if row.type == "repeatable" and row.success:
            latest[row.script] = row.checksum
    todo += [m for m in found.repeatable if latest.get(m.script) != m.checksum]
    return todo
