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
merges into the run's manifest in every task (about 0.3 s, mostly mashumaro generating its
decoders). That manifest is in the image, so `bake` merges it into each baked manifest the way
dbt does (`Manifest.merge_from_artifact`: each node's `defer_relation`, its database the
placeholder) and writes a state directory holding an empty manifest (`defer-baked/`, with the
sha256 of the manifest it merged). The step hands dbt that directory when it is the same
manifest: dbt's merge then adds nothing and keeps the baked relations.
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
_FIELDS = ("database", "schema", "relation_name")


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
    from dbt.contracts.state import PreviousState

    retargeted = retarget_manifest(source, tmp / "defer-state", PLACEHOLDER_DATABASE)
    return PreviousState(retargeted.parent, tmp / "target", tmp).manifest


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
    from dbt.parser.manifest import extended_mashumaro_encoder

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
                used_env.update({k: str(v) for k, v in (manifest.env_vars or {}).items()})
                if deferred is not None:  # what --defer does at run time, done once here
                    manifest.merge_from_artifact(other=deferred)
                path = baked_path(state_dir, target)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(manifest.to_msgpack(extended_mashumaro_encoder))
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
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    manifest = Manifest.from_msgpack(path.read_bytes(), decoder=extended_mashumuro_decoder)
    groups: list[Any] = [
        manifest.nodes,
        manifest.sources,
        manifest.unit_tests,
        manifest.semantic_models,
        manifest.saved_queries,
    ]
    for group in groups:
        for node in group.values():
            relations = (
                node,
                getattr(node, "node_relation", None),
                getattr(node, "defer_relation", None),
            )
            for obj in relations:
                for name in _FIELDS:
                    value = getattr(obj, name, None) if obj is not None else None
                    if isinstance(value, str):
                        setattr(obj, name, _rename(value, audit, database))
    # What dbt derives after a parse and does not save: the graph maps (`dbt build` skips the
    # children of a failed test through them), the lookups, the flat graph.
    manifest.build_parent_and_child_maps()
    manifest.build_group_map()
    manifest.rebuild_ref_lookup()
    manifest.rebuild_doc_lookup()
    manifest.rebuild_disabled_lookup()
    manifest.build_flat_graph()
    return manifest
