"""Pipeline specs compiled into a release: each spec's validated form as JSON, beside its YAML.

Loading a spec's YAML with the line of every value (`yaml_loader`) is most of
the first parse of a DAG after a release reaches a deployment. `dataops release create`
therefore compiles every spec of the release's `dags/` into the release's DAG layer (never
into the working tree): `pipelines/.compiled/<name>.json`, whose first line is the key and the
rest the validated spec as JSON. The DAG factory uses an entry only when its key matches:

- the key is the sha256 of the spec's bytes, its file name, the pydantic version and the source
  of the modules that load and validate a spec (another toolkit version is another key);
- the JSON is validated again by the same model (pydantic, fast) and its `pipeline` must
  match the file name, as for the YAML;
- anything else (no entry, another key, a torn file, JSON the model refuses) is a miss: the
  YAML is loaded and validated, and a bad spec fails naming its line, as before.

A spec that does not load gets no entry, so its DAG reports the same error a parse of the YAML
makes.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pydantic

from dataops.core import archive, config, pipeline, schema, yaml_loader
from dataops.core.pipeline import PipelineSpec, is_spec_name, load_spec
from dataops.errors import ConfigError

FOLDER = ".compiled"  # under pipelines/; a dot name, so it is never taken for a spec
FORMAT = b"dataops-compiled-spec/1"
SPECS = "pipelines/"  # the specs' folder in a dags layer's paths


@cache
def code_key() -> bytes:
    """What a validated spec depends on besides its bytes: the loader's and validator's code."""
    digest = hashlib.sha256(FORMAT + b"|" + pydantic.VERSION.encode())
    for module in (config, pipeline, schema, yaml_loader, sys.modules[__name__]):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.digest()


def key(name: str, raw: bytes) -> str:
    """The key of spec file `name` (e.g. `orders.yml`) whose bytes are `raw`."""
    return hashlib.sha256(code_key() + name.encode() + b"\0" + raw).hexdigest()


def entry_of(spec_path: Path) -> Path:
    return spec_path.parent / FOLDER / f"{spec_path.stem}.json"


def _spec_member(member: str) -> str | None:
    """The file name of a dags-layer path that is a spec (`pipelines/<name>.yml`), else None."""
    if not member.startswith(SPECS):
        return None
    name = member.removeprefix(SPECS)
    return name if "/" not in name and is_spec_name(name) else None  # as spec_files takes them


def compile_members(dags: Path, members: Mapping[str, bytes]) -> dict[str, bytes]:
    """The compiled entries of the specs among `members` (a dags layer's paths and bytes, read
    from the folder `dags`): one per spec that loads; a spec that does not is left out."""
    owned = [m for m in members if m.startswith(f"{SPECS}{FOLDER}/")]
    if owned:
        raise ConfigError(
            f"dags/{owned[0]}: dags/{SPECS}{FOLDER}/ is where a release keeps its compiled specs",
            f"remove dags/{SPECS}{FOLDER}/ from the project (the toolkit makes it in each release)",
        )
    compiled: dict[str, bytes] = {}
    for member, raw in members.items():
        name = _spec_member(member)
        if name is None:
            continue
        path = dags / member
        try:
            spec = load_spec(path, raw)
        except ConfigError:
            continue  # the DAG's parse reports it, naming the line
        body = spec.model_dump_json(by_alias=True).encode()
        compiled[f"{SPECS}{FOLDER}/{path.stem}.json"] = key(name, raw).encode() + b"\n" + body
    return compiled


def pack_dags(dags: Path) -> bytes:
    """A release's DAG layer: the folder `dags` as it is (archive.pack) plus its specs
    compiled."""
    members = archive.read_members(dags)
    compiled = compile_members(dags, {name: data for name, (data, _) in members.items()})
    return archive.pack_members(members, compiled)


def load(spec_path: Path, raw: bytes) -> PipelineSpec | None:
    """The spec compiled for `spec_path` whose bytes are `raw`, or None (a miss)."""
    try:
        data = entry_of(spec_path).read_bytes()
    except OSError:
        return None
    head, newline, body = data.partition(b"\n")
    if not newline or head != key(spec_path.name, raw).encode():
        return None
    try:
        spec = PipelineSpec.model_validate_json(body)
    except ValueError:  # pydantic's ValidationError, for a torn or edited entry
        return None
    return spec if spec.pipeline == spec_path.stem else None
