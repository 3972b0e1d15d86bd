"""Private internals of Airflow, dbt and the libraries they bring are used in
src/dataops/patches/ only. Outside it, no dataops module may import an underscore name from
them, read or write an underscore attribute (or `__dict__`) of something imported from them,
assign onto their classes or modules, or import their internal packages (only to name a type,
under `if TYPE_CHECKING:`, is allowed: it never runs). The patches carry the versions they were
written for (test_versions.py); code elsewhere would carry none."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "dataops"
THIRD_PARTY = ("airflow", "dbt", "dbt_common", "jinja2", "mashumaro", "celery", "kombu")
# Packages of theirs that are internal as a whole (their own code calls them; no user should).
INTERNAL = (
    "airflow.sdk.execution_time",
    "airflow.dag_processing.processor",
    "airflow.jobs",
    "dbt.parser",
    "dbt.contracts",
    "dbt_common.clients.jinja",
    "jinja2.compiler",
)


def third_party(module: str) -> bool:
    return module.split(".")[0] in THIRD_PARTY


def internal(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in INTERNAL)


def private(name: str) -> bool:
    return name == "__dict__" or (name.startswith("_") and not name.startswith("__"))


def root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    imported: set[str] = set()  # names bound to third-party modules and objects
    found = []

    # Imports under `if TYPE_CHECKING:` never run: naming a type (dbt's Manifest) is allowed.
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }

    def say(node: ast.AST, what: str) -> None:
        if id(node) not in typing_only:
            found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if third_party(alias.name):
                    imported.add((alias.asname or alias.name).split(".")[0])
                    if internal(alias.name):
                        say(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and third_party(node.module):
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                if private(alias.name):
                    say(node, f"imports {node.module}.{alias.name}")
            if internal(node.module):
                say(node, f"imports from {node.module}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and private(node.attr)
            and root_name(node.value) in imported
        ):
            say(node, f"uses .{node.attr} of {root_name(node.value)}")
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"setattr", "delattr"}
            and node.args
        ):
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        for target in targets:
            if isinstance(target, ast.Attribute) and root_name(target.value) in imported:
                say(node, f"assigns onto {root_name(target.value)}")
    return found


def test_no_private_internals_outside_the_patches() -> None:
    found = [
        finding
        for path in sorted(PACKAGE.rglob("*.py"))
        if "patches" not in path.relative_to(PACKAGE).parts
        for finding in findings(path)
    ]
    assert found == [], "move these to src/dataops/patches/ (see its README.md):\n" + "\n".join(
        found
    )


def test_it_would_find_what_the_patches_do() -> None:
    found = [f for path in sorted((PACKAGE / "patches").rglob("*.py")) for f in findings(path)]
    text = "\n".join(found)
    assert "uses ._service_subprocess of ActivitySubprocess" in text, text
    assert "assigns onto ActivitySubprocess" in text, text
    assert "uses .__dict__ of DockerOperator" in text, text
    assert "imports from dbt_common.clients.jinja" in text, text
    assert "imports from dbt.parser.manifest" in text, text
