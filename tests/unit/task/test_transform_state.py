"""Which --state the dbt step hands dbt: the baked deferral's empty state, unless the selection
reads the state beyond deferral (dbt's state comparison, a previous run's results, source
freshness) or the image's bake did not merge this manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataops.task import transform


@pytest.mark.parametrize(
    "select",
    [
        "state:modified",
        "+state:modified+",
        "state:modified.body,tag:nightly",
        "result:error+",
        "source_status:fresher+",
        "stg_orders state:new",
    ],
)
def test_a_selection_that_reads_the_state_gets_the_real_state(
    select: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baked = _prepare(select, tmp_path, monkeypatch)
    assert baked is not None and baked.defer_state is None


@pytest.mark.parametrize(
    "select",
    ["stg_orders+", "tag:nightly", "path:models/state_taxes", "my_result+", "+fct_statements"],
)
def test_any_other_selection_gets_the_baked_deferral(
    select: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baked = _prepare(select, tmp_path, monkeypatch)
    assert baked is not None and baked.defer_state == tmp_path / "defer-baked"


def test_without_a_baked_deferral_dbt_reads_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baked = _prepare("stg_orders+", tmp_path, monkeypatch, merged=False)
    assert baked is not None and baked.defer_state is None


def _prepare(
    select: str, state_dir: Path, monkeypatch: pytest.MonkeyPatch, merged: bool = True
) -> transform._Baked | None:
    manifest = object()
    asked: list[Path] = []

    def defer_state(directory: Path, state: Path) -> Path | None:
        asked.append(state)
        return directory / "defer-baked" if merged else None

    monkeypatch.setattr(transform.dbt_manifest, "load", lambda *args: manifest)
    monkeypatch.setattr(transform.dbt_manifest, "baked_defer_state", defer_state)
    monkeypatch.setattr(transform.jinja_cache, "install", lambda directory: 7)
    baked = transform._prepare(state_dir / "manifest.json", "dev", "orders", "db", select)
    assert baked is not None and baked.manifest is manifest and baked.templates == 7
    assert asked in ([], [state_dir / "manifest.json"])  # the manifest this run defers to
    return baked
