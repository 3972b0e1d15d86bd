"""The release record: what was built and tested together, as a typed model.

A release's record is the JSON document stored as its artifact's config in `dataops/releases`
(the release id is that artifact's manifest digest, so the stored bytes must never change:
`payload()` writes exactly the keys the record has, sorted, as they were always written).
Records made by older versions of the toolkit are read through `SCHEMA_CHANGES`, which says
for each schema version what changed, so an old record reads with a precise meaning instead
of a missing key somewhere down the call chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dataops.errors import DataOpsError, ExitCode

SCHEMA = 2  # the schema version `dataops release create` writes

# What changed in each schema version, for records written before it: (version, key, change).
# `added`: older records lack the key and read it as its default (None: not known then).
# `renamed:<old>`: older records call it <old>. `removed`: older records' key is dropped.
SCHEMA_CHANGES: tuple[tuple[int, str, str], ...] = (
    (2, "git_dirty", "added"),  # files that differed from the commit when the release was made
    (2, "sources", "added"),  # the DAG code and migrations as layers of the release
)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ReleaseImage(_Record):
    """One task image of a release, by digest, with the content hash it was pushed under."""

    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    tag: str


class SourceLayer(_Record):
    """A layer of the release artifact (a tar.gz of a folder), by digest and size."""

    digest: str
    size: int


class ReleaseSources(_Record):
    dags: SourceLayer
    migrations: SourceLayer


class ReleaseRecord(_Record):
    """A release record (schema 2), read from any schema the toolkit ever wrote."""

    record_schema: int = Field(SCHEMA, alias="schema")
    project: str
    git_commit: str
    git_dirty: list[str] | None = None
    sources: ReleaseSources | None = None  # None: a schema-1 release, with no DAG code
    images: dict[str, ReleaseImage]
    dbt_manifest_sha256: str
    migration_version: str | None
    migration_checksums: dict[str, str] = Field(default_factory=dict)

    @property
    def carries_code(self) -> bool:
        """The release has its DAG code and migrations as layers (schema 2 and later)."""
        return self.sources is not None

    def image_digests(self) -> dict[str, str]:
        return {name: image.digest for name, image in sorted(self.images.items())}

    def document(self) -> dict[str, Any]:
        """The record as JSON data, with exactly the keys it was stored with."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def payload(self) -> bytes:
        """The stored bytes (what the release id covers)."""
        return json.dumps(self.document(), indent=2, sort_keys=True).encode()

    def tag(self) -> str:
        """The release's tag in `dataops/releases`."""
        return "release-" + hashlib.sha256(self.payload()).hexdigest()[:20]

    @classmethod
    def parse(cls, data: bytes | str | dict[str, Any], origin: str) -> ReleaseRecord:
        """A stored record, read by the rules of its schema; `origin` (e.g. the release id and
        the registry) names it in errors."""
        try:
            raw = json.loads(data) if isinstance(data, bytes | str) else dict(data)
        except ValueError as exc:
            raise _unreadable(origin, f"it is not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise _unreadable(origin, "it is not a JSON object")
        version = raw.get("schema", 1)
        if not isinstance(version, int) or version > SCHEMA:
            raise DataOpsError(
                f"release record {origin} has schema {version!r}; this dataops reads up to "
                f"schema {SCHEMA}",
                "upgrade dataops to the version that made the release",
                exit_code=ExitCode.USAGE,
            )
        for since, key, change in SCHEMA_CHANGES:
            if version >= since:
                continue
            if change.startswith("renamed:"):
                old = change.split(":", 1)[1]
                if old in raw:
                    raw[key] = raw.pop(old)
            elif change == "removed":
                raw.pop(key, None)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise _unreadable(origin, problems) from None


def _unreadable(origin: str, why: str) -> DataOpsError:
    return DataOpsError(
        f"release record {origin} cannot be read: {why}",
        "the registry holds something that is not a dataops release; make a new release",
    )
