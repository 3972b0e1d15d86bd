"""JSON Schemas of `dataops.yml` and of pipeline specs, for editors (yaml-language-server).

Made from the pydantic models that validate the files (`config.ProjectConfig`,
`pipeline.PipelineSpec`) with the keys as the YAML spells them (aliases such as dbt's `schema`),
so an editor completes and checks what `dataops validate` reads: every object refuses unknown
keys as the models do, and the models' docstrings and field descriptions become hover text.

What a model checks in a validator of its own is added where JSON Schema can say it (`_refine_*`:
an environment per name, column types, the fields a load mode needs, ...), each with a test
that the model refuses the same file. The rest, such as a `promote_from` that names an
environment that exists, only `dataops validate` checks. The output is deterministic (sorted
keys, 2-space indent): `dataops schema --write` writes it to `schemas/`, and a unit test keeps
the checked-in files equal to it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from dataops.core import config, pipeline

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FOLDER = "schemas"  # at the project's top, beside dataops.yml


@dataclass(frozen=True)
class SchemaFile:
    """One schema: the model it is made from and where it is checked in."""

    name: str  # what `dataops schema NAME` takes
    model: type[BaseModel]
    title: str
    description: str
    modeline: str  # the first line of the files it describes, relative to them

    @property
    def filename(self) -> str:
        return f"{self.name}.schema.json"

    @property
    def path(self) -> str:
        """Its path in the project."""
        return f"{FOLDER}/{self.filename}"

    @property
    def id(self) -> str:
        return f"urn:dataops:{FOLDER}:{self.filename}"


def _modeline(relative: str) -> str:
    return f"# yaml-language-server: $schema={relative}"


SCHEMAS = {
    "dataops": SchemaFile(
        name="dataops",
        model=config.ProjectConfig,
        title="dataops.yml",
        description=(
            "The project file of the dataops toolkit: the local platform `dataops up` runs, "
            "warehouse migrations, the dbt project, and the environments (dev, staging, prod) "
            "a release is promoted through. Secrets are never written here: a key ending in "
            "`_env` names the environment variable that holds one. Top-level keys starting "
            "with `x-` are ignored (anchors to reuse). `dataops validate` checks the file."
        ),
        modeline=_modeline(f"{FOLDER}/dataops.schema.json"),
    ),
    "pipeline": SchemaFile(
        name="pipeline",
        model=pipeline.PipelineSpec,
        title="pipeline spec",
        description=(
            "One pipeline (dags/pipelines/<name>.yml, `pipeline` equal to <name>): where its "
            "data comes from, the table it loads with its columns, key and load mode, and the "
            "dbt selection built after each load. Each spec becomes one Airflow DAG. "
            "`dataops validate` checks the file."
        ),
        modeline=_modeline(f"../../{FOLDER}/pipeline.schema.json"),
    ),
}


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema `name` (a key of SCHEMAS) as data."""
    spec = SCHEMAS[name]
    generated = spec.model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_Generator
    )
    _REFINE[name](generated)
    _tidy_descriptions(generated)
    return {
        **generated,
        "$schema": DIALECT,
        "$id": spec.id,
        "title": spec.title,
        "description": spec.description,
    }


def render(name: str) -> str:
    """The schema `name` as the text of its file: sorted keys, 2-space indent, final newline."""
    return json.dumps(schema(name), indent=2, sort_keys=True) + "\n"


class _Generator(GenerateJsonSchema):
    """pydantic's generator, with no titles made of field names (`Password Env`: the key says
    it) and maps that refuse the keys pydantic refuses."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        values = json_schema.get("additionalProperties")
        names = json_schema.get("propertyNames", {})
        if "patternProperties" in json_schema and values is None:
            # dict[Identifier, str]: pydantic refuses a key the pattern does not match.
            json_schema["additionalProperties"] = False
        elif isinstance(values, dict) and list(names) == ["enum"]:
            # dict[Literal["extract", "load", "dbt"], ...]: named keys complete in an editor.
            json_schema["properties"] = {key: dict(values) for key in names["enum"]}
            json_schema["additionalProperties"] = False
            del json_schema["propertyNames"]
        return json_schema


def _when(model: JsonSchemaValue, field: str, value: Any, then: JsonSchemaValue) -> None:
    """`then` applies to `model`'s object when its `field` is `value`."""
    condition = {"properties": {field: {"const": value}}, "required": [field]}
    model.setdefault("allOf", []).append({"if": condition, "then": then})


def _non_empty_list(field: str) -> JsonSchemaValue:
    return {"required": [field], "properties": {field: {"type": "array", "minItems": 1}}}


