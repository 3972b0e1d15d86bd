"""A YAML loader that is safe against hostile input and remembers where every value came from.

Plain `yaml.safe_load` already refuses python tags, but it accepts duplicate keys (the last one
silently wins), recurses once per nesting level (a deeply nested file ends in RecursionError) and
returns alias graphs whose expansion is exponential (the "billion laughs" file). This loader:

1. refuses files over a size limit before parsing them;
2. walks the event stream once, iteratively, counting nesting depth and the number of nodes the
   document expands to (every alias counts as the full size of what it points at), and stops at
   the first event over a limit, so hostile files are rejected in milliseconds;
3. only then composes the node graph and builds plain dicts, lists and scalars from it, refusing
   duplicate keys and any tag outside the YAML core schema, and recording the line and column of
   every key and value so that schema errors can name them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from dataops.errors import ConfigError

try:  # libyaml is ten times faster on large files; the pure-Python parser is the fallback.
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

Path_ = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_ALLOWED_SCALAR_TAGS = {
    f"{_CORE}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")
}
_MAP_TAG = f"{_CORE}map"
_STR_TAG = f"{_CORE}str"
_SEQ_TAG = f"{_CORE}seq"
_MERGE_TAG = f"{_CORE}merge"


@dataclass(frozen=True)
class Limits:
    """Bounds on what one YAML file may cost to load."""

    max_bytes: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 2_000_000  # after alias expansion


DEFAULT_LIMITS = Limits()


class Mark(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based

    @classmethod
    def of(cls, mark: Any) -> Mark:
        return cls(mark.line + 1, mark.column + 1)


@dataclass
class YamlDocument:
    """The loaded data plus the position of every key and value in the source."""

    source: str
    data: Any
    value_marks: dict[Path_, Mark] = field(default_factory=dict)
    key_marks: dict[Path_, Mark] = field(default_factory=dict)

    def mark(self, path: Path_, *, prefer_key: bool = False) -> Mark | None:
        """The position of `path`, or of its nearest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefer_key and prefix in self.key_marks:
                return self.key_marks[prefix]
            if prefix in self.value_marks:
                return self.value_marks[prefix]
            if prefix in self.key_marks:
                return self.key_marks[prefix]
        return None

    def where(self, path: Path_, *, prefer_key: bool = False) -> str:
        """`file:line:col` for `path` (just `file` when nothing is known)."""
        mark = self.mark(path, prefer_key=prefer_key)
        return f"{self.source}:{mark.line}:{mark.column}" if mark else self.source


def _error(source: str, mark: Any, message: str, instruction: str | None = None) -> ConfigError:
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    return ConfigError(f"{where}: {message}", instruction)


def load_yaml_file(
    path: Path, limits: Limits = DEFAULT_LIMITS, *, display: str | None = None
) -> YamlDocument:
    """Load one YAML file; every problem is a ConfigError naming the file (and line)."""
    source = display or str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ConfigError(
                f"{source}: file is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes",
                "split the file or remove generated content from it",
            )
        with path.open("rb") as handle:
            raw = handle.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found", "create it or pass the right path") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a YAML file") from None
    except PermissionError:
        raise ConfigError(f"{source}: permission denied", "make the file readable") from None
    if len(raw) > limits.max_bytes:  # grew while we read it
        raise ConfigError(f"{source}: file is over the limit of {limits.max_bytes:,} bytes")
    return load_yaml_bytes(raw, source, limits)


def load_yaml_bytes(raw: bytes, source: str, limits: Limits = DEFAULT_LIMITS) -> YamlDocument:
    """Load a file's bytes already read (UTF-8); `source` names the file in errors."""
    if len(raw) > limits.max_bytes:
        raise ConfigError(f"{source}: file is over the limit of {limits.max_bytes:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}:{line}: not valid UTF-8 (byte {exc.start})", "save the file as UTF-8"
        ) from None
    return load_yaml_text(text, source, limits)


def load_yaml_text(text: str, source: str, limits: Limits = DEFAULT_LIMITS) -> YamlDocument:
    """Load YAML from a string; `source` names it in errors."""
    if len(text.encode("utf-8")) > limits.max_bytes:
        raise ConfigError(f"{source}: over the limit of {limits.max_bytes:,} bytes")
    loader = _BaseLoader(text)
    try:
        return _Builder(loader, source, limits).run()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise _error(source, mark, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _tag_error(source: str, mark: Any, tag: str | None) -> ConfigError:
    shown = tag.replace(_CORE, "!!") if tag else tag
    return _error(
        source,
        mark,
        f"tag {shown} is not allowed: only plain YAML data (maps, lists, strings, numbers, "
        "booleans, null) is read",
        "remove the tag",
    )


@dataclass
class _Frame:
    """An open map or list while the events are walked."""

    path: Path_
    anchor: str | None
    data: Any
    size: int = 1
    key: str | None = None  # a map's key waiting for its value
    key_mark: Any = None
    merge_next: bool = False  # the pending key is '<<'
    merged: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)


