"""The task images carry task/ and the core modules it imports, and none of the host's code."""

from __future__ import annotations

from pathlib import Path

import grimp

from dataops.release import images

SRC = Path(images.__file__).resolve().parents[2]


def imported_by_the_task_code() -> set[str]:
    graph = grimp.build_graph("dataops")
    found: set[str] = set()
    for module in graph.find_descendants("dataops.task") | {"dataops.task"}:
        found |= graph.find_upstream_modules(module)
    return {m for m in found if m.startswith("dataops.") and not m.startswith("dataops.task")}


def shipped() -> set[str]:
    modules = set()
    for part in images.PACKAGE_PARTS:
        path = SRC / "dataops" / part
        assert path.exists(), f"PACKAGE_PARTS names {part}, which does not exist"
        if path.suffix not in ("", ".py"):
            continue  # a data file (py.typed)
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            dotted = ".".join(file.relative_to(SRC).with_suffix("").parts)
            modules.add(dotted.removesuffix(".__init__"))
    return modules


def test_the_images_carry_every_module_the_task_code_imports() -> None:
    missing = imported_by_the_task_code() - shipped()
    assert not missing, (
        f"the task code imports {sorted(missing)}, which the images would lack: add them to "
        "TASK_CORE_MODULES in src/dataops/release/images.py"
    )


def test_the_images_carry_no_host_module() -> None:
    needed = imported_by_the_task_code() | {"dataops", "dataops.core", "dataops.patches"}
    extra = {m for m in shipped() if not m.startswith("dataops.task")} - needed
    assert not extra, f"the images would carry {sorted(extra)}, which no task code imports"
    for host in ("dataops.core.promotion", "dataops.core.release_page", "dataops.core.helm"):
        assert host not in shipped()
    # The patches of Airflow's internals stay out: no image has Airflow.
    assert not {m for m in shipped() if m.startswith("dataops.patches.airflow")}
