"""`dataops lint`: sqlfluff over the dbt models, hadolint over the Dockerfiles, schema checks of
the YAML specs. Needs no warehouse and no credentials; each tool runs in a subprocess with a
time limit. A file sqlfluff skips (too large) or cannot parse is a finding, never a silent pass.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dataops.core import dbt_project
from dataops.core.config import LoadedConfig
from dataops.errors import ConfigError, DataOpsError, ExitCode, NotReadyError, tool_message
from dataops.project.environment import Project


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    column: int
    rule: str
    message: str
    tool: str

    def text(self) -> str:
        return f"{self.file}:{self.line}:{self.column} {self.rule} {self.message}"

    def github(self) -> str:
        message = self.message.replace("%", "%25").replace("\n", "%0A")
        where = f"file={self.file},line={self.line},col={self.column}"
        return f"::error {where},title={self.rule}::{message}"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise NotReadyError(f"{name} is not installed in {sys.prefix}", "make setup")
    return str(path)


def changed_files(root: Path, base: str) -> list[Path]:
    """Files changed since the merge base of `base` and HEAD, plus uncommitted and untracked."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DataOpsError(
                f"git {' '.join(args)} failed: {result.stderr.strip()}",
                "pass --base REF (a branch or commit), or --all",
            )
        return result.stdout

    merge_base = git("merge-base", base, "HEAD").strip()
    names = set(git("diff", "--name-only", merge_base).split())
    names |= set(git("ls-files", "--others", "--exclude-standard").split())
    return sorted(root / n for n in names if (root / n).exists())


@dataclass
class SqlfluffSetup:
    """The config `dataops lint` runs sqlfluff with: the project's own, made hermetic."""

    config: Path
    source: Path | None  # the project's .sqlfluff it was made from
    notes: list[str] = field(default_factory=list)


def sqlfluff_setup(
    loaded: LoadedConfig, project: dbt_project.DbtProjectFile, work: Path
) -> SqlfluffSetup:
    """The project's .sqlfluff (dbt.sqlfluff_config, default <project>/.sqlfluff) with the jinja
    templater fed the project's macros and its packages' (as `package.macro`), written to
    `work`. sqlfluff then runs with --ignore-local-config: no config of a parent folder, the
    home folder or the cwd leaks in."""
    dbt = loaded.config.dbt
    root = project.root
    source = (loaded.root / dbt.sqlfluff_config) if dbt.sqlfluff_config else root / ".sqlfluff"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # context names keep case
    notes: list[str] = []
    if source.is_file():
        try:
            parser.read(source)
        except configparser.Error as exc:
            raise ConfigError(
                f"{source}: not a valid sqlfluff config: {str(exc).splitlines()[0]}",
                "fix the file (INI format, see sqlfluff's configuration docs)",
            ) from None
    elif dbt.sqlfluff_config:
        raise ConfigError(
            f"dbt.sqlfluff_config names {source}, which does not exist",
            "point it at the project's .sqlfluff, or remove the key",
        )
    else:
        notes.append(f"{source} does not exist: sqlfluff's defaults with dialect postgres")
    for section in ("sqlfluff", "sqlfluff:templater:jinja"):
        if not parser.has_section(section):
            parser.add_section(section)
    main = parser["sqlfluff"]
    main.setdefault("dialect", "postgres")
    templater = main.get("templater", "jinja")
    if templater == "dbt":
        notes.append(
            f"{source.name}: templater = dbt is replaced by the jinja templater with the "
            "project's and packages' macros (the dbt templater needs a warehouse connection "
            "and is slower; see docs/how-to/bring-your-dbt-project.md); every other setting "
            "is the project's"
        )
    elif templater not in ("jinja", "raw", "placeholder", "python"):
        raise ConfigError(f"{source}: unknown sqlfluff templater {templater!r}")
    if templater in ("dbt", "jinja"):
        main["templater"] = "jinja"
        jinja = parser["sqlfluff:templater:jinja"]
        jinja["apply_dbt_builtins"] = "True"
        # The team's own macro paths (relative to its config file) come first.
        own = [
            str((source.parent / p.strip()).resolve())
            for p in jinja.get("load_macros_from_path", "").split(",")
            if p.strip()
        ]
        macro_dirs = own + [str(root / p) for p in project.macro_paths if (root / p).is_dir()]
        library = work / "packages"
        shutil.rmtree(library, ignore_errors=True)
        library.mkdir(parents=True)
        for name, folders in package_macros(project).items():
            macro_dirs += folders
            (library / f"{name}.py").write_text(
                "from dataops.quality.dbt_namespace import namespace\n\n"
                f"__getattr__ = namespace({folders!r})\n"
            )
        if macro_dirs:
            jinja["load_macros_from_path"] = ",".join(dict.fromkeys(macro_dirs))
        if jinja.get("library_path"):  # sqlfluff takes one: the team's, resolved
            jinja["library_path"] = str((source.parent / jinja["library_path"]).resolve())
            notes.append(
                "the project's library_path is used, so package macros called as "
                "`package.macro(...)` are not rendered by dataops"
            )
        else:
            jinja["library_path"] = str(library)
    config = work / "sqlfluff.cfg"
    with config.open("w") as out:
        parser.write(out)
    return SqlfluffSetup(config, source if source.is_file() else None, notes)


