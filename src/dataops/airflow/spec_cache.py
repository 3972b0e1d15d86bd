"""Validated pipeline specs kept between DAG parses, keyed by the spec's bytes.

Airflow's dag-processor parses every DAG file again every `refresh_interval`, each in a fresh
process, so every parse used to load the spec's YAML and validate it again, most of the DAG's
parse, for a file that had not changed. `load(path)` keeps the validated spec in a cache
folder and returns it while the key is unchanged:

- the key is the sha256 of the spec's bytes, its file name, the Python and pydantic versions and the
  source of the modules that load and validate a spec (an edited validator is a new key);
- a release's own compiled spec (`dataops.core.compiled_specs`, in its DAG layer) is used
  first, when its key matches: the first parse of a release's DAG needs no YAML either;
- only a spec that loaded and validated is kept: a bad spec raises the same error on every parse;
- the folder is `DATAOPS_CACHE_DIR` (`dataops up` gives each deployment its own), else
  `~/.cache/dataops`. It is used only when it is a directory of this user that nobody else may
  write to (the entries are pickles); anything else, or an entry that does not load, is a miss;
- an entry is written to a temporary file and renamed into place, so a killed parse never leaves
  a torn one, and parses running side by side at most write the same entry twice.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from functools import cache
from pathlib import Path

from dataops.core import compiled_specs
from dataops.core.pipeline import PipelineSpec, load_spec

SUBDIR = "specs"


@cache
def _code_key() -> bytes:
    """What a cached spec depends on besides its bytes: the loader's and validator's code, and
    the Python that pickled it."""
    return hashlib.sha256(sys.version.encode() + b"|" + compiled_specs.code_key()).digest()


def cache_dir() -> Path:
    root = os.environ.get("DATAOPS_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "dataops"


def _private_dir(folder: Path) -> bool:
    """Create `folder` (0700) if it is missing; True if it is this user's and only theirs."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def entry_for(path: Path, raw: bytes) -> Path:
    key = hashlib.sha256(_code_key() + path.name.encode() + b"\0" + raw)
    return cache_dir() / SUBDIR / f"{key.hexdigest()}.pickle"


def load(path: Path) -> PipelineSpec:
    """The validated spec of `path`: from the cache when its bytes were validated before, else
    loaded, validated and kept (errors are load_spec's, naming the file and line)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return load_spec(path)  # its own error, naming the file
    shipped = compiled_specs.load(path, raw)  # a release's own compiled spec
    if shipped is not None:
        return shipped
    entry = entry_for(path, raw)
    private = _private_dir(entry.parent)
    if private:
        try:
            spec = pickle.loads(entry.read_bytes())
            if isinstance(spec, PipelineSpec):
                return spec
        except Exception:  # missing, torn or foreign: a miss
            pass
    spec = load_spec(path, raw)
    if private:
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, entry)
        except OSError:
            tmp.unlink(missing_ok=True)
    return spec
