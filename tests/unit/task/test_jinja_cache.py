"""The dbt step's baked Jinja code (dataops.patches.dbt.jinja_cache), on another team's macros: a
baked source is not compiled again and renders the same, anything else compiles as before, and a
cache from another Jinja (or a torn file) is not used."""

from __future__ import annotations

import marshal
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from dbt_common.clients import jinja as dbt_jinja

from dataops.patches.dbt import jinja_cache

# Macros and nodes as a stranger's project has them (their names, a `do`, a loop, a filter).
MACROS = {
    "macro.shop.cents_to_dollars": (
        "{% macro cents_to_dollars(column, scale=2) -%}\n"
        "    round({{ column }} / 100.0, {{ scale }})\n"
        "{%- endmacro %}"
    ),
    "macro.shop.order_statuses": (
        "{% macro order_statuses() -%}\n"
        "    {%- set found = [] -%}\n"
        "    {%- for s in ['placed', 'shipped', 'returned'] -%}{% do found.append(s | upper) %}"
        "{%- endfor -%}\n"
        "    {{ found | join(',') }}\n"
        "{%- endmacro %}"
    ),
    "macro.shop.broken": "{% macro broken() %}{{ unclosed( {% endmacro %}",
}
NODES = {"model.shop.orders": "select {{ cents_to_dollars('amount_cents') }} as amount from raw"}


def manifest() -> SimpleNamespace:
    return SimpleNamespace(
        macros={k: SimpleNamespace(macro_sql=v) for k, v in MACROS.items()},
        nodes={
            **{k: SimpleNamespace(raw_code=v) for k, v in NODES.items()},
            "seed.shop.countries": SimpleNamespace(raw_code=""),
        },
    )


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    jinja_cache.uninstall()
    yield
    jinja_cache.uninstall()


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources Jinja really compiles (its code generator runs)."""
    seen: list[str] = []
    generate = jinja2.Environment._generate

    def counting(self, source, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(getattr(source, "name", None) or "template")
        return generate(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "_generate", counting)
    return seen


def render(source: str) -> str:
    return str(dbt_jinja.get_template(source, {}).render({}))


def call(source: str, macro: str, *args: object) -> str:
    """Call a macro the way dbt does: from the module of its compiled template."""
    module = dbt_jinja.get_template(source, {}).module
    return str(getattr(module, dbt_jinja.get_dbt_macro_name(macro))(*args)).strip()


def test_baked_code_equals_a_fresh_compile(tmp_path: Path) -> None:
    path = jinja_cache.bake([manifest(), manifest()], tmp_path)
    codes = marshal.loads(path.read_bytes())
    env = dbt_jinja.get_environment(None, capture_macros=False)
    compilable = [*(v for k, v in MACROS.items() if "broken" not in k), *NODES.values()]
    assert len(codes) == len(compilable)  # the same sources twice, the broken one left out
    for source in compilable:
        baked = marshal.loads(codes[jinja_cache.key(type(env), source)])
        assert baked == env.compile(source)


def test_a_baked_source_is_not_compiled_again(tmp_path: Path, compiles: list[str]) -> None:
    jinja_cache.bake([manifest()], tmp_path)
    statuses, dollars = MACROS["macro.shop.order_statuses"], MACROS["macro.shop.cents_to_dollars"]
    expected = [call(statuses, "order_statuses"), call(dollars, "cents_to_dollars", "amount", 4)]
    assert compiles, "the fixture sees Jinja compile"
    compiles.clear()

    assert jinja_cache.install(tmp_path) == 3
    got = [call(statuses, "order_statuses"), call(dollars, "cents_to_dollars", "amount", 4)]
    dbt_jinja.get_template(NODES["model.shop.orders"], {})
    assert compiles == []  # all three came from the cache
    assert got == expected == ["PLACED,SHIPPED,RETURNED", "round(amount / 100.0, 4)"]
    assert render("{{ 6 * 7 }}") == "42"  # not baked: compiled as before
    assert len(compiles) == 1


def test_a_broken_macro_still_fails_where_dbt_uses_it(tmp_path: Path) -> None:
    jinja_cache.bake([manifest()], tmp_path)
    jinja_cache.install(tmp_path)
    with pytest.raises(Exception, match=r"unexpected|expected"):
        dbt_jinja.get_template(MACROS["macro.shop.broken"], {})


def test_a_cache_of_another_jinja_is_not_used(tmp_path: Path, compiles: list[str]) -> None:
    real, jinja2.__version__ = jinja2.__version__, "2.11.3"
    try:
        jinja_cache.bake([manifest()], tmp_path)
    finally:
        jinja2.__version__ = real
    assert jinja_cache.install(tmp_path) == 3
    compiles.clear()
    dbt_jinja.get_template(MACROS["macro.shop.cents_to_dollars"], {})
    assert len(compiles) == 1


@pytest.mark.parametrize("content", [b"", b"\x00torn", marshal.dumps({})])
def test_a_torn_or_empty_cache_is_ignored(tmp_path: Path, content: bytes) -> None:
    jinja_cache.cache_path(tmp_path).write_bytes(content)
    assert jinja_cache.install(tmp_path) == 0
    assert "compile" not in vars(dbt_jinja.MacroFuzzEnvironment)  # nothing patched
    assert render("{{ 1 + 1 }}") == "2"


def test_no_cache_file(tmp_path: Path) -> None:
    assert jinja_cache.install(tmp_path) == 0
    assert "compile" not in vars(dbt_jinja.MacroFuzzEnvironment)


def test_uninstall_restores_jinja(tmp_path: Path) -> None:
    jinja_cache.bake([manifest()], tmp_path)
    jinja_cache.install(tmp_path)
    assert "compile" in vars(dbt_jinja.MacroFuzzEnvironment)
    jinja_cache.uninstall()
    assert "compile" not in vars(dbt_jinja.MacroFuzzEnvironment)
