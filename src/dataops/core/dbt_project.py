"""A team's dbt project as the toolkit sees it: its files, the profile the toolkit writes for it,
the toolkit's macros woven into a build copy, and the checks that keep write-audit-publish and
slim CI inside their schemas.

Pure: reads files, returns text and findings; running dbt is `dataops.clients.dbt`'s job.

The toolkit never edits the team's project. What it runs is a *build copy* of it:
- `profiles.yml` written by the toolkit (the project's own is not read): one output per dbt
  target, credentials from the libpq variables of whoever runs dbt (a task container, CI);
- the toolkit's macros (`dataops_toolkit.sql`): `generate_schema_name`, which routes every node
  into `<published schema>__audit_<name>` when the var `dataops_audit` is set and otherwise
  returns what the project's own naming returns; and `dataops_audit_prepare`, an on-run-start
  hook that starts incremental models and snapshots from a copy of their published tables;
- a project that ships its own `generate_schema_name` keeps it: the copy renames it to
  `dataops_project_generate_schema_name` and the toolkit's macro calls it.
Then `audit_routing_problems` proves on the parsed manifests that every node does land in its
audit schema; a project where it would not is refused before any image is built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataops.core.yaml_loader import load_yaml_file
from dataops.errors import ConfigError

TOOLKIT_MACROS = Path(__file__).with_name("dbt_toolkit.sql")
TOOLKIT_MACRO_FILE = "dataops_toolkit.sql"  # its name inside the build copy's first macro path
TARGETS_FILE = ".dataops-targets.json"  # {environment: dbt target}, read by the transform task
AUDIT_PROBE = "probe"
AUDIT_INFIX = "__audit_"
PROJECT_SCHEMA_MACRO = "dataops_project_generate_schema_name"
PROJECT_WHERE_MACRO = "dataops_project_get_where_subquery"
BUILT_RESOURCES = ("model", "seed", "snapshot")
_SCHEMA_MACRO = re.compile(r"(\{%[-+]?\s*macro\s+)generate_schema_name(\s*\()")
_WHERE_MACRO = re.compile(r"(\{%[-+]?\s*macro\s+)get_where_subquery(\s*\()")
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)


@dataclass(frozen=True)
class Package:
    kind: str  # local | hub | git | tarball | private
    name: str  # what packages.yml names (a path, hub name or URL)


@dataclass(frozen=True)
class DbtProjectFile:
    """What the toolkit reads from a dbt project's dbt_project.yml and packages.yml."""

    root: Path
    name: str
    profile: str | None
    macro_paths: tuple[str, ...]
    packages_install_path: str
    data: dict[str, Any]
    packages: tuple[Package, ...]

    @property
    def packages_dir(self) -> Path:
        return self.root / self.packages_install_path

    def generated_dirs(self) -> set[str]:
        """Top-level folders dbt writes (never inputs): target-path, log-path; and what is
        never part of a dbt project (git, venvs, the toolkit's state)."""
        names = {
            str(self.data.get("target-path") or "target"),
            str(self.data.get("log-path") or "logs"),
        }
        return names | {".git", ".venv", ".dataops", ".user.yml"}

    def missing_packages(self) -> list[Package]:
        """Hub and git packages with no folder of their name in the packages folder yet."""
        installed = {
            p.name for p in self.packages_dir.glob("*") if (p / "dbt_project.yml").exists()
        }
        return [p for p in self.remote_packages() if package_dir_name(p) not in installed]

    def uninstalled_packages(self) -> list[Package]:
        """What `dbt parse` would miss: it refuses a project whose packages folder holds fewer
        packages than packages.yml names, local ones included (`dbt deps` links those in)."""
        folders = {
            p.name
            for p in self.packages_dir.glob("*")
            if p.is_dir() and not p.name.startswith("__")
        }
        if len(folders) >= len(self.packages):
            return []
        missing = [p for p in self.packages if _installed_name(self.root, p) not in folders]
        return missing or list(self.packages)

    def local_package_dirs(self) -> list[Path]:
        return [(self.root / p.name).resolve() for p in self.packages if p.kind == "local"]

    def remote_packages(self) -> list[Package]:
        return [p for p in self.packages if p.kind != "local"]


