"""mkdocs hook: the reference pages' tables, generated from the code at every build.

A page asks for a table with a marker line of its own:

    <!-- dataops:reference dataops.yml -->     the `dataops.yml` reference (ProjectConfig)
    <!-- dataops:reference pipeline -->        the pipeline spec reference (PipelineSpec)
    <!-- dataops:reference exit-codes -->      the exit codes (dataops.errors.ExitCode)

Fields, types, constraints and defaults come from the pydantic models' `model_json_schema()`.
A field's description is the schema's; where the model gives none, it is the comment written
beside or above the field in the model's source, so nothing is copied into the docs by hand.
The checkout's `src/` goes first on `sys.path`, so the site documents the code next to it.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
import typing
from enum import Enum
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(_ROOT / "src"))

_MARKER = re.compile(r"^<!-- dataops:reference (?P<what>[\w.-]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return _MARKER.sub(lambda m: _render(m.group("what")), markdown)


def _render(what: str) -> str:
    if what == "dataops.yml":
        from dataops.core.config import ProjectConfig

        return _model_reference(ProjectConfig, "dataops.yml")
    if what == "pipeline":
        from dataops.core.pipeline import PipelineSpec

        return _model_reference(PipelineSpec, "pipeline spec")
    if what == "exit-codes":
        from dataops.errors import ExitCode

        notes = _member_comments(ExitCode)
        rows = ["| code | name | meaning |", "|---|---|---|"]
        for member in ExitCode:
            meaning = notes.get(member.name, "")
            rows.append(f"| {int(member)} | `{member.name}` | {_cell(meaning or 'ok')} |")
        return "\n".join(rows)
    raise ValueError(f"unknown reference table {what!r}")


# -- models ------------------------------------------------------------------------------


def _model_reference(root: type, title: str) -> str:
    """One section per object of the schema, titled by its key path, top-level first."""
    schema = root.model_json_schema(by_alias=True)  # type: ignore[attr-defined]
    defs: dict[str, Any] = schema.get("$defs", {})
    classes = _classes(root)
    comments = {name: _member_comments(cls) for name, cls in classes.items()}
    sections: list[str] = []
    seen: set[str] = set()

    def refs_of(prop: dict[str, Any]) -> bool:
        return "$ref" in json.dumps(prop)

    def visit(node: dict[str, Any], name: str, path: str) -> None:
        if name in seen:
            return
        seen.add(name)
        heading = f"`{path}`" if path else f"Top level of the {title}"
        out = [f"### {heading} {{ #{_anchor(path or 'top-level')} }}", ""]
        if node.get("description"):
            out += [_text(node["description"]), ""]
        field_notes = comments.get(name, {})
        aliases = _aliases(classes.get(name))
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        required = set(node.get("required", []))
        children: list[tuple[str, str]] = []
        for key, prop in node.get("properties", {}).items():
            type_text, refs = _type(prop, defs, path, key)
            children += refs
            if key in required:
                default = "**required**"
            elif isinstance(prop.get("default"), dict) and prop["default"] and refs_of(prop):
                default = "its keys' defaults"
            elif "default" in prop:
                default = f"`{json.dumps(prop['default'])}`"
            else:
                default = ""
            described = [prop, *prop.get("anyOf", [])]
            schema_note = next((p["description"] for p in described if p.get("description")), "")
            notes = [_text(schema_note), _text(field_notes.get(aliases.get(key, key), ""))]
            if not any(notes):  # a section of its own: its model's docstring
                target = next((p["$ref"] for p in described if "$ref" in p), "")
                notes = [_text(defs.get(target.rsplit("/", 1)[-1], {}).get("description", ""))]
            note = ". ".join(n.rstrip(".") for n in notes if n) + ("." if any(notes) else "")
            out.append(f"| `{key}` | {type_text} | {_cell(default)} | {_cell(note)} |")
        if node.get("additionalProperties") is False:
            out += ["", "Any other key is refused, naming the closest allowed one."]
        sections.append("\n".join(out))
        for ref, child_path in children:
            visit(defs[ref], ref, child_path)

    visit(schema, root.__name__, "")
    enums = [_enum_section(defs[n], classes.get(n)) for n in defs if "enum" in defs[n]]
    return "\n\n".join(sections + [e for e in enums if e])


def _type(prop: dict[str, Any], defs: dict[str, Any], path: str, key: str):  # type: ignore[no-untyped-def]
    """The type of a property as Markdown, and the objects (def name, key path) below it."""
    here = f"{path}.{key}" if path else key
    refs: list[tuple[str, str]] = []

    def describe(p: dict[str, Any], where: str) -> str:
        if "$ref" in p:
            name = p["$ref"].rsplit("/", 1)[1]
            target = defs[name]
            if "enum" in target:
                return " \\| ".join(f"`{v}`" for v in target["enum"])
            refs.append((name, where))
            return f"[map](#{_anchor(where)})"
        if "anyOf" in p:
            parts = [describe(x, where) for x in p["anyOf"]]
            return " or ".join(x for x in parts if x)
        if "const" in p:
            return f"`{json.dumps(p['const'])}`"
        if "enum" in p:
            return " \\| ".join(f"`{v}`" for v in p["enum"])
        kind = p.get("type")
        if kind == "array":
            return f"list of {describe(p.get('items', {}), where + '[]')}"
        if kind == "object":
            values = p.get("additionalProperties")
            names = p.get("propertyNames", {}).get("enum")
            keys = f"keys {', '.join(f'`{n}`' for n in names)}" if names else "name"
            patterns = p.get("patternProperties") or {}
            if patterns and not isinstance(values, dict):
                pattern, values = next(iter(patterns.items()))
                keys = f"name (pattern `{pattern}`)"
            inner = describe(values, f"{where}.<name>") if isinstance(values, dict) else "any"
            return f"map of {keys} → {inner}"
        if kind == "null":
            return "null"
        text = {"string": "string", "integer": "integer", "boolean": "boolean", "number": "number"}
        out = text.get(str(kind), str(kind or "any"))
        if p.get("format"):
            out += f" ({p['format']})"
        limits = []
        if "pattern" in p:
            limits.append(f"pattern `{p['pattern']}`")
        for word, sign in (("minimum", "≥"), ("maximum", "≤")):
            if word in p:
                limits.append(f"{sign} {p[word]}")
        if "minLength" in p:
            limits.append(f"length ≥ {p['minLength']}")
        if "maxLength" in p:
            limits.append(f"length ≤ {p['maxLength']}")
        if "minItems" in p:
            limits.append(f"at least {p['minItems']}")
        return out + (f" ({'; '.join(limits)})" if limits else "")

    text = describe(prop, here)
    if prop.get("type") == "array" and "minItems" in prop:
        text += f" (at least {prop['minItems']})"
    return text, refs


def _enum_section(node: dict[str, Any], cls: type | None) -> str:
    notes = _member_comments(cls) if cls is not None else {}
    if not notes:
        return ""
    members = {m.value: m.name for m in cls} if cls is not None else {}  # type: ignore[attr-defined]
    title = node.get("title", "")
    rows = [f"### Values of `{title}` {{ #{_anchor('values-' + title)} }}", ""]
    rows += ["| value | meaning |", "|---|---|"]
    for value in node["enum"]:
        rows.append(f"| `{value}` | {_cell(notes.get(members.get(value, ''), ''))} |")
    return "\n".join(rows)


def _classes(root: type) -> dict[str, type]:
    """Every model and enum reachable from `root`'s fields, by the name the schema gives it."""
    found: dict[str, type] = {}

    def walk(tp: Any) -> None:
        for arg in typing.get_args(tp):
            walk(arg)
        if isinstance(tp, type) and tp.__name__ not in found:
            if issubclass(tp, Enum):
                found[tp.__name__] = tp
            elif hasattr(tp, "model_fields"):
                found[tp.__name__] = tp
                for field in tp.model_fields.values():
                    walk(field.annotation)

    walk(root)
    return found


