"""The dbt step's Jinja templates, compiled once when the transform image is built.

Targets dbt-core 1.11.16 with dbt-common 1.39.0 and Jinja2 3.1.6. Private internals touched:
`dbt_common.clients.jinja.MacroFuzzEnvironment` gets a `compile` of its own (assigned on the
class, removed by `uninstall`) with `jinja2.Environment.compile`'s signature; it reads
`dbt_common.clients.jinja.MACRO_DEBUGGING`, compiles with dbt's `get_environment(None,
capture_macros=False)`, and reads the sources from dbt's Manifest (`macros[...].macro_sql`,
`nodes[...].raw_code`).

Every dbt process compiles each macro it calls (and each node's SQL) from its Jinja source to
Python code: about 180 of them in one build of the example project, 0.3 s of CPU in every task
container, for sources that are the same in every run of an image. `bake` compiles the macros
and the node, hook and operation sources of the baked manifests once, with dbt's own Jinja
environment, and saves the code objects (marshal, this Python's format) next to the manifests.
`install` makes dbt's environment take a saved code object for a source it has, and compile any
other source as before.

The key of a code object is the Jinja and Python versions, the environment class and the whole
source: the code Jinja generates depends on nothing else for dbt's environment (fixed
extensions; `undefined` and the globals are looked up when the template runs, not compiled in).
A cache written by another Jinja or Python, or one that does not load, is not used.
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dataops.patches.dbt import DBT_COMMON, JINJA2, TARGET

TARGETS = (TARGET, DBT_COMMON, JINJA2)
UPGRADE_CHECK = (
    "dbt_common/clients/jinja.py: MacroFuzzEnvironment is still the class of the environment "
    "get_environment returns, still has no compile of its own (or the wrapper must call it), "
    "MACRO_DEBUGGING still exists; jinja2/environment.py: Environment.compile still has "
    "(source, name, filename, raw, defer_init) and returns a code object; dbt's Manifest still "
    "has macros[...].macro_sql and nodes[...].raw_code; run tests/unit/task/test_jinja_cache.py "
    "and tests/integration/test_baked_manifest.py"
)
_installed: dict[bytes, bytes] | None = None
_original: Any = None


def cache_path(state_dir: Path) -> Path:
    return state_dir / "jinja-code.marshal"


def _prefix(env_class: type) -> bytes:
    import jinja2

    return (
        f"{jinja2.__version__}|{sys.version_info[:3]}|{sys.implementation.cache_tag}"
        f"|{env_class.__module__}.{env_class.__qualname__}|"
    ).encode()


def _digest(prefix: bytes, source: str) -> bytes:
    return hashlib.sha256(prefix + source.encode()).digest()


def key(env_class: type, source: str) -> bytes:
    return _digest(_prefix(env_class), source)


def sources(manifest: Any) -> Iterable[str]:
    """The Jinja sources a build of `manifest` compiles: its macros, and the SQL of its nodes,
    hooks and operations."""
    for macro in manifest.macros.values():
        yield macro.macro_sql
    for node in manifest.nodes.values():
        if getattr(node, "raw_code", None):
            yield node.raw_code


def bake(manifests: Iterable[Any], state_dir: Path) -> Path:
    """Compile every source of `manifests` with dbt's environment and save the code."""
    from dbt_common.clients.jinja import get_environment

    env = get_environment(None, capture_macros=False)
    codes: dict[bytes, bytes] = {}
    for manifest in manifests:
        for source in sources(manifest):
            k = key(type(env), source)
            if k in codes:
                continue
            try:
                codes[k] = marshal.dumps(env.compile(source))
            except Exception:  # dbt reports it where (if) the source is used
                continue
    path = cache_path(state_dir)
    path.write_bytes(marshal.dumps(codes))
    return path


def install(state_dir: Path) -> int:
    """Let dbt's Jinja environment use the baked code objects; how many there are (0 when
    there is no usable cache: then every source compiles as before)."""
    global _installed, _original
    if _installed is not None:
        return len(_installed)
    try:
        loaded = marshal.loads(cache_path(state_dir).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return 0
    if not isinstance(loaded, dict) or not loaded:
        return 0
    from dbt_common.clients import jinja as dbt_jinja

    env_class = dbt_jinja.MacroFuzzEnvironment
    prefix = _prefix(env_class)
    original = env_class.__dict__.get("compile")  # None: jinja2.Environment's own
    inherited: Any = original or super(env_class, env_class).compile

    def compile(  # jinja2.Environment.compile's own name and signature
        self: Any,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if (
            type(self) is env_class
            and isinstance(source, str)
            and name is None
            and filename is None
            and not raw
            and not defer_init
            and not dbt_jinja.MACRO_DEBUGGING  # it writes the generated code out
        ):
            code = loaded.get(_digest(prefix, source))
            if code is not None:
                return marshal.loads(code)
        return inherited(self, source, name, filename, raw, defer_init)

    env_class.compile = compile  # type: ignore[method-assign]
    _installed, _original = loaded, original
    return len(loaded)


def uninstall() -> None:
    """Undo `install` (tests; a task process installs once and exits)."""
    global _installed, _original
    if _installed is None:
        return
    from dbt_common.clients import jinja as dbt_jinja

    if _original is None:
        del dbt_jinja.MacroFuzzEnvironment.compile
    else:
        dbt_jinja.MacroFuzzEnvironment.compile = _original  # type: ignore[method-assign]
    _installed = _original = None
