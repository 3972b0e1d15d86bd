"""The JSON Schemas editors check dataops.yml and the pipeline specs with (`schemas/`): the same
keys and rules as the models `dataops validate` uses, checked in as the models make them."""

from __future__ import annotations

import copy
import inspect
import re
import shutil
import subprocess
import sys
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from dataops.core import config, pipeline
from dataops.core.json_schema import SCHEMAS, render, schema
from dataops.core.yaml_loader import load_yaml_file
from tests.conftest import PROJECT, ROOT

FIX = "run `dataops schema --write` and commit the result"

# Every dataops.yml and pipeline spec of the test fixtures (the reference project's copy among
# them); the working tree's own project is a team's, checked by `dataops validate`.
CONFIGS = sorted(ROOT.glob("tests/fixtures/**/dataops.yml"))
SPECS = sorted(
    path
    for path in ROOT.glob("tests/fixtures/**/pipelines/*.yml")
    if pipeline.is_spec_name(path.name)
)
SHIPPED = [("dataops", path) for path in CONFIGS] + [("pipeline", path) for path in SPECS]
DELETE = object()


def editor_view(path: Path) -> Any:
    """The file's data as an editor validates it: YAML 1.2 has no dates, so they are strings."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value.isoformat() if isinstance(value, date) else value

    return plain(load_yaml_file(path).data)


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(name: str, data: Any) -> dict[str, list[str]]:
    """Each dotted path the schema finds a problem at, with the messages there."""
    found: dict[str, list[str]] = {}
    errors = list(validator(name).iter_errors(data))
    while errors:  # with the branches of an anyOf (a model or null) that failed
        error = errors.pop()
        found.setdefault(".".join(map(str, error.absolute_path)), []).append(error.message)
        errors.extend(error.context or [])
    return found


def model_accepts(name: str, data: Any) -> bool:
    if name == "dataops":  # load_config drops the top-level x-* keys first
        data = {key: value for key, value in data.items() if not str(key).startswith("x-")}
    try:
        SCHEMAS[name].model.model_validate(data)
    except ValidationError:
        return False
    return True


def changed(data: Any, changes: dict[str, Any]) -> Any:
    """A copy of `data` with each dotted path set to its value (DELETE: removed)."""
    data = copy.deepcopy(data)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return data


def case_id(name: str, changes: dict[str, Any]) -> str:
    shown = [
        key if value is DELETE else f"{key}={'{...}' if isinstance(value, dict) else value!r}"
        for key, value in changes.items()
    ]
    return f"{name}:{','.join(shown) or 'as shipped'}"


def base(name: str) -> Any:
    return editor_view(PROJECT / "dataops.yml") if name == "dataops" else spec("flights")


def spec(stem: str) -> Any:
    return editor_view(PROJECT / "dags" / "pipelines" / f"{stem}.yml")


# -- (a) the checked-in files are what the models make ---------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_checked_in_schema_is_what_the_models_make(name: str) -> None:
    path = ROOT / SCHEMAS[name].path
    assert path.is_file(), f"{SCHEMAS[name].path} is missing: {FIX}"
    assert path.read_text(encoding="utf-8") == render(name), (
        f"{SCHEMAS[name].path} differs from what the models make: {FIX}"
    )


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_schema_is_a_valid_draft_2020_12_schema_with_its_header(name: str) -> None:
    made = schema(name)
    Draft202012Validator.check_schema(made)
    assert made["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert made["$id"] and made["title"] and made["description"]
    text = render(name)
    assert text == render(name) and text.endswith("}\n") and text.startswith('{\n  "$defs"')


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_object_refuses_unknown_keys_as_the_models_do(name: str) -> None:
    objects = 0
    nodes: list[Any] = [schema(name)]
    while nodes:  # every object with named keys, nested maps (environments, queue) included
        node = nodes.pop()
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node["additionalProperties"] is False, node.get("title", node)
                objects += 1
            nodes.extend(node.values())
        elif isinstance(node, list):
            nodes.extend(node)
    assert objects >= (15 if name == "dataops" else 5)


def test_keys_are_spelled_as_in_the_yaml_aliases_included() -> None:
    dbt = schema("dataops")["$defs"]["DbtConfig"]["properties"]
    assert "schema" in dbt and "target_schema" not in dbt
    renamed = changed(base("dataops"), {"dbt.target_schema": "analytics", "dbt.schema": DELETE})
    assert not model_accepts("dataops", renamed)
    assert "'target_schema' was unexpected" in " ".join(schema_errors("dataops", renamed)["dbt"])


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_models_docstrings_are_the_descriptions(name: str) -> None:
    defs = schema(name)["$defs"]
    documented = 0
    for title, node in defs.items():
        model = getattr(config, title, None) or getattr(pipeline, title, None)
        if isinstance(model, type) and issubclass(model, BaseModel) and model.__doc__:
            doc = inspect.cleandoc(model.__doc__)
            assert node["description"] == re.sub(r"(?<!\n)\n(?!\n)", " ", doc), title
            documented += 1
    assert documented >= 3
    if name == "dataops":  # Field(description=...) of EnvVarName
        password = defs["WarehouseConfig"]["properties"]["password_env"]
        assert password["description"] == "name of an environment variable"


# -- (b) every shipped file validates, and the files point editors at the schemas ------------


def test_the_repository_has_files_of_both_kinds() -> None:
    assert len(CONFIGS) > 0 and len(SPECS) > 0, "the globs found nothing: the tests would be empty"


@pytest.mark.parametrize(
    ("name", "path"), SHIPPED, ids=[str(p.relative_to(ROOT)) for _, p in SHIPPED]
)
def test_every_shipped_file_validates_against_its_schema(name: str, path: Path) -> None:
    data = editor_view(path)
    assert schema_errors(name, data) == {}
    assert model_accepts(name, data)


def test_the_shipped_files_name_their_schema_on_their_first_line() -> None:
    # Relative to the project's root, where `dataops schema --write` puts schemas/.
    shipped = [("dataops", PROJECT / "dataops.yml")] + [
        ("pipeline", path) for path in pipeline.spec_files(PROJECT / "dags" / "pipelines")
    ]
    for name, path in shipped:
        first = path.read_text().splitlines()[0]
        assert first == SCHEMAS[name].modeline, path
        relative = first.split("$schema=", 1)[1]
        assert (path.parent / relative).resolve() == PROJECT / SCHEMAS[name].path, path


# -- (c) a misspelled key is refused, at its path ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new", "where"),
    [
        ("pipeline", "schedule", "schedul", ""),
        ("pipeline", "target.mode", "target.mdoe", "target"),
        ("dataops", "environments", "enviroments", ""),
        ("dataops", "environments.staging.registry.address", "registry.adress", None),
        ("dataops", "environments.prod.airflow.password_env", "airflow.password", None),
    ],
)
def test_a_misspelled_key_is_refused_naming_where(
    name: str, old: str, new: str, where: str | None
) -> None:
    data = base(name)
    *parents, key = old.split(".")
    node = data
    for part in parents:
        node = node[part]
    wrong = new.split(".")[-1]
    node[wrong] = node.pop(key)
    where = ".".join(parents) if where is None else where
    errors = schema_errors(name, data)
    assert f"'{wrong}'" in " ".join(errors.get(where, [])), errors  # the key, by name
    assert not model_accepts(name, data)


# -- (d) what the models refuse, the schemas refuse (where JSON Schema can say it) ------------

DEV = base("dataops")["environments"]["dev"]  # another environment like dev

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    # wrong types, ranges and patterns
    ("dataops", {"version": 2}, "version"),
    ("dataops", {"platform.postgres.port": "five"}, "platform.postgres.port"),
    ("dataops", {"dbt.threads": 0}, "dbt.threads"),
    ("dataops", {"environments.dev.registry.tls": "maybe"}, "environments.dev.registry.tls"),
    (
        "dataops",
        {"environments.dev.gates.require_checks": "ci"},
        "environments.dev.gates.require_checks",
    ),
    (
        "dataops",
        {"environments.dev.registry.address": "http://127.0.0.1:5001"},
        "environments.dev.registry.address",
    ),
    (
        "dataops",
        {"environments.dev.warehouse.password_env": "lower-case"},
        "environments.dev.warehouse.password_env",
    ),
    (
        "dataops",
        {"environments.staging.airflow.celery.workers": "worker-1"},
        "environments.staging.airflow.celery.workers",
    ),
    # what the models' validators check
    ("dataops", {"environments.prod": DELETE}, "environments"),
    ("dataops", {"environments.QA": DEV, "environments.QA.warehouse.user": "qa"}, "environments"),
    (
        "dataops",
        {"environments.staging.registry.username": DELETE},
        "environments.staging.registry",
    ),
    (
        "dataops",
        {"environments.prod.registry.username": None},
        "environments.prod.registry.username",
    ),
    ("dataops", {"environments.prod.registry.username": ""}, "environments.prod.registry.username"),
    ("dataops", {"environments.dev.airflow.executor": "celery"}, "environments.dev.airflow"),
    ("dataops", {"environments.staging.airflow.executor": "local"}, None),
    ("dataops", {"environments.staging.airflow.parallelism": 4}, None),
    ("dataops", {"environments.prod.gates.approvers": []}, "environments.prod.gates.approvers"),
    ("pipeline", {"tags": "flights"}, "tags"),
    ("pipeline", {"tags": []}, "tags"),
    ("pipeline", {"retries": "two"}, "retries"),
    ("pipeline", {"catchup": "sometimes"}, "catchup"),
    ("pipeline", {"start_date": "tomorrow"}, "start_date"),
    ("pipeline", {"max_active_runs": 99}, "max_active_runs"),
    ("pipeline", {"owner": 42}, "owner"),
    ("pipeline", {"dbt.select": ""}, "dbt.select"),
    ("pipeline", {"queue": {"lod": "heavy"}}, "queue"),
    ("pipeline", {"queue": "Heavy Queue"}, "queue"),
    ("pipeline", {"schedule": "every day"}, "schedule"),
    ("pipeline", {"schedule": "@minutely"}, "schedule"),
    ("pipeline", {"source.path": "../etc/{interval_start:%Y}.csv"}, "source.path"),
    ("pipeline", {"source.path": "/data/flights.csv"}, "source.path"),
    ("pipeline", {"source.delimiter": ";;"}, "source.delimiter"),
    ("pipeline", {"target.table": "flights"}, "target.table"),
    ("pipeline", {"target.mode": "upsert"}, "target.mode"),
    ("pipeline", {"target.columns": {}}, "target.columns"),
    ("pipeline", {"target.columns.year": "int4"}, "target.columns.year"),
    ("pipeline", {"target.columns.Year": "integer"}, "target.columns"),
    ("pipeline", {"target.partition": DELETE}, "target"),
    ("pipeline", {"target.mode": "merge"}, "target"),
]


@pytest.mark.parametrize(
    ("name", "changes", "where"), REFUSED, ids=[case_id(n, c) for n, c, _ in REFUSED]
)
def test_what_the_model_refuses_the_schema_refuses(
    name: str, changes: dict[str, Any], where: str | None
) -> None:
    data = changed(base(name), changes)
    assert not model_accepts(name, data), "the model accepts it: not a parity case"
    errors = schema_errors(name, data)
    assert errors, "the schema accepts what the model refuses"
    if where is not None:
        assert where in errors, errors


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("dataops", {}),
    ("dataops", {"x-anything": {"any": ["thing"]}}),
    ("dataops", {"environments.qa_2": DEV, "environments.qa_2.warehouse.user": "dataops_qa"}),
    (
        "dataops",
        {"environments.dev.airflow.parallelism": 8, "environments.dev.airflow.celery": None},
    ),
    (
        "dataops",
        {
            "environments.prod.gates.require_approval": False,
            "environments.prod.gates.approvers": [],
        },
    ),
    ("dataops", {"platform": DELETE, "migrations": DELETE, "dbt": DELETE}),
    ("pipeline", {}),
    ("pipeline", {"schedule": None}),
    ("pipeline", {"schedule": "0 6 * * 1-5"}),
    ("pipeline", {"schedule": "@daily"}),
    ("pipeline", {"queue": "heavy"}),
    ("pipeline", {"queue": {"load": "heavy", "dbt": "light"}}),
    ("pipeline", {"queue": None, "dbt": None, "end_date": None}),
    ("pipeline", {"source.path": "a..b/{interval_end:%Y%m%d}.csv"}),
    ("pipeline", {"target.mode": "append", "target.partition": DELETE}),
    ("pipeline", {"description": DELETE, "max_active_runs": DELETE, "source.null": DELETE}),
]


@pytest.mark.parametrize(("name", "changes"), ACCEPTED, ids=[case_id(n, c) for n, c in ACCEPTED])
def test_what_the_model_accepts_the_schema_accepts(name: str, changes: dict[str, Any]) -> None:
    data = changed(base(name), changes)
    assert model_accepts(name, data)
    assert schema_errors(name, data) == {}


# -- the command-line tool an editor user would reach for -------------------------------------


@pytest.mark.skipif(
    shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) is None,
    reason="check-jsonschema is not installed (the dev extra)",
)
def test_check_jsonschema_accepts_the_shipped_files_and_names_a_bad_key(tmp_path: Path) -> None:
    tool = str(Path(sys.executable).parent / "check-jsonschema")

    def check(name: str, *files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool, "--schemafile", str(ROOT / SCHEMAS[name].path), *map(str, files)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert check("pipeline", *SPECS).returncode == 0
    assert check("dataops", *CONFIGS).returncode == 0
    bad = tmp_path / "flights.yml"
    text = (PROJECT / "dags" / "pipelines" / "flights.yml").read_text()
    bad.write_text(text.replace("schedule:", "schedul:").replace("flights/{", "../{"))
    result = check("pipeline", bad)
    assert result.returncode == 1
    assert "'schedul' was unexpected" in result.stdout
    assert "$.source.path" in result.stdout  # the ECMA regex engine reads the pattern too
