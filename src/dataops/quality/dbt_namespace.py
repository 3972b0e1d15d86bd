"""dbt package macros (`dbt_utils.star(...)`) for sqlfluff's jinja templater.

sqlfluff's jinja templater loads macros as top-level names only; dbt calls a package's macros
through the package's name. `dataops lint` writes one module per installed package into a
`library_path` folder, each `__getattr__ = namespace([macro dirs])`: attribute access returns the
package's macro, rendered with plain Jinja. A macro that needs dbt's runtime (adapter.dispatch,
return(), run_query) renders as a placeholder identifier, enough for sqlfluff to parse the SQL
around it; what such a macro itself generates is dbt's to check, not the linter's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

# dbt's own block tags, as the macros dbt makes of them: `{% test x(` is the macro test_x.
_BLOCK = re.compile(r"\{%(-?)\s*(test|materialization)\s+(\w+)\s*\(")
_BLOCK_END = re.compile(r"\{%-?\s*end(?:test|materialization)\s*-?%\}")


def namespace(macro_dirs: list[str]) -> Callable[[str], Callable[..., str]]:
    macros: dict[str, Any] = {}
    loaded: list[bool] = []

    def load() -> dict[str, Any]:
        if not loaded:
            import jinja2
            from jinja2.runtime import Macro

            env = jinja2.Environment(extensions=["jinja2.ext.do"])
            for folder in macro_dirs:
                for path in sorted(Path(folder).rglob("*.sql")):
                    source = _BLOCK_END.sub("{% endmacro %}", path.read_text(errors="replace"))
                    source = _BLOCK.sub(r"{%\1 macro \2_\3(", source)
                    try:
                        module = env.from_string(source).module
                    except Exception:  # plain Jinja cannot load this file: placeholders
                        continue
                    for key in dir(module):
                        value = getattr(module, key)
                        if isinstance(value, Macro):
                            macros.setdefault(key, value)
            loaded.append(True)
        return macros

    def attribute(name: str) -> Callable[..., str]:
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> str:
            macro = load().get(name)
            if macro is not None:
                try:
                    return str(macro(*args, **kwargs))
                except Exception:  # needs dbt's runtime
                    pass
            return f"{name}_placeholder"

        return call

    return attribute
