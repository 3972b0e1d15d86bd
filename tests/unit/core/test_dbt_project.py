"""The pure rules of running another team's dbt project: schema scope, audit routing, the
macro wrap, the profile, and the dbt section of dataops.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataops.core import dbt_project
from dataops.core.config import load_config
from dataops.errors import ConfigError
from tests.conftest import PROJECT


def test_ci_scope_is_the_ci_schema_and_its_suffixed_twins_only() -> None:
    nodes = {
        "model.a.x": "ci_feat",
        "model.a.y": "ci_feat_marts",
        "seed.a.s": "raw",
        "snapshot.a.h": "ci_feature_history",  # another branch's prefix, not ours
    }
    assert dbt_project.out_of_scope(nodes, "ci_feat") == [
        "seed.a.s in schema 'raw'",
        "snapshot.a.h in schema 'ci_feature_history'",
    ]
    assert not dbt_project.in_ci_scope("analytics", "analytics")  # no ci_ prefix: never


def test_audit_routing_names_every_node_that_skips_its_audit_schema() -> None:
    def manifest(**schemas: str) -> dict:
        return {
            "nodes": {
                uid.replace("__", "."): {
                    "resource_type": uid.split("__")[0],
                    "schema": schema,
                    "config": {"materialized": "table"},
                }
                for uid, schema in schemas.items()
            }
        }

    published = manifest(model__p__m="analytics_marts", snapshot__p__s="history")
    audit = manifest(model__p__m="analytics_marts__audit_probe", snapshot__p__s="history")
    assert dbt_project.audit_routing_problems(published, audit) == [
        "snapshot.p.s would be built in 'history', not its audit schema 'history__audit_probe'"
    ]


def test_the_projects_own_macro_is_renamed_whatever_its_whitespace_control() -> None:
    text = "{%- macro generate_schema_name(custom_schema_name, node) -%}x{% endmacro %}"
    renamed, count = dbt_project.wrap_schema_macro(text)
    assert count == 1
    assert renamed.startswith("{%- macro dataops_project_generate_schema_name(")
    assert "__PROJECT_NAMING__" not in dbt_project.toolkit_macros(True)
    assert "dataops_project_generate_schema_name(" in dbt_project.toolkit_macros(True)
    assert "adapter.dispatch('generate_schema_name', 'dbt')(" in dbt_project.toolkit_macros(False)


def test_the_written_profile_is_valid_yaml_with_every_target() -> None:
    text = dbt_project.profiles_yml("acme", ["dev", "production", "ci"], "dev", "acme", 3)
    profile = yaml.safe_load(text)["acme"]
    assert sorted(profile["outputs"]) == ["ci", "dev", "production"]
    assert profile["outputs"]["ci"]["threads"] == 3
    assert "DBT_SCHEMA', 'acme'" in profile["outputs"]["ci"]["schema"]


def test_dbt_targets_must_name_known_environments(tmp_path: Path) -> None:
    config = yaml.safe_load((PROJECT / "dataops.yml").read_text())
    config["dbt"] = {"targets": {"production": "prod"}}
    path = tmp_path / "dataops.yml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert "dbt.targets names unknown environment(s) production" in str(bad.value)
    config["dbt"] = {"targets": {"prod": "production"}, "schema": "acme"}
    path.write_text(yaml.safe_dump(config))
    dbt = load_config(path).config.dbt
    assert (dbt.target("prod"), dbt.target("dev"), dbt.target_schema) == (
        "production",
        "dev",
        "acme",
    )


@pytest.mark.parametrize(
    "text",
    [
        "{% macro generate_schema_name(custom_schema_name, node) %}x{% endmacro %}",
        "{%+ macro generate_schema_name (custom_schema_name, node) -%}x{% endmacro %}",
        "{%-   macro   generate_schema_name(custom_schema_name=none, node=none) %}x{% endmacro %}",
    ],
)
def test_every_way_of_writing_the_macro_is_renamed(text: str) -> None:
    renamed, count = dbt_project.wrap_schema_macro(text)
    assert count == 1 and "macro generate_schema_name" not in renamed.replace("  ", " ")
    assert dbt_project.PROJECT_SCHEMA_MACRO in renamed


def test_a_commented_out_definition_is_left_alone() -> None:
    text = (
        "{# old: {% macro generate_schema_name(c, n) %}{% endmacro %} #}\n"
        "{% macro generate_schema_name(c, n) %}{{ c }}{% endmacro %}\n"
    )
    renamed, count = dbt_project.wrap_schema_macro(text)
    assert count == 1
    assert renamed.startswith("{# old: {% macro generate_schema_name(")


def test_another_runs_schemas_are_foreign_even_when_they_look_like_ours() -> None:
    # Branch `feat` with +schema: staging, and branch `feat-staging`, meet in ci_feat_staging.
    others = [("ci_feat_staging", ["ci_feat_staging", "ci_feat_staging_marts"])]
    assert dbt_project.in_ci_scope("ci_feat_staging", "ci_feat")
    assert dbt_project.foreign_ci_schemas(["ci_feat", "ci_feat_staging"], others) == [
        "ci_feat_staging"
    ]
    assert dbt_project.foreign_ci_schemas(["ci_feat", "ci_feat_marts"], others) == []


def test_the_folder_a_remote_package_installs_into() -> None:
    names = [
        dbt_project.package_dir_name(dbt_project.Package(kind, name))
        for kind, name in (
            ("hub", "dbt-labs/dbt_utils"),
            ("git", "https://github.com/dbt-labs/dbt-codegen.git"),
            ("hub", "calogica/dbt_date"),
        )
    ]
    assert names == ["dbt_utils", "dbt_codegen", "dbt_date"]
