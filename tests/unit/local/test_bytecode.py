"""The venv is byte-compiled at install (infra/bootstrap.sh, `dataops up`'s own sync).

The first test checks the venv `make setup` left (the one the suite runs in), the second the
commands `dataops up` installs with.

Where PYTHONDONTWRITEBYTECODE is set (some CI hosts set it) no process writes a .pyc, so without
the install-time compile every Airflow process and every CLI command compiles its modules from
source again: the three deployments took about 60 s to start instead of about 30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Prints every imported module whose .py has no up-to-date .pyc next to it (compiled from
# source in this process), after importing what the CLI, dbt and Airflow's CLI import. The
# toolkit's own modules (an editable install) only need a .pyc: an edit since the last
# `make setup` makes theirs stale, which is development, not a missing install step.
_PROBE = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    import dataops.cli.main, dbt.cli.main, airflow.cli.cli_parser
    stale = []
    for name, module in list(sys.modules.items()):
        origin = getattr(getattr(module, "__spec__", None), "origin", None)
        if not origin or not origin.endswith(".py") or not os.path.exists(origin):
            continue
        pyc = importlib.util.cache_from_source(origin)
        try:
            with open(pyc, "rb") as handle:
                header = handle.read(16)
        except OSError:
            stale.append(name)
            continue
        flags = int.from_bytes(header[4:8], "little")
        if flags & 1 or name.split(".")[0] == "dataops":  # hash-based, or ours (above)
            continue
        st = os.stat(origin)
        if int.from_bytes(header[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF or (
            int.from_bytes(header[12:16], "little") != st.st_size & 0xFFFFFFFF
        ):
            stale.append(name)
    print(json.dumps({"imported": len(sys.modules), "stale": sorted(stale)}))
    """
)


def test_installed_modules_are_byte_compiled() -> None:
    # The venv's own modules: without PYTHONPATH, which `dataops ci run` points at the clean
    # checkout it tests (a new clone nothing byte-compiled), `dataops` is the editable install.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["imported"] > 1000, found["imported"]  # Airflow, dbt and the CLI did import
    assert found["stale"] == [], (
        f"{len(found['stale'])} module(s) compiled from source (run `make setup`): "
        f"{found['stale'][:20]}"
    )


def installs(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[list[str]]]:
    """What `dataops up` runs to install into a venv without Airflow: (its python, the argvs)."""
    from dataops.local import host

    python = root / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    ran: list[list[str]] = []

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(host.sys, "executable", str(python))
    monkeypatch.setattr(host.shutil, "which", lambda *a, **k: "/usr/bin/uv")
    monkeypatch.setattr(host.subprocess, "run", run)
    assert host.ensure_python_packages(root, lambda message: None) is True
    return python, ran


def test_dataops_up_installs_byte_compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dataops up` from an environment without Airflow syncs the lock itself: byte-compiled,
    the toolkit's editable modules included (as infra/bootstrap.sh does)."""
    (tmp_path / "requirements.lock").write_text("")
    (tmp_path / "src" / "dataops").mkdir(parents=True)  # the toolkit's checkout
    python, ran = installs(tmp_path, monkeypatch)
    sync = next(argv for argv in ran if argv[1:3] == ["pip", "sync"])
    assert "--compile-bytecode" in sync
    assert [str(python), "-m", "compileall"] == ran[-1][:3]
    assert Path(ran[-1][-1]) == tmp_path / "src" / "dataops"


def test_dataops_up_in_a_project_installs_the_pinned_wheel_from_vendor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a project `dataops init` made (no src/), the lock's dataops pin comes from vendor/,
    never from uv's cache of an earlier wheel of the same version."""
    (tmp_path / "requirements.lock").write_text("dataops==0.1.0\n")
    _, ran = installs(tmp_path, monkeypatch)
    assert len(ran) == 1
    assert ran[0][1:3] == ["pip", "sync"]
    assert ran[0][-4:] == ["--refresh-package", "dataops", "--find-links", str(tmp_path / "vendor")]