def _aliases(cls: type | None) -> dict[str, str]:
    """Alias (as written in YAML) -> attribute name, for the comments keyed by attribute."""
    if cls is None or not hasattr(cls, "model_fields"):
        return {}
    return {f.alias: name for name, f in cls.model_fields.items() if f.alias}


def _member_comments(cls: type) -> dict[str, str]:
    """The comment of each attribute of a class body: the `#` lines right above it, or the one
    at the end of its line."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent(source)
    lines = source.splitlines()
    tree = ast.parse(source)
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        else:
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line in comments and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        trailing = [comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
        text = " ".join(above + [t for t in trailing if t not in above])
        if text:
            out[name] = text
    return out


def _text(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(path: str) -> str:
    """The heading id of a key path (`environments.<name>` -> `key-environments-name`)."""
    return "key-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


# -- CLI ---------------------------------------------------------------------------------

# The one patch of a docs dependency's private code: mkdocs-click's `_docs._make_description`
# and `_docs._make_subcommands_links`, as they are in this version. Another version fails the
# build here, so an upgrade re-checks the wrapper instead of rendering broken pages quietly.
MKDOCS_CLICK = "0.9.0"


def on_config(config: Any) -> Any:
    """mkdocs-click writes each command's help text into the Markdown as it is. That text is
    written for a terminal: `ci_<branch>` or `runs/<id>/` would be read as HTML tags and
    vanish, and `*.yml` could start an emphasis. Escape those outside code spans, and list
    subcommands with click's own short help (their first sentence) rather than the first
    line of their docstring, which stops mid-sentence."""
    from importlib.metadata import version

    from mkdocs_click import _docs

    installed = version("mkdocs-click")
    description = getattr(_docs, "_make_description", None)
    links = getattr(_docs, "_make_subcommands_links", None)
    if installed != MKDOCS_CLICK or description is None or links is None:
        raise RuntimeError(
            f"docs/hooks/reference.py wraps mkdocs-click {MKDOCS_CLICK}'s _docs."
            f"_make_description and _make_subcommands_links; {installed} is installed: check "
            "that both still exist with the same arguments, then update MKDOCS_CLICK"
        )
    if getattr(description, "_dataops", False):  # wrapped already (mkdocs serve reloads)
        return config

    def make_description(*args: Any, **kwargs: Any) -> Any:
        for line in description(*args, **kwargs):
            yield _escape_terminal_text(line)

    def make_subcommands_links(subcommands: Any, *args: Any, **kwargs: Any) -> Any:
        by_name = {command.name: command for command in subcommands}
        for line in links(subcommands, *args, **kwargs):
            found = re.match(r"^- \*\[?(?P<name>[\w-]+)(?P<link>\]\(#[^)]*\))?\*: ", line)
            command = by_name.get(found.group("name")) if found else None
            if found and command is not None:
                short = command.get_short_help_str(limit=150)
                line = line[: found.end()] + _escape_terminal_text(short)
            yield line

    make_description._dataops = True  # type: ignore[attr-defined]
    _docs._make_description = make_description
    _docs._make_subcommands_links = make_subcommands_links
    return config


def _escape_terminal_text(line: str) -> str:
    parts = re.split(r"(`[^`]*`)", line)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
        parts[i] = parts[i].replace("*", r"\*").replace("_", r"\_")
    return "".join(parts)