def _refine_dataops(schema: JsonSchemaValue) -> None:
    defs = schema["$defs"]
    # load_config drops top-level x-* keys before validating (extension fields for anchors).
    schema["patternProperties"] = {
        "^x-": {"description": "An extension field: ignored (a place for YAML anchors)."}
    }
    # ProjectConfig._known_environments: dev, staging and prod, and names like them.
    environment = schema["properties"]["environments"]["additionalProperties"]
    schema["properties"]["environments"] = {
        "type": "object",
        "description": "The environments a release moves through, each with its own registry, "
        f"warehouse and Airflow: {', '.join(config.ENV_NAMES)} at least.",
        "properties": {name: dict(environment) for name in config.ENV_NAMES},
        "patternProperties": {config._NAME: dict(environment)},
        "additionalProperties": False,
        "required": list(config.ENV_NAMES),
    }
    # RegistryConfig._credentials
    _when(
        defs["RegistryConfig"],
        "auth",
        config.RegistryAuth.HTPASSWD.value,
        {
            "required": ["username", "password_env"],
            "properties": {
                "username": {"type": "string", "minLength": 1},
                "password_env": {"type": "string"},
            },
        },
    )
    # AirflowConfig._executor
    airflow = defs["AirflowConfig"]
    airflow.setdefault("allOf", []).append(
        {
            "if": {"properties": {"executor": {"const": "celery"}}, "required": ["executor"]},
            "then": {
                "required": ["celery"],
                "properties": {"celery": {"type": "object"}, "parallelism": {"const": "auto"}},
            },
            "else": {"properties": {"celery": {"type": "null"}}},
        }
    )
    # GatesConfig._approvers
    _when(defs["GatesConfig"], "require_approval", True, _non_empty_list("approvers"))


def _refine_pipeline(schema: JsonSchemaValue) -> None:
    defs = schema["$defs"]
    target = defs["TargetSpec"]
    # TargetSpec._types: at least one column, each of a known type.
    columns = target["properties"]["columns"]
    columns["minProperties"] = 1
    columns["patternProperties"][pipeline._IDENT]["enum"] = sorted(pipeline._COLUMN_TYPES)
    # TargetSpec._mode_fields
    _when(target, "mode", pipeline.LoadMode.MERGE.value, _non_empty_list("key"))
    _when(target, "mode", pipeline.LoadMode.REPLACE_PARTITION.value, _non_empty_list("partition"))
    # SourceSpec._relative: inside the drop folder (the placeholders only the model checks).
    source = defs["SourceSpec"]["properties"]
    source["path"]["pattern"] = r"^(?!/)(?!(.*/)?\.\.(/|$))"
    # yaml-language-server shows this instead of the pattern (validators ignore the keyword).
    source["path"]["patternErrorMessage"] = (
        "must be a path inside the drop folder (relative, no '..')"
    )
    # A plain `null:` key is YAML 1.2's null to editors and most YAML tools, not a key name.
    source["null"]["description"] = (
        "The text that stands for NULL in the file (e.g. NA or \\N). Write the key "
        'quoted, `"null": NA`: editors and YAML 1.2 tools read a plain `null` as null.'
    )
    # PipelineSpec._schedule: a preset or five cron fields, in one pattern so that an editor
    # says what is wrong (the examples complete).
    presets = sorted(pipeline.SCHEDULE_PRESETS)
    told = f"a cron expression (5 fields), one of {', '.join(presets)}, or null"
    schema["properties"]["schedule"] = {
        "anyOf": [
            {
                "type": "string",
                "pattern": rf"^({'|'.join(map(re.escape, presets))}|\s*\S+(\s+\S+){{4}}\s*)$",
                "patternErrorMessage": f"must be {told}",
                "examples": [*presets, "0 6 * * *"],
            },
            {"type": "null"},
        ],
        "description": f"When the pipeline runs: {told} (run when triggered).",
    }


_REFINE = {"dataops": _refine_dataops, "pipeline": _refine_pipeline}

_WRAPPED = re.compile(r"(?<!\n)\n(?!\n)")


def _tidy_descriptions(node: Any) -> None:
    """Docstrings wrapped at 100 columns as one line per paragraph (editors wrap them)."""
    if isinstance(node, dict):
        text = node.get("description")
        if isinstance(text, str):
            node["description"] = _WRAPPED.sub(" ", text)
        for value in node.values():
            _tidy_descriptions(value)
    elif isinstance(node, list):
        for value in node:
            _tidy_descriptions(value)
