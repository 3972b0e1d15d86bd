"""Slim CI for dbt: build and test only what changed, next to an environment's warehouse.

The baseline is the manifest baked into the transform image the environment runs (the build
record of `dataops images build --push --env E`): the working tree's dbt project is compared
with it (`state:modified+`), the modified models and their descendants are built and tested in
a CI schema of their own (`ci_<branch>`, `ci_<branch>_staging`, ...), and every unmodified
parent is read from the environment's published relations (`--defer --favor-state`). The CI
schemas are dropped afterwards. Each CI schema is registered in `dataops.ci_schemas` (made by
migration V1) before any DDL, so a run that was killed leaves a record `dataops ci sweep` finds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dataops.clients import dbt
from dataops.core.dbt_artifacts import retarget_manifest, summarize
from dataops.core.dbt_project import foreign_ci_schemas, in_ci_scope, out_of_scope
from dataops.core.progress import Report
from dataops.core.selection import Selected, selection_reasons
from dataops.errors import DataOpsError, NotReadyError
from dataops.project.environment import Environment

LIST_ARGS = (
    *("--resource-type", "model", "--resource-type", "seed", "--resource-type", "snapshot"),
    *("--resource-type", "test", "--output", "json", "--output-keys", "unique_id"),
    *("--output-keys", "schema", "--output-keys", "config", "-q"),
)


def _builds_relation(row: dict[str, Any]) -> bool:
    """A model, seed or snapshot, or a test that stores its failures in a table."""
    if not row.get("schema"):
        return False
    if not str(row.get("unique_id", "")).startswith("test."):
        return True
    config = row.get("config") or {}
    return bool(config.get("store_failures") or config.get("store_failures_as"))


@dataclass
class SlimCiResult:
    schema: str
    baseline: str  # the transform image whose manifest was the baseline
    selected: list[Selected] = field(default_factory=list)
    executed_models: list[str] = field(default_factory=list)
    tests: int = 0
    failures: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    run_results: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures


class SlimCi:
    def __init__(self, env: Environment, report: Report) -> None:
        self.env = env
        self.report = report
        self.state = env.state

    def connect(self) -> psycopg.Connection:
        return self.env.connect("dataops-ci")

    # -- the baseline ----------------------------------------------------------------------------
    def baseline_manifest(self) -> tuple[str, Path] | None:
        """(image ref, manifest path) of the transform image the environment runs: its active
        release's, or its latest build's before any release; None when it runs none yet."""
        ref = self.env.running_images().get("transform", {}).get("ref")
        if not ref:
            return None
        return ref, dbt.manifest_of_image(self.state.manifests, ref, self.report)

    # -- the run ---------------------------------------------------------------------------------
    def run(
        self,
        schema: str,
        project: Path,
        git_ref: str,
        keep: bool = False,
        echo: Callable[[str], None] | None = None,
    ) -> SlimCiResult:
        if not in_ci_scope(schema, schema):
            raise DataOpsError(f"{schema!r} is not a CI schema (ci_...)", "pass --schema ci_NAME")
        work = self.state.ci_work(schema)
        config = self.env.project.config
        prepared = dbt.prepare_project(
            config.dbt,
            project,
            work / "project",
            dbt.targets_of(config.dbt, list(config.environments)),
            self.state.dbt_logs,
            self.report,
        )
        warehouse = self.env.config.warehouse
        target = work / "target"
        env = dbt.environment(
            prepared.path,
            target,
            self.state.dbt_logs,
            warehouse,
            self.env.warehouse_password,
            schema,
        )
        baseline = self.baseline_manifest()
        old: dict[str, Any] = {"nodes": {}}
        if baseline is not None:
            old = json.loads(baseline[1].read_text())
            if old.get("metadata", {}).get("project_name") != prepared.name:
                self.report(
                    f"the baseline {baseline[0]} is dbt project "
                    f"{old.get('metadata', {}).get('project_name')!r}, not {prepared.name!r}"
                )
                baseline, old = None, {"nodes": {}}
        ref = baseline[0] if baseline else "none"
        result = SlimCiResult(schema, ref, run_results=str(target / "run_results.json"))
        selector: list[str] = []
        if baseline is None:
            self.report(
                f"no baseline for {prepared.name} in {self.env.name} (first run): building "
                "and testing every node"
            )
        else:
            state = retarget_manifest(baseline[1], work / "state", warehouse.database)
            selector = ["--select", "state:modified+", "--state", str(state.parent)]
        ci_target = ["--target", config.dbt.ci_target]
        listed = self._dbt(["ls", *selector, *ci_target, *LIST_ARGS], prepared.path, env)
        rows = [json.loads(x) for x in listed.stdout.splitlines() if x.startswith("{")]
        nodes = {r["unique_id"]: r["schema"] for r in rows if _builds_relation(r)}
        outside = out_of_scope(nodes, schema)
        if outside:  # before any DDL and before the registry knows of the run
            raise DataOpsError(
                f"slim CI stopped before any change: {len(outside)} node(s) of {prepared.name} "
                f"would be built outside the CI schemas {schema} and {schema}_*:\n  "
                + "\n  ".join(outside[:10]),
                "route every node through the target schema in the CI target "
                f"({config.dbt.ci_target!r}): the project's generate_schema_name must build "
                "into target.schema or target.schema_<custom> there (see "
                "docs/how-to/bring-your-dbt-project.md)",
            )
        schemas = sorted({schema, *nodes.values()})
        current = json.loads((target / "manifest.json").read_text())
        result.selected = selection_reasons(current, old, [r["unique_id"] for r in rows])
        if not result.selected:
            self.report(f"no model differs from {ref}: nothing to build")
            return result
        with self.connect() as conn:
            self._require_registry(conn)
            with conn.transaction():  # one registration at a time: check, then claim
                conn.execute("lock table dataops.ci_schemas in share row exclusive mode")
                taken = foreign_ci_schemas(schemas, self._others(conn, schema))
                if taken:
                    raise DataOpsError(
                        f"slim CI stopped before any change: {', '.join(taken)} belong to "
                        "another registered CI run (another branch whose CI schema is a prefix "
                        "of this one's, or the reverse)",
                        "run it with another --schema, or sweep the other run first "
                        "(dataops ci sweep)",
                    )
                conn.execute(
                    "insert into dataops.ci_schemas (schema_name, git_ref, schemas)"
                    " values (%s, %s, %s) on conflict (schema_name) do update set"
                    " created_at = now(), git_ref = excluded.git_ref, schemas = excluded.schemas",
                    (schema, git_ref, schemas),
                )
            try:
                how = f"state:modified+ against {ref}" if baseline else "no baseline: all"
                self.report(f"{len(result.selected)} node(s) selected ({how}):")
                for chosen in result.selected:
                    self.report(f"  {chosen.unique_id}: {chosen.reason}")
                build = ["build", *selector, *ci_target]
                if baseline is not None:
                    build += ["--defer", "--favor-state"]
                self.report("+ dbt " + " ".join(build) + f"   (schema {schema})")
                code = dbt.stream(build, prepared.path, env, echo)
                summary = summarize(target / "run_results.json")
                result.tests, result.failures = summary.tests, summary.failures
                result.executed_models = sorted(
                    item["unique_id"]
                    for item in json.loads((target / "run_results.json").read_text())["results"]
                    if item["unique_id"].startswith("model.")
                )
                if code != 0 and not result.failures:
                    result.failures = [f"dbt build exited with {code}; see its output above"]
            finally:
                if not keep:
                    result.dropped = self.drop(conn, schema)
        return result

    def _dbt(self, args: list[str], project: Path, env: dict[str, str]) -> Any:
        done = dbt.run(args, project, env)
        if done.returncode != 0:
            tail = dbt.output_tail(done, 12)
            raise DataOpsError(
                f"dbt {args[0]} failed:\n{tail}",
                "fix the dbt project (`dataops lint` shows SQL problems), then run again",
            )
        return done

    def _require_registry(self, conn: psycopg.Connection) -> None:
        row = conn.execute("select to_regclass('dataops.ci_schemas')").fetchone()
        if row is None or row[0] is None:
            raise NotReadyError(
                f"the {self.env.name} warehouse has no dataops.ci_schemas table (its migrations "
                "were not applied)",
                f"dataops migrate apply --env {self.env.name}",
            )

    def _others(self, conn: psycopg.Connection, schema: str) -> list[tuple[str, list[str]]]:
        rows = conn.execute(
            "select schema_name, schemas from dataops.ci_schemas where schema_name <> %s",
            (schema,),
        ).fetchall()
        return [(row[0], list(row[1] or [])) for row in rows]

    # -- cleanup ---------------------------------------------------------------------------------
    def drop(self, conn: psycopg.Connection, schema: str) -> list[str]:
        """Drop a CI schema and the schemas dbt derived from it; forget it in the registry."""
        row = conn.execute(
            "select schemas from dataops.ci_schemas where schema_name = %s", (schema,)
        ).fetchone()
        names = sorted({schema, *(row[0] if row else [])})
        outside = [n for n in names if not in_ci_scope(n, schema)]
        outside += foreign_ci_schemas(names, self._others(conn, schema))
        if outside:  # checked for all of them before any DROP
            raise DataOpsError(
                f"CI schema {schema}: the registry lists {', '.join(outside)}, which are not "
                f"{schema} or {schema}_* of this run alone; nothing was dropped",
                "slim CI drops only its own ci_ schemas; delete the row from "
                "dataops.ci_schemas if it is wrong",
            )
        dropped = []
        with conn.transaction():
            owners: dict[str, str] = dict(
                conn.execute(
                    "select nspname, pg_get_userbyid(nspowner) from pg_namespace"
                    " where nspname = any(%s)",
                    (names,),
                ).fetchall()
            )
            row = conn.execute("select current_user").fetchone()
            me = row[0] if row else ""
            foreign = sorted(n for n, owner in owners.items() if owner != me)
            if foreign:  # checked for all of them before any DROP
                raise DataOpsError(
                    f"CI schema {schema}: {', '.join(foreign)} belong to another role "
                    f"({', '.join(sorted({owners[n] for n in foreign}))}), not {me}; "
                    "nothing was dropped",
                    "slim CI drops only schemas its own runs created; drop these by hand "
                    "if they are yours to drop",
                )
            for name in names:
                if name in owners:
                    conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(name)))
                    dropped.append(name)
            conn.execute("delete from dataops.ci_schemas where schema_name = %s", (schema,))
        return dropped

    def sweep(self, older_than: timedelta, dry_run: bool = False) -> list[tuple[str, str]]:
        """Drop the CI schemas registered longer than `older_than` ago: [(schema, created)]."""
        with self.connect() as conn:
            self._require_registry(conn)
            old = conn.execute(
                "select schema_name, created_at from dataops.ci_schemas"
                " where created_at < now() - %s order by created_at",
                (older_than,),
            ).fetchall()
            swept, refused = [], []
            for schema, created in old:
                if not dry_run:
                    try:
                        self.drop(conn, schema)
                    except DataOpsError as exc:  # the others are still swept
                        refused.append(exc.reason)
                        continue
                swept.append((schema, created.isoformat(timespec="seconds")))
        if refused:
            done = ", ".join(s for s, _ in swept) or "none"
            raise DataOpsError(
                "\n".join(refused) + f"\n(swept the other old CI schemas: {done})",
                "slim CI drops only schemas its own runs created; drop these by hand if they "
                "are yours to drop, or delete their rows from dataops.ci_schemas",
            )
        return swept
