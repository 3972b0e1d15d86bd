"""dbt's Manifest object, saved in the transform image and restored in the dbt step (the
non-public Python of dbt that `dataops.task.dbt_manifest` and `dataops.task.transform` use).

Targets dbt-core 1.11.16 with mashumaro 3.14. dbt's only public Python interface is `dbtRunner`
(`invoke`, and `dbtRunner(manifest=...)` to skip the parse); everything here is dbt's own
internal API, used as dbt itself uses it:

- `dumps`/`loads`: `Manifest.to_msgpack`/`Manifest.from_msgpack` with the mashumaro encoder and
  decoder of `dbt.parser.manifest` (`extended_mashumaro_encoder`, and the decoder dbt spells
  `extended_mashumuro_decoder`): what dbt writes its partial-parse file with. The bytes are
  only read by the same dbt that wrote them (the image's), but a new dbt may change the names.
- `deferral_state`: `dbt.contracts.state.PreviousState(...).manifest`, the manifest dbt loads
  for `--defer --state`; `merge_deferral`: `Manifest.merge_from_artifact(other=...)`, what
  `--defer` does with it at run time.
- `env_vars`: `Manifest.env_vars`, the environment variables the parse read.
- `rename_relations`: sets `database`, `schema` and `relation_name` on the Manifest's nodes,
  sources, unit tests, semantic models and saved queries, and on their `node_relation` and
  `defer_relation`.
- `rebuild_derived`: what dbt derives after a parse and does not save (parent and child maps,
  group map, ref/doc/disabled lookups, flat graph): `dbt build` skips the children of a failed
  test through them.
- `write_run_results`: `RunExecutionResult.write`, what `--write-json` writes (run_results.json).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataops.patches.dbt import MASHUMARO, TARGET

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest

TARGETS = (TARGET, MASHUMARO)
UPGRADE_CHECK = (
    "dbt/parser/manifest.py: extended_mashumaro_encoder and extended_mashumuro_decoder (sic) "
    "still exist; dbt/contracts/graph/manifest.py: Manifest.to_msgpack/from_msgpack, "
    "merge_from_artifact(other=), env_vars, the groups nodes/sources/unit_tests/"
    "semantic_models/saved_queries, build_parent_and_child_maps, build_group_map, "
    "rebuild_ref_lookup, rebuild_doc_lookup, rebuild_disabled_lookup, build_flat_graph (and no "
    "new derived state a parse builds and the msgpack drops); nodes still carry database, schema, "
    "relation_name, node_relation, defer_relation; dbt/contracts/state.py: PreviousState(state_"
    "path, target_path, project_root).manifest; RunExecutionResult.write(path); "
    "dbtRunner(manifest=) still skips the parse. Run tests/integration/test_baked_manifest.py "
    "(a baked manifest equals a full parse) and tests/unit/task/test_dbt_manifest_patch.py"
)
RELATION_FIELDS = ("database", "schema", "relation_name")


def dumps(manifest: Manifest) -> bytes:
    """The Manifest as dbt saves its partial-parse state (msgpack)."""
    from dbt.parser.manifest import extended_mashumaro_encoder

    return manifest.to_msgpack(extended_mashumaro_encoder)


def loads(data: bytes) -> Manifest:
    """The Manifest `dumps` saved (the same dbt must read it)."""
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    return Manifest.from_msgpack(data, decoder=extended_mashumuro_decoder)


def deferral_state(manifest_dir: Path, target_path: Path, project_root: Path) -> Manifest | None:
    """The manifest.json in `manifest_dir` as dbt loads it for `--defer --state`."""
    from dbt.contracts.state import PreviousState

    return PreviousState(manifest_dir, target_path, project_root).manifest


def merge_deferral(manifest: Manifest, deferred: Manifest) -> None:
    """What `--defer` does at run time: each node's `defer_relation` from `deferred`."""
    manifest.merge_from_artifact(other=deferred)


def env_vars(manifest: Manifest) -> dict[str, str]:
    """The environment variables the parse read (`env_var()` in a model or config)."""
    return {k: str(v) for k, v in (manifest.env_vars or {}).items()}


def rename_relations(manifest: Manifest, rename: Callable[[str], str]) -> None:
    """`rename` each database, schema and relation_name of the Manifest's nodes and sources (and
    of their node_relation and defer_relation)."""
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
                for name in RELATION_FIELDS:
                    value = getattr(obj, name, None) if obj is not None else None
                    if isinstance(value, str):
                        setattr(obj, name, rename(value))


def rebuild_derived(manifest: Manifest) -> None:
    """What dbt derives after a parse and does not save: the graph maps (`dbt build` skips the
    children of a failed test through them), the lookups, the flat graph."""
    manifest.build_parent_and_child_maps()
    manifest.build_group_map()
    manifest.rebuild_ref_lookup()
    manifest.rebuild_doc_lookup()
    manifest.rebuild_disabled_lookup()
    manifest.build_flat_graph()


def write_run_results(executed: Any, path: Path) -> bool:
    """Write run_results.json of an in-process `dbt build` (`dbtRunnerResult.result`) as
    `--write-json` does; False when the result has no such file to write."""
    if not hasattr(executed, "write"):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    executed.write(str(path))
    return True
