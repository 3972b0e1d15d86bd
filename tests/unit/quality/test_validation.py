"""`dataops validate`'s rules that need no service (quality/validation.py)."""

from __future__ import annotations

from pathlib import Path

from dataops.core.config import load_config
from dataops.quality.validation import smoke_problems

ROOT = Path(__file__).resolve().parents[3]
STAGES = "      stages: [[airlines, airports, planes, weather], [flights]]"


def config_with_stages(tmp_path: Path, stages: str) -> Path:
    text = (ROOT / "dataops.yml").read_text()
    assert STAGES in text
    path = tmp_path / "dataops.yml"
    path.write_text(text.replace(STAGES, f"      stages: {stages}"))
    return path


def test_a_smoke_stage_naming_a_missing_pipeline_is_named_with_its_line(tmp_path: Path) -> None:
    path = config_with_stages(tmp_path, "[[customers], [orders_daily, customers]]")
    loaded = load_config(path)
    problems = smoke_problems(loaded, {"customers", "orders"})
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if "customers]" in text
    )
    assert problems == [
        f"{path}:{line}:30: environments.staging.smoke.stages: 'orders_daily' is no "
        "pipeline of this project (dags/pipelines/ has: customers, orders); remove it from the "
        "stage or add dags/pipelines/orders_daily.yml"
    ]


def test_smoke_stages_of_existing_pipelines_pass(tmp_path: Path) -> None:
    loaded = load_config(config_with_stages(tmp_path, "[[customers, orders]]"))
    assert smoke_problems(loaded, {"customers", "orders"}) == []
    assert len(smoke_problems(loaded, set())) == 2  # nothing passes vacuously
