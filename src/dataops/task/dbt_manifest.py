"""The dbt step without a dbt parse: manifests baked into the transform image at build time.

A full `dbt parse` of the project costs seconds in every task container ("saved manifest not
found"), and dbt's own partial parsing cannot help: its saved state is only valid for the exact
`--vars` and `--target` it was made with, and the audit name (a var) differs per pipeline and
the target per environment, while one image serves them all.

So the image build parses the project once per dbt target, the way the dbt step builds it (the
toolkit's audit naming, with a placeholder audit name and database), and saves dbt's Manifest
(`bake`, run by the transform Dockerfile inside the image, so every path is the image's). The
step loads the manifest of its target, renames the placeholders to its audit name and its
database (`load`), and hands it to dbt (`dbtRunner(manifest=...)`), which then skips parsing.

The placeholders are long, fixed identifiers no project uses, so renaming is exact. When the
project read environment variables while it was parsed (`env_var()` in a model or config) and
their values differ in the task, the baked manifest is not used: the step parses, as before.

Deferral is baked too. The step defers unselected parents to the published relations of the
image's own compiled manifest (`--defer --favor-state --state`), which dbt reads from JSON and
merges into the run's manifest in every task (mostly mashumaro generating its decoders).
That manifest is in the image, so `bake` merges it into each baked manifest the way
dbt does (`Manifest.merge_from_artifact`: each node's `defer_relation`, its database the
placeholder) and writes a state directory holding an empty manifest (`defer-baked/`, with the
sha256 of the manifest it merged). The step hands dbt that directory when it is the same
manifest: dbt's merge then adds nothing and keeps the baked relations.

dbt's Python beyond `dbtRunner` (the Manifest's msgpack form, PreviousState, the merge, the
lookups a parse derives) is dbt's internal API: it is in `dataops.patches.dbt.manifest`, with
the dbt version it targets.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dataops.core.dbt_artifacts import retarget_manifest
from dataops.core.dbt_project import AUDIT_INFIX, TARGETS_FILE
from dataops.patches.dbt import jinja_cache
from dataops.patches.dbt import manifest as dbt_internals
from dataops.task.files import TaskError

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest

PLACEHOLDER_AUDIT = "dataops0baked0audit0name"
PLACEHOLDER_DATABASE = "dataops0baked0database"
# What the profile reads at parse time; the values do not shape the manifest (the database is
# the placeholder, renamed at run time), so they are not compared with the task's.
PROFILE_ENV = {
    "PGDATABASE": PLACEHOLDER_DATABASE,
    "PGHOST": "127.0.0.1",
    "PGPORT": "5432",
    "PGUSER": "dataops_bake",
    "PGPASSWORD": "unused",
}


def baked_path(state_dir: Path, target: str) -> Path:
    return state_dir / f"runtime-{target}.msgpack"


def env_file(state_dir: Path) -> Path:
    return state_dir / "runtime-env.json"


def state_manifest(state_dir: Path) -> Path:
    """The image's compiled manifest, what the step defers to (DATAOPS_DBT_STATE)."""
    return state_dir / "manifest.json"


def defer_dir(state_dir: Path) -> Path:
    return state_dir / "defer-baked"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _defer_state(state_dir: Path, tmp: Path) -> Any | None:
    """The image's compiled manifest as dbt loads it for deferral, its database the
    placeholder; None when the image has none (the step defers at run time, if it can)."""
    source = state_manifest(state_dir)
    if not source.exists():
        return None
    retargeted = retarget_manifest(source, tmp / "defer-state", PLACEHOLDER_DATABASE)
    return dbt_internals.deferral_state(retargeted.parent, tmp / "target", tmp)


def _write_defer_dir(state_dir: Path) -> Path:
    """A --state directory whose manifest is empty (the baked manifests carry the deferral),
    and the sha256 of the manifest they merged."""
    document = json.loads(state_manifest(state_dir).read_text())
    empty = {k: ({} if isinstance(v, dict) else v) for k, v in document.items()}
    empty["metadata"] = document.get("metadata", {})
    out = defer_dir(state_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(empty))
    (out / "merged.sha256").write_text(_sha256(state_manifest(state_dir)) + "\n")
    return out


