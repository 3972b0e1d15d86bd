"""Warehouse migrations as files: naming, checksums, statements, destructive-change lint.

Pure: no database. `dataops.release.migrator` applies what this module reads.

Files in `migrations/`:
  V<version>__<description>.sql   versioned: applied once, in version order (1, 1.1, 2, 10)
  R__<name>.sql                   repeatable: applied again whenever its checksum changes
  U<version>__<description>.sql   undo of version <version> (optional; never run by `apply`)

Header comments (lines starting with `--` before the first statement):
  -- dataops:no-transaction       the migration cannot run in a transaction (e.g. CREATE INDEX
                                  CONCURRENTLY): its statements run one by one, and a failure
                                  is recorded and blocks further applies until repaired
  -- dataops:allow-destructive REASON
                                  DROP, TRUNCATE, RENAME or a narrowing type change is meant
A line `-- verify` starts the checks: each query after it must return true; they run after the
migration, in its transaction (a false check rolls it back).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from dataops.errors import ConfigError

_VERSIONED = re.compile(r"^([VU])(\d+(?:[._]\d+)*)__([A-Za-z0-9_]+)\.sql$")
_REPEATABLE = re.compile(r"^R__([A-Za-z0-9_]+)\.sql$")
NO_TRANSACTION = "dataops:no-transaction"
ALLOW_DESTRUCTIVE = "dataops:allow-destructive"


class Kind(StrEnum):
    VERSIONED = "versioned"
    REPEATABLE = "repeatable"
    UNDO = "undo"


def checksum(text: str) -> str:
    """sha256 of the text with line endings normalized (CRLF and CR count as LF)."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    return hashlib.sha256(normalized.encode()).hexdigest()


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.split(r"[._]", text))


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


@dataclass(frozen=True)
class Migration:
    path: Path
    kind: Kind
    version: tuple[int, ...] | None  # None for repeatable
    description: str
    text: str
    checksum: str
    transactional: bool
    allow_destructive: str | None  # the reason given, if any
    statements: tuple[str, ...]
    verify: tuple[str, ...]

    @property
    def script(self) -> str:
        return self.path.name

    @property
    def version_label(self) -> str:
        return version_text(self.version) if self.version else ""

    def line_of(self, needle: str) -> int:
        index = self.text.find(needle)
        return self.text.count("\n", 0, index) + 1 if index >= 0 else 1


@dataclass
class MigrationSet:
    versioned: list[Migration] = field(default_factory=list)
    repeatable: list[Migration] = field(default_factory=list)
    undo: dict[tuple[int, ...], Migration] = field(default_factory=dict)


def read_migration(path: Path) -> Migration:
    name = path.name
    text = path.read_text(encoding="utf-8")
    if match := _VERSIONED.match(name):
        kind = Kind.VERSIONED if match.group(1) == "V" else Kind.UNDO
        version: tuple[int, ...] | None = parse_version(match.group(2))
        description = match.group(3).replace("_", " ")
    elif match := _REPEATABLE.match(name):
        kind, version, description = Kind.REPEATABLE, None, match.group(1).replace("_", " ")
    else:
        raise ConfigError(
            f"{path}: not a migration file name",
            "name it V<version>__<description>.sql, R__<name>.sql or U<version>__<desc>.sql "
            "(letters, digits and underscores)",
        )
    header = _header(text)
    parts = re.split(r"(?im)^\s*--\s*verify\s*$", text, maxsplit=1)
    body, checks = parts[0], parts[1] if len(parts) > 1 else ""
    allow = next(
        (
            line.split(ALLOW_DESTRUCTIVE, 1)[1].strip() or "yes"
            for line in header
            if ALLOW_DESTRUCTIVE in line
        ),
        None,
    )
    statements = tuple(split_statements(body))
    if not statements and kind is not Kind.UNDO:
        raise ConfigError(f"{path}: no SQL statement", "write the migration, or delete the file")
    return Migration(
        path=path,
        kind=kind,
        version=version,
        description=description,
        text=text,
        checksum=checksum(text),
        transactional=not any(NO_TRANSACTION in line for line in header),
        allow_destructive=allow,
        statements=statements,
        verify=tuple(split_statements(checks)),
    )


def _header(text: str) -> list[str]:
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith("--"):
            lines.append(stripped)
        elif stripped:
            break
    return lines


