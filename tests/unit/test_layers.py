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
    assert "11 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contracts", "edge"),
    [
        # core must stay pure: no database driver...
        (
            "core/timespan.py",
            "import psycopg",
            ("core is pure",),
            "dataops.core.timespan -> psycopg",
        ),
        # ...no CLI library, even inside a function...
        (
            "core/promotion.py",
            "def _later() -> None:\n    import click  # noqa: F401",
            ("core is pure",),
            "dataops.core.promotion -> click",
        ),
        # ...and nothing above it.
        (
            "core/migration_plan.py",
            "from dataops.clients import git  # noqa: F401",
            ("layers:",),
            "dataops.core.migration_plan -> dataops.clients.git",
        ),
        # The task images carry core and task only.
        (
            "task/load.py",
            "from dataops.project import state  # noqa: F401",
            ("task/ (in the images)",),
            "dataops.task.load -> dataops.project.state",
        ),
        # Nothing imports the cli.
        (
            "release/runs.py",
            "from dataops.cli import options  # noqa: F401",
            ("layers:",),
            "dataops.release.runs -> dataops.cli.options",
        ),
        # The host's code never reaches into the code of the images.
        (
            "clients/dbt.py",
            "from dataops.task import transform  # noqa: F401",
            ("the host's code imports neither",),
            "dataops.clients.dbt -> dataops.task.transform",
        ),
        # A project's tests import testing/; no room of the toolkit does...
        (
            "quality/validation.py",
            "from dataops.testing import project  # noqa: F401",
            ("layers:",),
            "dataops.quality.validation -> dataops.testing.project",
        ),
        # ...and testing/ does not reach into the CLI.
        (
            "testing/project.py",
            "from dataops.cli import validate  # noqa: F401",
            ("layers:",),
            "dataops.testing.project -> dataops.cli.validate",
        ),
        # Releases and the local platform are separate rooms...
        (
            "release/images.py",
            "from dataops.local import host  # noqa: F401",
            ("layers:",),
            "dataops.release.images -> dataops.local.host",
        ),
        # ...and so are releases and CI.
        (
            "ci/stages.py",
            "from dataops.release import runs  # noqa: F401",
            ("layers:",),
            "dataops.ci.stages -> dataops.release.runs",
        ),
        # No module of a room imports one that imports it back, even inside a function.
        (
            "release/runs.py",
            "def _planted() -> None:\n    from dataops.release import smoke  # noqa: F401",
            ("no import cycles",),
            "No cycles are allowed in dataops.release.",
        ),
        # The Airflow patches are for airflow/ only: an image has no Airflow.
        (
            "task/transform.py",
            "from dataops.patches.airflow import supervisor  # noqa: F401",
            ("task/ (in the images)", "only airflow/ imports the Airflow patches"),
            "dataops.task.transform -> dataops.patches.airflow.supervisor",
        ),
        # The dbt patches are for task/ (and the host's dbt client) only...
        (
            "quality/dbt_namespace.py",
            "from dataops.patches.dbt import jinja_cache  # noqa: F401",
            ("only task/ and the host's dbt client import the dbt patches",),
            "dataops.quality.dbt_namespace -> dataops.patches.dbt.jinja_cache",
        ),
        # ...and not for airflow/.
        (
            "airflow/factory.py",
            "from dataops.patches.dbt import manifest  # noqa: F401",
            ("airflow/ (in Airflow)", "only task/ and the host's dbt client"),
            "dataops.airflow.factory -> dataops.patches.dbt.manifest",
        ),
        # The patches are leaves: no other dataops package...
        (
            "patches/dbt/jinja_cache.py",
            "from dataops.core import dbt_project  # noqa: F401",
            ("the patches import no other dataops package",),
            "dataops.patches.dbt.jinja_cache -> dataops.core.dbt_project",
        ),
        # ...and the dbt ones, in the images, no Airflow.
        (
            "patches/dbt/manifest.py",
            "def _later() -> None:\n    import airflow  # noqa: F401",
            ("the dbt patches (in the images) import no Airflow", "task/ (in the images)"),
            "dataops.patches.dbt.manifest -> airflow",
        ),
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    tmp_path: Path, module: str, planted: str, contracts: tuple[str, ...], edge: str
) -> None:
    project = copy_package(tmp_path)
    path = project / "src" / "dataops" / module
    path.write_text(path.read_text() + "\n\n" + planted + "\n")
    result = lint_imports(project)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    # An upward import also closes a cycle between two rooms, so the acyclic contract may
    # break beside the one named; nothing else may.
    assert " 0 broken" not in out, out
    report = out.split("Broken contracts", 1)[1]
    for contract in contracts:
        assert contract in report, (contract, out)
    assert edge in report, out


def test_the_hosts_dbt_client_may_use_the_dbt_patches(tmp_path: Path) -> None:
    project = copy_package(tmp_path)
    path = project / "src" / "dataops" / "clients" / "dbt.py"
    path.write_text(
        path.read_text() + "\n\nfrom dataops.patches.dbt import manifest  # noqa: F401\n"
    )
    result = lint_imports(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "11 kept, 0 broken" in result.stdout