def baked_defer_state(state_dir: Path, state: Path) -> Path | None:
    """The empty --state directory of a bake that merged `state` (the manifest this run defers
    to), or None: then dbt reads and merges `state` itself."""
    out = defer_dir(state_dir)
    try:
        merged = (out / "merged.sha256").read_text().strip()
    except FileNotFoundError:
        return None
    if not (out / "manifest.json").exists() or not state.exists() or merged != _sha256(state):
        return None
    return out


def targets(project_dir: Path) -> list[str]:
    """Every dbt target of the build copy (one per environment, deduplicated)."""
    try:
        mapping = json.loads((project_dir / TARGETS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return []
    return sorted({str(t) for env, t in mapping.items() if env != "ci"})


def bake(project_dir: Path, state_dir: Path) -> list[Path]:
    """Parse the project once per target with the placeholders and save each Manifest, with the
    deferral to the image's compiled manifest merged in when there is one, and the compiled
    Jinja code of their macros and nodes (dataops.patches.dbt.jinja_cache)."""
    from dbt.cli.main import dbtRunner

    written = []
    manifests = []
    used_env: dict[str, str] = {}
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="dataops-bake-") as tmp:
        os.environ.update(PROFILE_ENV)
        os.environ.update(DBT_TARGET_PATH=f"{tmp}/target", DBT_LOG_PATH=f"{tmp}/logs")
        try:
            deferred = _defer_state(state_dir, Path(tmp))
            for target in targets(project_dir):
                result = dbtRunner().invoke(
                    [
                        "parse",
                        "--no-partial-parse",
                        "--project-dir",
                        str(project_dir),
                        "--profiles-dir",
                        str(project_dir),  # the build copy's profile is the toolkit's
                        "--target",
                        target,
                        "--vars",
                        json.dumps({"dataops_audit": PLACEHOLDER_AUDIT}),
                        "--quiet",
                    ]
                )
                if not result.success or result.result is None:
                    raise TaskError(f"dbt parse for target {target} failed: {result.exception}")
                manifest = cast("Manifest", result.result)  # what `dbt parse` returns
                used_env.update(dbt_internals.env_vars(manifest))
                if deferred is not None:  # what --defer does at run time, done once here
                    dbt_internals.merge_deferral(manifest, deferred)
                path = baked_path(state_dir, target)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(dbt_internals.dumps(manifest))
                written.append(path)
                manifests.append(manifest)
            if manifests:  # the Jinja code of their macros and nodes, compiled once here
                written.append(jinja_cache.bake(manifests, state_dir))
            if manifests and deferred is not None:
                written.append(_write_defer_dir(state_dir) / "manifest.json")
        finally:
            os.environ.clear()
            os.environ.update(saved)
    for name in PROFILE_ENV:
        used_env.pop(name, None)
    env_file(state_dir).write_text(json.dumps(used_env, sort_keys=True) + "\n")
    return written


def changed_env(state_dir: Path) -> list[str]:
    """The environment variables the parse read whose values differ in this process."""
    try:
        used = json.loads(env_file(state_dir).read_text())
    except (FileNotFoundError, ValueError):
        return ["(no record of the parse's environment)"]
    return sorted(name for name, value in used.items() if os.environ.get(name) != value)


def _rename(value: str, audit: str, database: str) -> str:
    return value.replace(AUDIT_INFIX + PLACEHOLDER_AUDIT, AUDIT_INFIX + audit).replace(
        PLACEHOLDER_DATABASE, database
    )


def load(state_dir: Path, target: str, audit: str, database: str) -> Any | None:
    """The baked Manifest of `target` with the audit name and database of this run, or None
    when the image has none for it or the parse's environment differs (then dbt parses)."""
    path = baked_path(state_dir, target)
    if not path.exists() or changed_env(state_dir):
        return None
    manifest = dbt_internals.loads(path.read_bytes())
    dbt_internals.rename_relations(manifest, lambda value: _rename(value, audit, database))
    dbt_internals.rebuild_derived(manifest)
    return manifest
