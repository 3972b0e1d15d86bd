"""`dataops lint`: sqlfluff over the dbt models, hadolint over the Dockerfiles, schema checks of
the YAML specs. Needs no warehouse and no credentials; each tool runs in a subprocess with a
time limit. A file sqlfluff skips (too large) or cannot parse is a finding, never a silent pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from dataops.core.config import LoadedConfig
from dataops.errors import ConfigError, DataOpsError, NotReadyError
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


def sql_findings(root: Path, files: list[Path], *, fix: bool, timeout: float) -> list[Finding]:
    if not files:
        return []
    config = str(root / "dbt_project" / ".sqlfluff")
    paths = [str(p) for p in files]
    if fix:
        _run(
            [_tool("sqlfluff"), "fix", *paths, "--config", config, "--processes", "1"],
            timeout,
            "sqlfluff fix",
        )
    argv = [
        _tool("sqlfluff"),
        "lint",
        *paths,
        "--config",
        config,
        "--format",
        "json",
        "--nofail",
        "--processes",
        "1",
    ]
    output = _run(argv, timeout, "sqlfluff lint")
    try:
        records = json.loads(output.stdout)
    except ValueError:
        raise DataOpsError(f"sqlfluff gave no report: {output.stderr.strip()[-1000:]}") from None
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
                    "dbt_project/.sqlfluff, or not readable): it was not linted",
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

    findings = []
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


def lint(
    project: Project, *, all_files: bool, base: str, fix: bool, timeout: float
) -> tuple[list[Finding], dict[str, int]]:
    """Every finding, and how many files of each kind were checked."""
    loaded = project.loaded
    root = loaded.root
    models = root / "dbt_project" / "models"
    candidates = None if all_files else set(changed_files(root, base))

    def pick(paths: Iterable[Path]) -> list[Path]:
        found = sorted(paths)
        return found if candidates is None else [p for p in found if p in candidates]

    sql = pick(models.rglob("*.sql"))
    images = root / "images"
    dockerfiles = pick([*images.glob("*/Dockerfile"), *images.glob("*.Dockerfile")])
    specs = pick((root / "dags" / "pipelines").glob("*.yml"))
    migrations = pick((root / loaded.config.migrations.path).glob("*.sql"))
    workflows = pick((root / ".github" / "workflows").glob("*.yml"))
    gitlab = pick(p for p in [root / ".gitlab-ci.yml"] if p.exists())
    findings = sql_findings(root, sql, fix=fix, timeout=timeout)
    findings += docker_findings(root, dockerfiles, timeout)
    findings += spec_findings(loaded, specs)
    findings += migration_findings(loaded, migrations)
    findings += ci_definition_findings(loaded, project.state.cache, workflows, gitlab, timeout)
    counts = {"sql": len(sql), "dockerfiles": len(dockerfiles), "specs": len(specs)}
    counts |= {"migrations": len(migrations), "ci files": len(workflows) + len(gitlab)}
    return findings, counts