class _Builder:
    """Builds plain data from the event stream in one iterative pass.

    No node graph is composed (PyYAML's composer is recursive and slow on large files); depth and
    the expanded size are checked at every event, so a hostile file stops at its first excess.
    """

    def __init__(self, loader: Any, source: str, limits: Limits) -> None:
        self.loader = loader
        self.limits = limits
        self.doc = YamlDocument(source=source, data=None)
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.stack: list[_Frame] = []
        self.total = 0
        self.documents = 0
        self.done = False

    def run(self) -> YamlDocument:
        loader = self.loader
        while loader.check_event():
            self._event(loader.get_event())
        return self.doc

    # -- events --------------------------------------------------------------------------------
    def _event(self, event: yaml.Event) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent:  # by far the most common: checked first, by exact type
            self._scalar(event)  # type: ignore[arg-type]
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            self._start(event)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            frame = self.stack.pop()
            if frame.merged:
                frame.data = {**frame.merged, **frame.data}
            if frame.anchor is not None:
                self.anchors[frame.anchor] = (frame.data, frame.size)
            self._attach(frame.data, frame.size, event.start_mark)
        elif kind is yaml.AliasEvent:
            anchor = event.anchor  # type: ignore[attr-defined]
            if anchor not in self.anchors:
                raise self._err(event.start_mark, f"alias *{anchor} has no anchor")
            value, size = self.anchors[anchor]
            if self._expects_key():
                raise self._err(event.start_mark, "an alias cannot be used as a key")
            self._count(size, event.start_mark)
            self._attach(value, size, event.start_mark)
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise self._err(event.start_mark, "more than one YAML document ('---') in the file")

    def _start(self, event: Any) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        if event.tag not in (None, "!", _MAP_TAG if is_map else _SEQ_TAG):
            raise _tag_error(self.doc.source, event.start_mark, event.tag)
        if self._expects_key():
            raise self._err(event.start_mark, "a key must be a plain string, not a list or a map")
        if len(self.stack) + 1 > self.limits.max_depth:
            raise self._err(
                event.start_mark,
                f"nesting is deeper than {self.limits.max_depth} levels",
                "flatten the structure",
            )
        self._count(1, event.start_mark)
        path = self._child_path()
        self.doc.value_marks.setdefault(path, Mark.of(event.start_mark))
        self.stack.append(_Frame(path, event.anchor, {} if is_map else []))

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        tag = event.tag
        plain = tag is None or tag == "!"
        if self._expects_key():  # a key is read as its text; only '<<' (merge) is special
            merge = tag == _MERGE_TAG or (plain and event.implicit[0] and event.value == "<<")
            if not (plain or merge or tag in _ALLOWED_SCALAR_TAGS):
                raise _tag_error(self.doc.source, event.start_mark, tag)
            self._key(event, _MERGE_TAG if merge else "")
            return
        if plain:
            # A quoted scalar is a string; only plain ones go through the resolver's patterns.
            implicit = event.implicit
            if implicit[0] or not implicit[1]:
                tag = self.loader.resolve(yaml.ScalarNode, event.value, implicit)
            else:
                tag = _STR_TAG
        if tag == _STR_TAG:
            value: Any = event.value  # what SafeConstructor's str constructor returns
        elif tag in _ALLOWED_SCALAR_TAGS:
            start: Any = event.start_mark  # libyaml's Mark type differs; same fields
            node = yaml.ScalarNode(tag, event.value, start, start, event.style)
            value = self.loader.yaml_constructors[tag](self.loader, node)
        else:
            raise _tag_error(self.doc.source, event.start_mark, tag)
        self._count(1, event.start_mark)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self.doc.value_marks.setdefault(self._child_path(), Mark.of(event.start_mark))
        self._attach(value, 1, event.start_mark)

    def _key(self, event: yaml.ScalarEvent, tag: str) -> None:
        frame = self.stack[-1]
        if tag == _MERGE_TAG:
            frame.merge_next = True
            frame.key = "<<"
            frame.key_mark = event.start_mark
            return
        key = str(event.value)
        if key in frame.seen:
            raise self._err(
                event.start_mark,
                f"duplicate key '{key}' (first defined at line {frame.seen[key].line + 1})",
                "keep one of them",
            )
        frame.seen[key] = event.start_mark
        frame.key = key
        frame.key_mark = event.start_mark
        self.doc.key_marks[(*frame.path, key)] = Mark.of(event.start_mark)

    # -- helpers -------------------------------------------------------------------------------
    def _expects_key(self) -> bool:
        return (
            bool(self.stack)
            and isinstance(self.stack[-1].data, dict)
            and self.stack[-1].key is None
        )

    def _child_path(self) -> Path_:
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if isinstance(frame.data, dict):
            return (*frame.path, frame.key if frame.key is not None else "")
        return (*frame.path, len(frame.data))

    def _count(self, count: int, mark: Any) -> None:
        self.total += count
        if self.total > self.limits.max_nodes:
            raise self._err(
                mark,
                f"document expands to more than {self.limits.max_nodes:,} values "
                "(aliases of aliases, as in a 'billion laughs' file)",
                "write the values out or use fewer nested aliases",
            )

    def _attach(self, value: Any, size: int, mark: Any) -> None:
        if not self.stack:
            self.doc.data = value
            return
        parent = self.stack[-1]
        parent.size += size
        if isinstance(parent.data, list):
            parent.data.append(value)
            return
        if parent.merge_next:
            parent.merge_next = False
            parent.key = None
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(item, dict) for item in sources):
                raise self._err(mark, "'<<' must merge a map or a list of maps")
            for item in sources:
                for key, item_value in item.items():
                    parent.merged.setdefault(key, item_value)  # earlier sources win
            return
        assert parent.key is not None
        parent.data[parent.key] = value
        parent.key = None

    def _err(self, mark: Any, message: str, instruction: str | None = None) -> ConfigError:
        return _error(self.doc.source, mark, message, instruction)
