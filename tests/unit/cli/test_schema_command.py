"""`dataops schema`: prints a schema, or keeps the project's schemas/ up to date."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dataops.cli.main import cli
from dataops.cli.schema import NAMES
from dataops.core.json_schema import SCHEMAS, render
from tests.conftest import PROJECT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT / "dataops.yml", tmp_path / "dataops.yml")
    return tmp_path


def dataops(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(project / "dataops.yml"), "schema", *args])


def test_the_command_names_every_schema() -> None:
    assert list(NAMES) == list(SCHEMAS)


@pytest.mark.parametrize("name", NAMES)
def test_it_prints_the_schema_as_json(project: Path, name: str) -> None:
    result = dataops(project, name)
    assert result.exit_code == 0, result.output
    assert result.stdout == render(name)
    assert json.loads(result.stdout)["$id"] == SCHEMAS[name].id
    assert not (project / "schemas").exists()  # printing writes nothing


def test_printing_needs_a_name(project: Path) -> None:
    result = dataops(project)
    assert result.exit_code == 2
    assert "dataops schema pipeline" in result.output


def test_write_is_idempotent_and_says_what_it_wrote(project: Path) -> None:
    first = dataops(project, "--write")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [f"wrote {SCHEMAS[n].path}" for n in NAMES]
    files = {n: project / SCHEMAS[n].path for n in NAMES}
    assert {n: f.read_text() for n, f in files.items()} == {n: render(n) for n in NAMES}
    stamps = {n: f.stat().st_mtime_ns for n, f in files.items()}
    again = dataops(project, "--write")
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [f"ok {SCHEMAS[n].path} is up to date" for n in NAMES]
    assert {n: f.stat().st_mtime_ns for n, f in files.items()} == stamps


def test_check_names_a_stale_file_and_writes_nothing(project: Path) -> None:
    assert dataops(project, "--write").exit_code == 0
    stale = project / SCHEMAS["pipeline"].path
    stale.write_text("{}\n")
    result = dataops(project, "--check")
    assert result.exit_code == 1
    assert "schemas/pipeline.schema.json" in result.stderr
    assert "dataops schema --write" in result.stderr
    assert stale.read_text() == "{}\n"
    assert dataops(project, "--write", "dataops").stdout.startswith("ok schemas/dataops")
    assert dataops(project, "--write", "pipeline").stdout.startswith("wrote schemas/pipeline")
    assert dataops(project, "--check").exit_code == 0


def test_write_works_while_dataops_yml_does_not_validate(project: Path) -> None:
    config = project / "dataops.yml"
    config.write_text(config.read_text().replace("environments:", "enviroments:"))
    result = dataops(project, "--write")
    assert result.exit_code == 0, result.output
    assert (project / SCHEMAS["dataops"].path).read_text() == render("dataops")
