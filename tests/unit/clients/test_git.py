"""What a release records of a dirty tree: every changed path, whole."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dataops.clients.git import dirty_paths


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


def test_dirty_paths_names_each_changed_file_in_full(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "pipeline_orders.py").write_text("a\n")
    (tmp_path / "dags" / "old name.yml").write_text("b\n")
    (tmp_path / "notes.txt").write_text("c\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    assert dirty_paths(tmp_path, "dags") == []
    (tmp_path / "dags" / "pipeline_orders.py").write_text("changed\n")  # " M" first column blank
    git(tmp_path, "mv", "dags/old name.yml", "dags/new name.yml")  # a rename, with spaces
    (tmp_path / "dags" / "untracked.yml").write_text("d\n")
    (tmp_path / "notes.txt").write_text("outside dags/\n")
    assert sorted(dirty_paths(tmp_path, "dags")) == [
        "dags/new name.yml",
        "dags/pipeline_orders.py",
        "dags/untracked.yml",
    ]
    assert dirty_paths(tmp_path / "missing") == []
