from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dataops.core.pipeline import PipelineSpec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def parse(folder: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse a DAG folder in a fresh interpreter (see parse_dags.py); its spec cache is a new
    folder unless `env` names one (DATAOPS_CACHE_DIR)."""
    cache = {"DATAOPS_CACHE_DIR": tempfile.mkdtemp(prefix="dataops-spec-cache-")}
    result = subprocess.run(
        [sys.executable, str(HERE / "parse_dags.py"), str(folder)],
        env={**os.environ, **cache, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))


@pytest.fixture(scope="session")
def parsed() -> dict[str, Any]:
    return parse(ROOT / "dags")


def copy_dags(tmp_path: Path) -> Path:
    target = tmp_path / "dags"
    shutil.copytree(ROOT / "dags", target, ignore=shutil.ignore_patterns("__pycache__"))
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
