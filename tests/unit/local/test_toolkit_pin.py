"""`dataops doctor`'s toolkit version check: the installed toolkit against the project's pin."""

from __future__ import annotations

from pathlib import Path

from dataops import __version__
from dataops.local.doctor import pinned_version, toolkit_pin


def test_the_pin_is_read_from_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("click==8.1.8\n    # via dataops\ndataops==0.3.1\nrich==14.0.0\n")
    assert pinned_version(lock) == "0.3.1"
    assert pinned_version(tmp_path / "missing.lock") is None


def test_a_project_pinning_another_version_is_told_how_to_fix_it(tmp_path: Path) -> None:
    (tmp_path / "requirements.lock").write_text("dataops==0.0.9\n")
    check = toolkit_pin(tmp_path)
    assert not check.ok
    assert check.detail == f"the project pins dataops 0.0.9; dataops {__version__} is installed"
    assert "make setup" in check.fix


def test_the_pinned_version_installed_is_fine(tmp_path: Path) -> None:
    (tmp_path / "requirements.lock").write_text(f"dataops=={__version__}\n")
    assert toolkit_pin(tmp_path).ok


def test_a_project_without_a_pin_is_told_to_add_one(tmp_path: Path) -> None:
    (tmp_path / "requirements.lock").write_text("click==8.1.8\n")
    check = toolkit_pin(tmp_path)
    assert not check.ok and f"dataops=={__version__}" in check.fix


def test_the_toolkit_checkout_runs_its_own_source(tmp_path: Path) -> None:
    (tmp_path / "src" / "dataops").mkdir(parents=True)
    (tmp_path / "src" / "dataops" / "__init__.py").write_text("")
    (tmp_path / "requirements.lock").write_text("click==8.1.8\n")
    assert toolkit_pin(tmp_path).ok
