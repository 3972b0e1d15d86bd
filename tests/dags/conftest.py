"""The toolkit's DAG tests run on the fixture project's dags/ (tests/fixtures/project), never on
the working tree's: a team's own pipelines are checked by tests/project."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dataops.testing.project import parse_dag_folder as parse
from tests.conftest import PROJECT

if TYPE_CHECKING:
    from dataops.core.pipeline import PipelineSpec

__all__ = ["DAGS", "copy_dags", "parse"]

DAGS = PROJECT / "dags"


@pytest.fixture(scope="session")
def parsed() -> dict[str, Any]:
    return parse(DAGS)


def copy_dags(tmp_path: Path) -> Path:
    target = tmp_path / "dags"
    shutil.copytree(DAGS, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The full loads (YAML + validation) spec_cache.load makes, in a private cache folder."""
    from dataops.airflow import spec_cache

    monkeypatch.setenv("DATAOPS_CACHE_DIR", str(tmp_path / "cache"))
    made: list[Path] = []
    real = spec_cache.load_spec

    def counting(path: Path, raw: bytes | None = None) -> PipelineSpec:
        made.append(path)
        return real(path, raw)

    monkeypatch.setattr(spec_cache, "load_spec", counting)
    return made
