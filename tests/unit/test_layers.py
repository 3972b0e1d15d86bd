"""The layer contract (pyproject.toml, [tool.importlinter]) holds, and it would catch a break:
each case plants one forbidden import in a copy of the package and sees lint-imports fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def copy_package(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(
        ROOT / "src" / "dataops",
        project / "src" / "dataops",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return project


def test_the_package_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract", "edge"),
    [
        # core must stay pure: no database driver...
        ("core/timespan.py", "import psycopg", "core is pure", "dataops.core.timespan -> psycopg"),
        # ...no CLI library, even inside a function...
        (
            "core/promotion.py",
            "def _later() -> None:\n    import click  # noqa: F401",
            "core is pure",
            "dataops.core.promotion -> click",
        ),
        # ...and nothing above it.
        (
            "core/migration_plan.py",
            "from dataops.clients import git  # noqa: F401",
            "layers:",
            "dataops.core.migration_plan -> dataops.clients.git",
        ),
        # The task images carry core and task only.
        (
            "task/load.py",
            "from dataops.project import state  # noqa: F401",
            "task/ (in the images)",
            "dataops.task.load -> dataops.project.state",
        ),
        # Nothing imports the cli.
        (
            "delivery/runs.py",
            "from dataops.cli import options  # noqa: F401",
            "layers:",
            "dataops.delivery.runs -> dataops.cli.options",
        ),
        # The host's code never reaches into the code of the images.
        (
            "clients/dbt.py",
            "from dataops.task import transform  # noqa: F401",
            "the host's code imports neither",
            "dataops.clients.dbt -> dataops.task.transform",
        ),
        # The delivery features and the local platform are separate rooms.
        (
            "delivery/images.py",
            "from dataops.local import host  # noqa: F401",
            "layers:",
            "dataops.delivery.images -> dataops.local.host",
        ),
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    tmp_path: Path, module: str, planted: str, contract: str, edge: str
) -> None:
    project = copy_package(tmp_path)
    path = project / "src" / "dataops" / module
    path.write_text(path.read_text() + "\n\n" + planted + "\n")
    result = lint_imports(project)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 broken" in out, out
    report = out.split("Broken contracts", 1)[1]
    assert contract in report, out
    assert edge in report, out