def install_remote_packages(
    loaded: LoadedConfig, project: dbt_project.DbtProjectFile, log_path: Path
) -> list[str]:
    """`dbt deps` (dbt.packages: deps) when a hub or git package of the project is not installed
    yet, so that its macros render; local packages are read where they are."""
    from dataops.clients.dbt import install_packages
    from dataops.core.config import DbtPackages

    dbt = loaded.config.dbt
    if dbt.packages is not DbtPackages.DEPS or not project.missing_packages():
        return []
    notes: list[str] = []
    install_packages(project, dbt.packages, log_path, notes.append)
    return notes


def package_macros(project: dbt_project.DbtProjectFile) -> dict[str, list[str]]:
    """{package name: its macro folders} of the installed packages and the local ones."""
    folders = [p for p in sorted(project.packages_dir.glob("*")) if p.is_dir()]
    folders += project.local_package_dirs()
    found: dict[str, list[str]] = {}
    for folder in folders:
        if not (folder / "dbt_project.yml").is_file():
            continue
        package = dbt_project.read_project(folder)
        found.setdefault(
            package.name,
            [str(folder / p) for p in package.macro_paths if (folder / p).is_dir()],
        )
    missing = [p.name for p in project.missing_packages()]
    if missing:
        raise DataOpsError(
            f"{project.root.name}/packages.yml needs {', '.join(missing)}, which are not "
            f"installed in {project.packages_install_path}/: their macros cannot be rendered",
            f"run `dbt deps` in {project.root} (or vendor the packages, see "
            "docs/how-to/bring-your-dbt-project.md)",
            exit_code=ExitCode.USAGE,
        )
    return found


def sql_findings(
    root: Path, files: list[Path], setup: SqlfluffSetup, *, fix: bool, timeout: float
) -> list[Finding]:
    if not files:
        return []
    config = str(setup.config)
    paths = [str(p) for p in files]
    hermetic = ["--config", config, "--ignore-local-config", "--processes", "1"]
    if fix:
        _run([_tool("sqlfluff"), "fix", *paths, *hermetic], timeout, "sqlfluff fix")
    argv = [_tool("sqlfluff"), "lint", *paths, *hermetic, "--format", "json", "--nofail"]
    output = _run(argv, timeout, "sqlfluff lint")
    try:
        records = json.loads(output.stdout)
    except ValueError:
        said = tool_message(output.stdout + "\n" + output.stderr)
        raise DataOpsError(
            f"sqlfluff gave no report (exit {output.returncode}): {said or 'no output'}",
            f"fix the sqlfluff config ({setup.source or 'none'}) or the tool; the message above "
            "is sqlfluff's own",
            exit_code=ExitCode.USAGE,
        ) from None
    findings: list[Finding] = []
    seen: set[str] = set()
    for record in records:
        path = Path(record["filepath"]).resolve()
        seen.add(str(path))
        for v in record["violations"]:
            findings.append(
                Finding(
                    _rel(path, root),
                    int(v.get("start_line_no", 1)),
                    int(v.get("start_line_pos", 1)),
                    str(v.get("code", "SQL")),
                    str(v.get("description", "")),
                    "sqlfluff",
                )
            )
    for path in files:
        if str(path.resolve()) not in seen:
            findings.append(
                Finding(
                    _rel(path, root),
                    1,
                    1,
                    "SKIPPED",
                    "sqlfluff skipped this file (over large_file_skip_byte_limit in "
                    f"{setup.source.name if setup.source else '.sqlfluff'}, or not readable, or "
                    "ignored by .sqlfluffignore): it was not linted",
                    "sqlfluff",
                )
            )
    return findings


def docker_findings(root: Path, files: list[Path], timeout: float) -> list[Finding]:
    if not files:
        return []
    output = _run(
        [_tool("hadolint"), "--format", "json", "--no-fail", *map(str, files)], timeout, "hadolint"
    )
    findings = []
    for item in json.loads(output.stdout or "[]"):
        findings.append(
            Finding(
                _rel(Path(item["file"]), root),
                int(item["line"]),
                int(item.get("column", 1)),
                str(item["code"]),
                str(item["message"]),
                "hadolint",
            )
        )
    return findings


