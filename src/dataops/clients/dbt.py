"""dbt on the host: the environment it runs with, and manifests compiled without a warehouse."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from dataops.core import dbt_project
from dataops.core.config import DbtConfig, DbtPackages, WarehouseConfig
from dataops.errors import ConfigError, DataOpsError, ExitCode, NotReadyError, tool_message

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt.contracts.graph.manifest import Manifest

MANIFEST_PATH_IN_IMAGE = "/opt/dataops/dbt_state/manifest.json"


def executable() -> Path:
    dbt = Path(sys.executable).parent / "dbt"
    if not dbt.exists():
        raise NotReadyError("dbt is not installed in the venv", "make setup")
    return dbt


def environment(
    project: Path,
    target_path: Path,
    log_path: Path,
    warehouse: WarehouseConfig | None = None,
    password: str = "",
    schema: str | None = None,
) -> dict[str, str]:
    """os.environ plus what profiles.yml reads; a parse needs no real warehouse."""
    env = {
        **os.environ,
        "PGHOST": warehouse.host if warehouse else "127.0.0.1",
        "PGPORT": str(warehouse.port) if warehouse else "5432",
        "PGDATABASE": warehouse.database if warehouse else "unused",
        "PGUSER": warehouse.user if warehouse else "unused",
        "PGPASSWORD": password,
        "DBT_PROFILES_DIR": str(project),
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(log_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",  # its output goes to logs and CI, not only terminals
    }
    if schema:
        env["DBT_SCHEMA"] = schema
    return env


def run(args: list[str], project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`dbt ARGS...` in `project`, its output captured; never raises on dbt's exit code."""
    return subprocess.run(
        [str(executable()), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def stream(
    args: list[str], project: Path, env: dict[str, str], echo: Callable[[str], None] | None
) -> int:
    """`dbt ARGS...` with each line of its output handed to `echo` as it comes; its exit code."""
    with subprocess.Popen(
        [str(executable()), *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if echo:
                echo(line.rstrip("\n"))
        return process.wait()


def output_tail(result: subprocess.CompletedProcess[str], lines: int) -> str:
    """The last `lines` lines dbt printed (stdout, then stderr): where it says what failed."""
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def parse_manifest(
    project: Path, out_dir: Path, log_path: Path, variables: dict[str, str] | None = None
) -> Path:
    """`dbt parse` of `project` into `out_dir`/manifest.json (no warehouse connection)."""
    args = ["parse", "--no-partial-parse"]
    if variables:
        args += ["--vars", json.dumps(variables)]
    result = run(args, project, environment(project, out_dir, log_path))
    manifest = out_dir / "manifest.json"
    if result.returncode != 0 or not manifest.exists():
        tail = output_tail(result, 10)
        raise DataOpsError(
            f"dbt parse of {project} failed:\n{tail}",
            "fix the dbt project (`dataops lint` and `dbt parse` in the project folder show where)",
        )
    return manifest


# -- what a selection picks, asked of dbt in this process --------------------------------------


@dataclass(frozen=True)
class SelectedNodes:
    """What `dbt ls --select SELECTION` lists."""

    nodes: int
    unmatched: tuple[str, ...]  # its criteria that match no enabled node (dbt's own warning)
    error: str | None = None  # dbt refused the selection (an unknown method, a bad operator)


@dataclass(frozen=True)
class Selections:
    """Each selection's nodes in one parse of a project, and the names it could have meant."""

    names: tuple[str, ...]  # the project's models, seeds and snapshots (when one selects none)
    selected: dict[str, SelectedNodes]


class DbtParseError(DataOpsError):
    """`dbt parse` refused the project; `file` is the one dbt named (relative to the project)."""

    def __init__(self, reason: str, file: str | None) -> None:
        super().__init__(reason, "fix it (`dbt parse` in the project folder shows the whole error)")
        self.file = file


_NAMED_FILE = re.compile(r"\(([^()\s]+\.(?:sql|py|yml|yaml|csv))\)")


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def select_nodes(
    project: Path, profile: str, target: str, schema: str, selections: Iterable[str]
) -> Selections:
    """What each of `selections` picks in the dbt project at `project`, by dbt's own selector.

    One `dbt parse` in this process, with a profile of the toolkit's (no warehouse connection;
    its target and log folders temporary, nothing written in the project), then `dbt ls` of
    each selection with the parsed manifest, which skips parsing. Raises DbtParseError when dbt
    cannot parse the project."""
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory(prefix="dataops-select-") as tmp:
        work = Path(tmp)
        (work / "profiles.yml").write_text(
            dbt_project.profiles_yml(profile, [target], target, schema, threads=1)
        )
        args = [
            *("--project-dir", str(project), "--profiles-dir", tmp),
            *("--profile", profile, "--target", target),
            *("--log-level", "none", "--log-level-file", "none"),
            *("--no-partial-parse", "--no-write-json"),
        ]
        events: list[tuple[str, str]] = []  # (name, text) of dbt's warnings and errors

        def heard(event: Any) -> None:
            if event.info.level in ("warn", "error"):
                raw = getattr(event.data, "spec_raw", "")
                events.append((event.info.name, raw or event.info.msg))

        with _environ(environment(work, work / "target", work / "logs")):
            parsed = dbtRunner(callbacks=[heard]).invoke(["parse", *args])
            if not parsed.success or parsed.result is None:
                said = str(parsed.exception or "") or next(
                    (text for _, text in reversed(events)), "dbt parse failed"
                )
                named = _NAMED_FILE.search(said)
                shown = "\n".join(said.strip().splitlines()[:8])
                raise DbtParseError(shown, named.group(1) if named else None)
            manifest = cast("Manifest", parsed.result)  # what `dbt parse` returns
            runner = dbtRunner(manifest=manifest, callbacks=[heard])
            selected = {}
            for selection in dict.fromkeys(selections):
                events.clear()
                done = runner.invoke(["ls", "--select", selection, "--output", "name", *args])
                unmatched = tuple(t for n, t in events if n == "NoNodesForSelectionCriteria")
                error = None if done.success else str(done.exception or "dbt ls failed")
                selected[selection] = SelectedNodes(len(_listed(done)), unmatched, error)
            names: list[str] = []
            if any(s.unmatched or not s.nodes for s in selected.values()):
                kinds = ("--resource-types", "model", "seed", "snapshot")
                names = _listed(runner.invoke(["ls", *kinds, "--output", "name", *args]))
    return Selections(tuple(sorted(names)), selected)


def _listed(result: dbtRunnerResult) -> list[str]:
    """What `dbt ls` listed (nothing when it failed)."""
    return cast("list[str]", result.result) if result.success and result.result else []


# -- the build copy of a team's project --------------------------------------------------------


def targets_of(config: DbtConfig, environments: list[str]) -> dict[str, str]:
    """{environment: dbt target} of every environment, and "ci" for slim CI."""
    return {**{e: config.target(e) for e in environments}, "ci": config.ci_target}


@dataclass(frozen=True)
class PreparedProject:
    """A build copy of a dbt project: the toolkit's profile and macros woven in."""

    source: Path
    path: Path
    name: str
    profile: str
    own_schema_macro: bool  # the project ships its own generate_schema_name (now wrapped)
    packages: int


def install_packages(
    project: dbt_project.DbtProjectFile,
    mode: DbtPackages,
    log_path: Path,
    report: Callable[[str], None],
) -> None:
    """Make the project's packages folder hold what packages.yml asks for.

    deps: `dbt deps` in the project (dbt's own behaviour: it writes dbt_packages/ and, the first
    time, package-lock.yml); local packages need no network. vendored: the folder is checked
    in and must be there; nothing is downloaded."""
    if not project.packages:
        return
    installed = project.packages_dir
    if mode is DbtPackages.VENDORED:
        if not installed.is_dir() or not any(installed.iterdir()):
            raise ConfigError(
                f"dbt.packages is vendored, but {installed} is missing or empty",
                f"run `dbt deps` in {project.root} where the network is reachable and commit "
                f"{project.packages_install_path}/ (or set dbt.packages: deps)",
            )
        for entry in sorted(installed.iterdir()):
            if entry.is_symlink() and not entry.exists():
                raise ConfigError(
                    f"{entry} is a link to {os.readlink(entry)}, which does not exist here "
                    "(dbt deps links local: packages with absolute paths)",
                    f"vendor copies, not links: `cp -rL` the packages into "
                    f"{project.packages_install_path}/, or keep local: packages out of it",
                )
        return
    report(f"dbt deps: {len(project.packages)} package(s) of {project.root.name}/packages.yml")
    env = environment(project.root, log_path.parent / "deps-target", log_path)
    done = run(["deps"], project.root, env)
    if done.returncode == 0:
        return
    reason = tool_message(done.stdout + done.stderr, 1) or f"exit {done.returncode}"
    remote = project.remote_packages()
    where = ""
    if remote:
        names = ", ".join(f"{p.name} ({p.kind})" for p in remote)
        where = f"; {names} must be downloaded, which needs the network"
    raise DataOpsError(
        f"dbt deps in {project.root} could not install the packages{where}: {reason}",
        f"vendor them: run `dbt deps` in {project.root} on a machine with network access, "
        f"commit {project.packages_install_path}/ and set `dbt: {{packages: vendored}}` in "
        "dataops.yml; local: packages need no network (see docs/how-to/bring-your-dbt-project.md)",
        exit_code=ExitCode.USAGE,
    )


def prepare_project(
    config: DbtConfig,
    source: Path,
    dest: Path,
    targets: dict[str, str],
    log_path: Path,
    report: Callable[[str], None],
) -> PreparedProject:
    """Copy the dbt project at `source` to `dest` with its packages installed, the toolkit's
    profile (one output per dbt target of `targets`, {environment: target}) and the toolkit's
    macros; `source` is not
    changed except by `dbt deps`."""
    project = dbt_project.read_project(source)
    install_packages(project, config.packages, log_path, report)
    shutil.rmtree(dest, ignore_errors=True)
    top = project.generated_dirs()

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__"}
        return skip | (top & set(names) if Path(folder) == source else set())

    # symlinks=False: packages dbt deps linked in (local: ones) are copied as files.
    shutil.copytree(source, dest, ignore=ignore)
    renamed = renamed_where = 0
    for folder in project.macro_paths:
        for path in sorted((dest / folder).rglob("*.sql")):
            text, count = dbt_project.wrap_schema_macro(path.read_text())
            text, where_count = dbt_project.wrap_where_macro(text)
            if count or where_count:
                path.write_text(text)
                renamed += count
                renamed_where += where_count
    macros = dest / project.macro_paths[0]
    macros.mkdir(parents=True, exist_ok=True)
    (macros / dbt_project.TOOLKIT_MACRO_FILE).write_text(
        dbt_project.toolkit_macros(renamed > 0, renamed_where > 0)
    )
    profile = config.profile or project.profile or project.name
    data = {**dbt_project.with_audit_hook(project.data), "profile": profile}
    (dest / "dbt_project.yml").write_text(
        "# The build copy dataops made of the project (profile and on-run-start set by it).\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    names = list(targets.values())
    (dest / "profiles.yml").write_text(
        dbt_project.profiles_yml(profile, names, names[0], config.target_schema, config.threads)
    )
    (dest / dbt_project.TARGETS_FILE).write_text(json.dumps(targets, indent=2) + "\n")
    return PreparedProject(source, dest, project.name, profile, renamed > 0, len(project.packages))


def check_audit_routing(
    prepared: PreparedProject, manifest: Path, work: Path, log_path: Path
) -> None:
    """Refuse a project whose nodes would not all be built in their audit schemas."""
    probe = parse_manifest(
        prepared.path, work, log_path, {"dataops_audit": dbt_project.AUDIT_PROBE}
    )
    problems = dbt_project.audit_routing_problems(
        json.loads(manifest.read_text()), json.loads(probe.read_text())
    )
    if problems:
        shown = "\n  ".join(problems[:10])
        macro = (
            "the project's generate_schema_name (wrapped by the toolkit)"
            if prepared.own_schema_macro
            else "dbt's schema naming"
        )
        raise ConfigError(
            f"dbt project {prepared.source}: write-audit-publish cannot hold for "
            f"{len(problems)} node(s); with {macro} they would skip the quality gate:\n  {shown}",
            "build every node through generate_schema_name: use `schema:` (not the legacy "
            "`target_schema`/`target_database`) on snapshots, and no dispatch override of "
            "generate_schema_name; see docs/how-to/bring-your-dbt-project.md",
        )


def manifest_of_image(cache: Path, ref: str, report: Callable[[str], None]) -> Path:
    """The dbt manifest baked into the transform image `ref` (cached by digest)."""
    digest = ref.rsplit("@", 1)[-1].replace("sha256:", "")
    cached = cache / f"{digest}.json"
    if cached.exists():
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    report(f"reading the dbt manifest baked into {ref}")
    created = subprocess.run(["docker", "create", ref], capture_output=True, text=True, check=False)
    if created.returncode != 0:
        raise NotReadyError(
            f"cannot read {ref}: {created.stderr.strip()}",
            "dataops up; then dataops images build --push",
        )
    container = created.stdout.strip()
    try:
        partial = cached.with_suffix(".part")
        subprocess.run(
            ["docker", "cp", f"{container}:{MANIFEST_PATH_IN_IMAGE}", str(partial)],
            capture_output=True,
            check=True,
        )
        partial.replace(cached)
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True, check=False)
    return cached
