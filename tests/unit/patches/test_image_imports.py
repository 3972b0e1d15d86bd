"""The task code runs from what the task images carry (`PACKAGE_PARTS`): task, its core modules
and the patches of dbt's internals, without the patches of Airflow's, which no image has.
(tests/unit/release/test_image_parts.py checks the same parts against the import graph.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from dataops.release.images import PACKAGE_PARTS

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "dataops"

PROBE = """
import importlib.util, pkgutil, sys
import dataops, dataops.patches, dataops.task
assert dataops.__file__.startswith(sys.argv[1]), dataops.__file__
imported = []
for package in (dataops.task, dataops.patches):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        __import__(info.name)
        imported.append(info.name)
assert "dataops.task.transform" in imported and "dataops.patches.dbt.jinja_cache" in imported
assert importlib.util.find_spec("dataops.patches.airflow") is None
assert importlib.util.find_spec("dataops.airflow") is None
print("ok")
"""


def image_site(tmp_path: Path) -> Path:
    """The dataops files an image build copies into its site/ folder (as ImageBuilder does:
    every .py of a folder part, a file part as it is)."""
    site = tmp_path / "site"
    for part in PACKAGE_PARTS:
        path = PACKAGE / part
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for source in found:
            target = site / "dataops" / source.relative_to(PACKAGE)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return site


def test_the_task_code_imports_from_what_the_images_carry(tmp_path: Path) -> None:
    site = image_site(tmp_path)
    assert (site / "dataops" / "patches" / "__init__.py").exists()
    assert not (site / "dataops" / "patches" / "airflow").exists()
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(site)],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
