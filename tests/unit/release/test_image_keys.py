"""The transform image's content key covers the `dbt:` settings its build copy is made of.

The image carries the profile the toolkit writes (threads, schema, one output per target) and
the manifests parsed with it. A key of the project's files alone kept the old image, with the
old threads or targets, after `dbt:` in dataops.yml changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dataops.core.config import load_config
from dataops.project.environment import Project
from dataops.release import images
from tests.conftest import ROOT, copy_project


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    # The toolkit's own files, and the fixture project's config and dbt project.
    shutil.copy(ROOT / "requirements.lock", project / "requirements.lock")
    ignore = shutil.ignore_patterns("__pycache__", "target", "logs", "dbt_packages")
    for name in ("images", "src"):
        shutil.copytree(ROOT / name, project / name, ignore=ignore)
    copy_project(project, "dataops.yml", "dbt_project")
    monkeypatch.setenv("DATAOPS_STATE_DIR", str(tmp_path / "state"))
    # The base image's id is part of every key; a fixed one stands in for the engine's.
    monkeypatch.setattr(images, "image_inspect", lambda name: ("sha256:" + "b" * 64, "test"))
    return project


def keys(project: Path, **settings: str) -> dict[str, str]:
    """The images' keys with dataops.yml's `dbt:` section made of `settings`."""
    config = project / "dataops.yml"
    text = config.read_text()
    start = text.index("\ndbt:")
    end = text.index("\n\n", start)
    lines = "".join(f"\n  {key}: {value}" for key, value in settings.items())
    config.write_text(text[:start] + "\ndbt:\n  project_dir: dbt_project" + lines + text[end:])
    builder = images.ImageBuilder(Project.of(load_config(config)), lambda message: None)
    return {name: builder.content_hash(name, "") for name in ("extract", "transform")}


def test_a_changed_dbt_setting_changes_the_transform_key_only(tree: Path) -> None:
    default = keys(tree)
    assert keys(tree) == default  # the same settings, the same keys
    for setting in (
        {"threads": "4"},
        {"schema": "reporting"},
        {"targets": "{prod: production}"},
        {"profile": "acme_warehouse"},
        {"packages": "vendored"},
    ):
        changed = keys(tree, **setting)
        assert changed["transform"] != default["transform"], setting
        assert changed["extract"] == default["extract"], setting
    # Explicit values equal to the defaults make the same build copy.
    assert keys(tree, threads="2", schema="analytics", ci_target="ci") == default


def test_the_order_of_environments_is_part_of_the_transform_key(tree: Path) -> None:
    """The first environment's target is the profile's default, the one the image's manifests
    are parsed with: another order is another image."""
    import dataclasses

    keys(tree)  # the tree's dataops.yml, as the other test starts from
    loaded = load_config(tree / "dataops.yml")
    builder = images.ImageBuilder(Project.of(loaded), lambda message: None)
    before = builder.content_hash("transform", "")
    config = loaded.config
    reordered = config.model_copy(
        update={"environments": dict(reversed(list(config.environments.items())))}
    )
    builder = images.ImageBuilder(
        Project.of(dataclasses.replace(loaded, config=reordered)), lambda message: None
    )
    assert builder.content_hash("transform", "") != before
    assert builder.content_hash("extract", "") == images.ImageBuilder(
        Project.of(loaded), lambda message: None
    ).content_hash("extract", "")