def spec_findings(loaded: LoadedConfig, files: list[Path]) -> list[Finding]:
    from dataops.core.pipeline import load_spec

    findings: list[Finding] = []
    for path in files:
        try:
            load_spec(path)
        except ConfigError as exc:
            findings.extend(_from_config_error(exc, path, loaded.root))
    return findings


def migration_findings(loaded: LoadedConfig, files: list[Path]) -> list[Finding]:
    """Bad migration file names and destructive changes without the allow annotation."""
    from dataops.core.migrations import destructive_changes, read_migration

    findings = []
    for path in files:
        try:
            migration = read_migration(path)
        except ConfigError as exc:
            findings.append(Finding(_rel(path, loaded.root), 1, 1, "MIG00", exc.reason, "dataops"))
            continue
        for found in destructive_changes(migration):
            findings.append(
                Finding(
                    _rel(path, loaded.root), found.line, 1, found.rule, found.message, "dataops"
                )
            )
    return findings


def ci_definition_findings(
    loaded: LoadedConfig, cache: Path, workflows: list[Path], gitlab: list[Path], timeout: float
) -> list[Finding]:
    """actionlint over GitHub workflows, GitLab's CI schema over .gitlab-ci.yml."""
    from dataops.quality.ci_files import actionlint, gitlab_schema

    findings = []
    if workflows:
        for item in actionlint(cache, workflows, timeout):
            findings.append(
                Finding(
                    _rel(Path(str(item["file"])), loaded.root),
                    int(str(item["line"])),
                    int(str(item["column"])),
                    str(item["kind"]),
                    str(item["message"]),
                    "actionlint",
                )
            )
    for path in gitlab:
        for message in gitlab_schema(_tool("check-jsonschema"), path, timeout):
            findings.append(Finding(_rel(path, loaded.root), 1, 1, "SCHEMA", message, "gitlab"))
    return findings


def _from_config_error(exc: ConfigError, path: Path, root: Path) -> Iterable[Finding]:
    for line in exc.reason.splitlines():
        parts = line.split(":", 3)
        if len(parts) == 4 and parts[1].strip().isdigit() and parts[2].strip().isdigit():
            yield Finding(
                _rel(path, root),
                int(parts[1]),
                int(parts[2]),
                "SCHEMA",
                parts[3].strip(),
                "dataops",
            )
        elif not line.endswith("problems in " + str(path)) and "problems in" not in line:
            yield Finding(_rel(path, root), 1, 1, "SCHEMA", line, "dataops")


def _run(argv: list[str], timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DataOpsError(
            f"{what} did not finish within {timeout:.0f}s", "raise --timeout, or lint fewer files"
        ) from None


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def dbt_sql_files(project: dbt_project.DbtProjectFile) -> list[Path]:
    """The SQL of the dbt project's models (its model-paths). Snapshots are not linted: a
    legacy `{% snapshot %}` block is a tag sqlfluff's jinja templater does not know."""
    folders = project.data.get("model-paths") or ["models"]
    return sorted({p for f in folders for p in (project.root / f).rglob("*.sql")})


def lint(
    project: Project, *, all_files: bool, base: str, fix: bool, timeout: float
) -> tuple[list[Finding], dict[str, int], list[str]]:
    """Every finding, how many files of each kind were checked, and notes on the setup."""
    loaded = project.loaded
    root = loaded.root
    candidates = None if all_files else {p.resolve() for p in changed_files(root, base)}

    def pick(paths: Iterable[Path]) -> list[Path]:
        found = sorted(paths)
        return found if candidates is None else [p for p in found if p.resolve() in candidates]

    dbt = dbt_project.read_project(loaded.dbt_dir)
    sql = pick(dbt_sql_files(dbt))
    notes = install_remote_packages(loaded, dbt, project.state.dbt_logs) if sql else []
    setup = sqlfluff_setup(loaded, dbt, project.state.cache / "lint")
    setup.notes[:0] = notes
    images = root / "images"
    dockerfiles = pick([*images.glob("*/Dockerfile"), *images.glob("*.Dockerfile")])
    specs = pick((root / "dags" / "pipelines").glob("*.yml"))
    migrations = pick((root / loaded.config.migrations.path).glob("*.sql"))
    workflows = pick((root / ".github" / "workflows").glob("*.yml"))
    gitlab = pick(p for p in [root / ".gitlab-ci.yml"] if p.exists())
    findings = sql_findings(root, sql, setup, fix=fix, timeout=timeout)
    findings += docker_findings(root, dockerfiles, timeout)
    findings += spec_findings(loaded, specs)
    findings += migration_findings(loaded, migrations)
    findings += ci_definition_findings(loaded, project.state.cache, workflows, gitlab, timeout)
    counts = {"sql": len(sql), "dockerfiles": len(dockerfiles), "specs": len(specs)}
    counts |= {"migrations": len(migrations), "ci files": len(workflows) + len(gitlab)}
    return findings, counts, setup.notes
