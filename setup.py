"""Build hook: the wheel carries the project files `dataops init` copies into a new project.

Everything else about the package is in pyproject.toml. The files named in
src/dataops/scaffold/files.txt live at the top level of this repository (they are the reference
project's own); the wheel gets a copy of them under dataops/scaffold/files/, so a toolkit
installed from the wheel can create a project without this repository at hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
MANIFEST = ROOT / "src" / "dataops" / "scaffold" / "files.txt"
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "target", "logs", "dbt_packages", ".user.yml")


def scaffold_paths() -> list[tuple[str, bool]]:
    """(path, required): the shared files must exist; the example's (any section but
    [common]) are left out of a wheel built from a checkout without the example."""
    section, found = "", []
    for raw in MANIFEST.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#"):
            found.append((line, section == "common"))
    return found


class BuildWithScaffold(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the files from this checkout
        target = Path(self.build_lib) / "dataops" / "scaffold" / "files"
        shutil.rmtree(target, ignore_errors=True)
        for name, required in scaffold_paths():
            source = ROOT / name
            if not source.exists():
                if not required:
                    continue
                raise SystemExit(f"{MANIFEST}: {name} does not exist in {ROOT}")
            if name.endswith("/"):
                shutil.copytree(source, target / name, ignore=SKIP, dirs_exist_ok=True)
            else:
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithScaffold})