def read_migrations(folder: Path) -> MigrationSet:
    """Every migration file of `folder`; duplicate versions are an error naming both files."""
    found = MigrationSet()
    if not folder.is_dir():
        return found
    seen: dict[tuple[tuple[int, ...], Kind], Path] = {}
    for path in sorted(folder.glob("*.sql")):
        migration = read_migration(path)
        if migration.version is not None:
            key = (migration.version, migration.kind)
            if key in seen:
                raise ConfigError(
                    f"duplicate version {migration.version_label}: {seen[key]} and {path}",
                    "give one of them the next free version number",
                )
            seen[key] = path
        if migration.kind is Kind.VERSIONED:
            found.versioned.append(migration)
        elif migration.kind is Kind.REPEATABLE:
            found.repeatable.append(migration)
        else:
            assert migration.version is not None
            found.undo[migration.version] = migration
    found.versioned.sort(key=lambda m: m.version or ())
    return found


def split_statements(sql: str) -> list[str]:
    """Split SQL on top-level semicolons, minding quotes, dollar quotes and comments."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            current.append(sql[i:end])
            i = end
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            current.append(sql[i:end])
            i = end
            continue
        if char in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:  # doubled quote
                        end += 2
                        continue
                    break
                end += 1
            current.append(sql[i : end + 1])
            i = end + 1
            continue
        if char == "$":
            match = re.match(r"\$[A-Za-z_]*\$", sql[i:])
            if match:
                tag = match.group(0)
                end = sql.find(tag, i + len(tag))
                end = n if end < 0 else end + len(tag)
                current.append(sql[i:end])
                i = end
                continue
        if char == ";":
            statements.append("".join(current))
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    without = re.sub(r"--[^\n]*", "", statement)
    without = re.sub(r"/\*.*?\*/", "", without, flags=re.S)
    return bool(without.strip())


# -- destructive-change lint -----------------------------------------------------------------
_DESTRUCTIVE = [
    (
        re.compile(r"^\s*drop\s+(table|schema|column|view|index|materialized\s+view)\b", re.I),
        "DROP",
    ),
    (re.compile(r"\bdrop\s+column\b", re.I), "DROP COLUMN"),
    (re.compile(r"^\s*truncate\b", re.I), "TRUNCATE"),
    (re.compile(r"\brename\b", re.I), "RENAME"),
    (
        re.compile(
            r"\balter\s+column\s+\S+\s+(set\s+data\s+)?type\s+(\w+(\s*\(\s*\d+[^)]*\))?)", re.I
        ),
        "TYPE CHANGE",
    ),
    (re.compile(r"^\s*delete\s+from\b(?![\s\S]*\bwhere\b)", re.I), "DELETE without WHERE"),
]
_NARROW = re.compile(
    r"\b(smallint|int2|integer|int4|int|real|float4|varchar\s*\(\s*\d+\s*\)|"
    r"character\s+varying\s*\(\s*\d+\s*\)|char\s*\(\s*\d+\s*\)|numeric\s*\(\s*\d+[^)]*\)|"
    r"date|boolean)(?!\w)",
    re.I,
)


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:1 {self.rule} {self.message}"


def destructive_changes(migration: Migration) -> list[Finding]:
    """DROP, TRUNCATE, RENAME, DELETE without WHERE and narrowing type changes in a versioned
    migration without `-- dataops:allow-destructive REASON` (undo scripts are destructive by
    nature and are not linted)."""
    if migration.kind is Kind.UNDO or migration.allow_destructive:
        return []
    findings = []
    seen: set[tuple[int, str]] = set()
    for statement in migration.statements:
        code = re.sub(r"--[^\n]*", "", statement)
        for pattern, what in _DESTRUCTIVE:
            match = pattern.search(code)
            if not match:
                continue
            if what == "TYPE CHANGE" and not _NARROW.search(match.group(2) or ""):
                continue  # widening (e.g. to text or bigint) loses nothing
            line = migration.line_of(statement.split("\n", 1)[0])
            if (line, what) in seen or (what == "DROP" and (line, "DROP COLUMN") in seen):
                continue
            seen.add((line, what))
            findings.append(
                Finding(
                    migration.path,
                    line,
                    "MIG01",
                    f"destructive change ({what}) without `-- {ALLOW_DESTRUCTIVE} REASON` "
                    "in the header",
                )
            )
    return findings
