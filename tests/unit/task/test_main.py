"""`dataops-task`: the step comes from the command line, else from the image (DATAOPS_TASK)."""

from __future__ import annotations

import pytest

from dataops.task.main import main


def test_without_a_step_or_dataops_task_it_says_how_to_name_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATAOPS_TASK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "name the step (extract, load or transform), or set DATAOPS_TASK" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("step", ["extract", "load"])
def test_the_images_step_runs_when_none_is_given(
    step: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The shared task.Dockerfile sets DATAOPS_TASK=<folder>; with no spec the step itself
    # reports what is missing, which proves it was the one that ran.
    monkeypatch.setenv("DATAOPS_TASK", step)
    monkeypatch.delenv("DATAOPS_TASK_SPEC", raising=False)
    assert main([]) == 1
    assert f"dataops-task {step} failed: environment variable DATAOPS_TASK_SPEC is not set" in (
        capsys.readouterr().err
    )


def test_a_step_given_on_the_command_line_wins(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATAOPS_TASK", "extract")
    monkeypatch.delenv("DATAOPS_TASK_SPEC", raising=False)
    assert main(["load"]) == 1
    assert "dataops-task load failed" in capsys.readouterr().err


def test_an_unknown_dataops_task_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAOPS_TASK", "publish")
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
