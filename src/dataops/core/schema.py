"""Validating loaded YAML against a pydantic model, with errors that point into the file."""

from __future__ import annotations

import difflib
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from dataops.core.yaml_loader import YamlDocument
from dataops.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

# Keys that people write by habit, with what to write instead (as sqlfluff does for renamed keys).
KEY_HINTS = {
    "password": "secrets are not written in dataops.yml: put the secret in an environment "
    "variable and name it with `password_env: VARIABLE_NAME`",
    "secret": "secrets are not written in dataops.yml: name an environment variable with a "
    "`*_env` key instead",
    "token": "secrets are not written in dataops.yml: name an environment variable with a "
    "`*_env` key instead",
    "url": "registries take `address: host:port` (no scheme)",
    "registry_url": "use `registry: {address: host:port}`",
}


def validate(model: type[M], data: Any, document: YamlDocument, instruction: str) -> M:
    """`model` built from `data`; a ConfigError listing every problem with file:line:col."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, document, model), instruction) from None


def describe(exc: ValidationError, document: YamlDocument, root: type[BaseModel]) -> str:
    by_path: dict[tuple[Any, ...], tuple[int, int, str, list[str]]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(root, loc[:-1])
            message = f"unknown key {key!r}"
            if key in KEY_HINTS:
                message += f"; {KEY_HINTS[key]}"
            else:
                close = difflib.get_close_matches(key, allowed, n=1)
                if close:
                    message += f"; did you mean {close[0]!r}?"
            if allowed:
                message += f" (allowed here: {', '.join(allowed)})"
            mark = document.mark(loc, prefer_key=True)
            path = loc
        elif kind == "missing":
            message = "required key is missing"
            if allowed := _allowed_keys(root, loc[:-1]):
                message += f" (keys here: {', '.join(allowed)})"
            mark = document.mark(loc[:-1], prefer_key=True)
            path = loc
        else:
            path = _data_path(loc, document.data)
            message = error["msg"].removeprefix("Value error, ")
            if kind == "string_pattern_mismatch":
                message = f"{error['input']!r} does not match {error['ctx']['pattern']}"
            elif "input" in error and not isinstance(error["input"], dict | list):
                message = f"{error['input']!r} is not allowed: {message[0].lower()}{message[1:]}"
            mark = document.mark(path)
        line, column = (mark.line, mark.column) if mark else (0, 0)
        if path in by_path:  # union types (parallelism: "auto" | int) fail once per branch
            by_path[path][3].append(message.split(": ", 1)[-1])
        else:
            by_path[path] = (line, column, message, [])
    lines = []
    for path, (line, column, message, more) in sorted(by_path.items(), key=lambda kv: kv[1][:2]):
        where = f"{document.source}:{line}:{column}" if line else document.source
        dotted = ".".join(str(part) for part in path) or "(top level)"
        text = message if not more else f"{message}; or {'; or '.join(more)}"
        lines.append(f"{where}: {dotted}: {text}")
    head = [f"{len(lines)} problems in {document.source}:"] if len(lines) > 1 else []
    return "\n".join(head + lines)


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """`loc` without pydantic's union branch names: only the parts present in the data."""
    path: list[Any] = []
    for part in loc:
        if (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and part < len(data)
        ):
            data = data[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema allows at `loc` (walks the models along the path)."""
    model: Any = root
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model = field.annotation
        if get_origin(model) is dict:  # environments: dict[str, EnvironmentConfig]
            model = get_args(model)[1]
            if parts:
                parts.pop(0)  # the environment's name
            else:
                return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []
