from __future__ import annotations

from pathlib import Path

import pytest

from dataops.core.yaml_loader import Limits, load_yaml_file, load_yaml_text
from dataops.errors import ConfigError, ExitCode


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "billion laughs": (billion_laughs(), "billion laughs", 7),
    "1,100 nested lists": ("a: " + "[" * 1100 + "]" * 1100, "nesting is deeper than 64", 1),
    "1,100 nested maps": (
        "".join("  " * i + f"k{i}:\n" for i in range(1100)),
        "nesting is deeper",
        65,
    ),
    "python object tag": (
        "a: !!python/object/apply:os.system ['echo pwned']\n",
        "!!python/object/apply",
        1,
    ),
    "python name tag": (
        "a: !!python/name:os.system\n",
        "tag !!python/name:os.system is not allowed",
        1,
    ),
    "local tag": ("a: !secret x\n", "tag !secret is not allowed", 1),
    "python tag on a key": (
        "ok: 1\n!!python/object:os.system x: 1\n",
        "tag !!python/object:os.system is not allowed",
        2,
    ),
    "duplicate key": ("a: 1\nb: 2\na: 3\n", "duplicate key 'a' (first defined at line 1)", 3),
    "nested duplicate": ("top:\n  x: 1\n  x: 2\n", "duplicate key 'x'", 3),
    "two documents": ("a: 1\n---\nb: 2\n", "more than one YAML document", 2),
    "broken syntax": ("a: [1, 2\nb: 3\n", "invalid YAML", None),
    "undefined alias": ("a: *nope\n", "alias *nope has no anchor", 1),
    "map as key": ("? {a: 1}\n: 2\n", "a key must be a plain string", 1),
}


# The time each case takes is measured by bench/bench_config_load.py; the timeout here only
# turns a regression into a hang-free failure (an unbounded expansion would never return).
@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_yaml_is_a_config_error(case: str) -> None:
    text, message, line = HOSTILE[case]
    with pytest.raises(ConfigError) as caught:
        load_yaml_text(text, "hostile.yml")
    error = caught.value
    assert message in str(error)
    assert error.exit_code is ExitCode.USAGE
    if line is not None:
        assert error.reason.startswith(f"hostile.yml:{line}:"), error.reason


def test_size_limit_is_checked_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    big.write_text("a: " + "x" * 2000 + "\n")
    with pytest.raises(ConfigError, match="over the limit of 1,000 bytes"):
        load_yaml_file(big, Limits(max_bytes=1000))


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_bytes(b"a: 1\nb: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bad.yml:2: not valid UTF-8"):
        load_yaml_file(bad, display="bad.yml")


def test_large_legitimate_file_is_accepted() -> None:
    # 20,000 entries, about 1 MB: far more than any real config.
    text = "items:\n" + "".join(
        f"  - {{name: item{i}, value: {i}, tags: [a, b, c]}}\n" for i in range(20_000)
    )
    doc = load_yaml_text(text, "large.yml")
    assert len(doc.data["items"]) == 20_000
    assert doc.data["items"][19_999] == {
        "name": "item19999",
        "value": 19999,
        "tags": ["a", "b", "c"],
    }


def test_aliases_and_merge_keys_within_limits_work() -> None:
    text = "base: &b {host: h, port: 1}\nx:\n  <<: *b\n  port: 2\ny: *b\n"
    doc = load_yaml_text(text, "ok.yml")
    assert doc.data["x"] == {"host": "h", "port": 2}
    assert doc.data["y"] == {"host": "h", "port": 1}


def test_marks_point_at_keys_and_values() -> None:
    doc = load_yaml_text("a:\n  b:\n    - 1\n    - two\n", "m.yml")
    assert doc.where(("a", "b", 1)) == "m.yml:4:7"
    assert doc.where(("a", "b"), prefer_key=True) == "m.yml:2:3"
    assert doc.where(("a", "missing")) == "m.yml:2:3"  # nearest ancestor that exists


def test_keys_stay_strings() -> None:
    # YAML 1.1 would read `on` and `1` as a boolean and an int; config keys are names.
    assert load_yaml_text("on: 1\n1: x\n", "k.yml").data == {"on": 1, "1": "x"}
    # A core-schema tag on a key is fine and still gives its text.
    assert load_yaml_text("!!str a: 1\n!!int 2: b\n", "k.yml").data == {"a": 1, "2": "b"}