def read_project(root: Path) -> DbtProjectFile:
    path = root / "dbt_project.yml"
    if not path.is_file():
        raise ConfigError(
            f"{path}: no dbt_project.yml",
            "point dbt.project_dir in dataops.yml at the folder that holds dbt_project.yml",
        )
    data = load_yaml_file(path).data
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(f"{path}:1:1: dbt_project.yml has no `name`", "give the project a name")
    macro_paths = data.get("macro-paths") or ["macros"]
    packages: list[Package] = []
    for file in ("packages.yml", "dependencies.yml"):
        if (root / file).is_file():
            packages += _packages(root / file)
    return DbtProjectFile(
        root=root,
        name=data["name"],
        profile=data.get("profile") if isinstance(data.get("profile"), str) else None,
        macro_paths=tuple(str(p) for p in macro_paths),
        packages_install_path=str(data.get("packages-install-path") or "dbt_packages"),
        data=data,
        packages=tuple(packages),
    )


def _packages(path: Path) -> list[Package]:
    data = load_yaml_file(path).data
    entries = data.get("packages") if isinstance(data, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: `packages` must be a list", "see dbt's packages.yml docs")
    found = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: packages[{index}] must be a map")
        for kind in ("local", "package", "git", "tarball", "private"):
            if kind in entry:
                found.append(Package("hub" if kind == "package" else kind, str(entry[kind])))
                break
        else:
            raise ConfigError(
                f"{path}: packages[{index}] has none of local, package, git, tarball, private"
            )
    return found


def dbt_target(project_dir: Path, environment: str) -> str:
    """The dbt target of `environment` recorded in a build copy (the name itself if none)."""
    try:
        targets = json.loads((project_dir / TARGETS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return environment
    return str(targets.get(environment, environment))


def _rename_macro(pattern: re.Pattern[str], new_name: str, text: str) -> tuple[str, int]:
    comments = [m.span() for m in _COMMENT.finditer(text)]
    count = 0

    def rename(match: re.Match[str]) -> str:
        nonlocal count
        if any(start <= match.start() < end for start, end in comments):
            return match.group(0)
        count += 1
        return f"{match.group(1)}{new_name}{match.group(2)}"

    return pattern.sub(rename, text), count


def wrap_schema_macro(text: str) -> tuple[str, int]:
    """The macro file with the project's own `generate_schema_name` renamed so the toolkit's
    can call it (a definition inside a Jinja comment is left alone); and how many were."""
    return _rename_macro(_SCHEMA_MACRO, PROJECT_SCHEMA_MACRO, text)


def wrap_where_macro(text: str) -> tuple[str, int]:
    """The same for the project's own `get_where_subquery` (tests' `where`): the toolkit's
    fills in the changed-rows bounds and hands every other `where` to the project's."""
    return _rename_macro(_WHERE_MACRO, PROJECT_WHERE_MACRO, text)


def toolkit_macros(project_has_own: bool, project_has_own_where: bool = False) -> str:
    """The toolkit's macros for a build copy (calling the project's naming and where filter
    if it has them)."""
    # Without a macro of its own, dbt's dispatch: the project's or a package's
    # <adapter>__generate_schema_name / default__ override, else dbt's default.
    naming = (
        PROJECT_SCHEMA_MACRO
        if project_has_own
        else "adapter.dispatch('generate_schema_name', 'dbt')"
    )
    where = (
        PROJECT_WHERE_MACRO
        if project_has_own_where
        else "adapter.dispatch('get_where_subquery', 'dbt')"
    )
    return (
        TOOLKIT_MACROS.read_text()
        .replace("__PROJECT_NAMING__", naming)
        .replace("__PROJECT_WHERE__", where)
    )


def with_audit_hook(data: dict[str, Any]) -> dict[str, Any]:
    """dbt_project.yml's data with the toolkit's on-run-start hook first."""
    hooks = data.get("on-run-start") or []
    hooks = [hooks] if isinstance(hooks, str) else list(hooks)
    return {**data, "on-run-start": ["{{ dataops_audit_prepare() }}", *hooks]}


def profiles_yml(
    profile: str, targets: Iterable[str], default: str, schema: str, threads: int
) -> str:
    """The profile the toolkit runs dbt with: credentials and database from libpq's variables
    (what task containers and CI get), the schema from DBT_SCHEMA (slim CI's CI schema)."""
    lines = [
        "# Written by dataops: credentials come from the environment running dbt.",
        f"{profile}:",
        f"  target: \"{{{{ env_var('DBT_TARGET', '{default}') }}}}\"",
        "  outputs:",
    ]
    for name in dict.fromkeys(targets):
        lines += [
            f"    {name}:",
            "      type: postgres",
            "      host: \"{{ env_var('PGHOST', '127.0.0.1') }}\"",
            "      port: \"{{ env_var('PGPORT', '5432') | as_number }}\"",
            "      user: \"{{ env_var('PGUSER') }}\"",
            "      password: \"{{ env_var('PGPASSWORD') }}\"",
            "      dbname: \"{{ env_var('PGDATABASE') }}\"",
            f"      schema: \"{{{{ env_var('DBT_SCHEMA', '{schema}') }}}}\"",
            f"      threads: {threads}",
        ]
    return "\n".join(lines) + "\n"


def built_nodes(manifest: dict[str, Any]) -> dict[str, str]:
    """{unique_id: schema} of every node dbt builds a relation for (models, seeds, snapshots)."""
    return {
        uid: node["schema"]
        for uid, node in manifest.get("nodes", {}).items()
        if node.get("resource_type") in BUILT_RESOURCES
        and node.get("config", {}).get("materialized") != "ephemeral"
    }


def audit_routing_problems(published: dict[str, Any], audit: dict[str, Any]) -> list[str]:
    """Nodes that would not land in their audit schema during write-audit-publish: compares the
    manifest parsed without the var `dataops_audit` with one parsed with `dataops_audit: probe`."""
    before, after = built_nodes(published), built_nodes(audit)
    problems = []
    for uid, schema in sorted(before.items()):
        expected = schema + AUDIT_INFIX + AUDIT_PROBE
        got = after.get(uid)
        if got != expected:
            problems.append(f"{uid} would be built in {got!r}, not its audit schema {expected!r}")
    return problems


def out_of_scope(schemas: dict[str, str], ci_schema: str) -> list[str]:
    """Nodes slim CI would build outside its own schemas (`ci_schema` and `ci_schema_*`)."""
    return sorted(
        f"{uid} in schema {schema!r}"
        for uid, schema in schemas.items()
        if not in_ci_scope(schema, ci_schema)
    )


def foreign_ci_schemas(
    planned: Iterable[str], others: Iterable[tuple[str, list[str]]]
) -> list[str]:
    """The planned schemas that another registered CI run owns (its CI schema or one of its
    derived schemas): branch `feat` with `+schema: staging` and branch `feat-staging` meet in
    `ci_feat_staging`."""
    taken = {name for row, schemas in others for name in (row, *schemas)}
    return sorted(set(planned) & taken)


def in_ci_scope(schema: str, ci_schema: str) -> bool:
    return ci_schema.startswith("ci_") and (
        schema == ci_schema or schema.startswith(ci_schema + "_")
    )


def _installed_name(root: Path, package: Package) -> str:
    """The folder `dbt deps` installs `package` into: a local one under its project's name."""
    if package.kind == "local":
        try:
            return read_project((root / package.name).resolve()).name
        except ConfigError:
            pass
    return package_dir_name(package)


def package_dir_name(package: Package) -> str:
    """The folder dbt deps installs a package into, as far as packages.yml tells (a hub
    package's name after the slash; a git or tarball URL's last segment)."""
    name = package.name.rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix(".git").removesuffix(".tar.gz").replace("-", "_")
