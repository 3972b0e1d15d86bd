"""A CI run as data, rendered as JUnit XML and as a Markdown summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from dataops.ci.report import CiRun, StageResult, junit, summary

COMMIT = "9c1e4b7d2a3f80e6b5c4d3e2f1a0b9c8d7e6f5a4"
FAILED_NOTE = (
    "Running 14 tests\n"
    "FAILED tests/unit/test_orders.py::test_totals - assert 41 == 42\n"
    "1 failed, 13 passed in 2.31s"
)


def run_of(*stages: StageResult) -> CiRun:
    return CiRun(
        id="ci-20250304-091500",
        commit=COMMIT,
        branch="feature/orders-revenue",
        started_at="2025-03-04T09:15:00+00:00",
        stages=list(stages),
        seconds=187.6,
    )


def mixed_run() -> CiRun:
    return run_of(
        StageResult("validate", "passed", 1.234, ""),
        StageResult("build", "passed", 42.5, "built dbt; skipped ingest: unchanged"),
        StageResult("unit", "failed", 12.0, FAILED_NOTE, "/tmp/ci/unit.log"),
        StageResult("integration", "not run", note="an earlier stage failed"),
        StageResult("promote", "skipped", note="branch 'feature/orders-revenue' is not main"),
    )


@pytest.mark.parametrize(
    ("statuses", "ok"),
    [
        ([], True),
        (["passed"], True),
        (["passed", "skipped", "passed"], True),
        (["skipped"], True),
        (["passed", "failed"], False),
        (["passed", "not run"], False),
        (["failed", "not run", "skipped"], False),
    ],
)
def test_run_ok(statuses: list[str], ok: bool) -> None:
    run = run_of(*(StageResult(f"stage{i}", s) for i, s in enumerate(statuses)))
    assert run.ok is ok


def parse(run: CiRun) -> ET.Element:
    text = junit(run)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode())


def test_junit_counts_and_one_case_per_stage() -> None:
    suite = parse(mixed_run())
    assert suite.tag == "testsuite"
    assert suite.attrib == {
        "name": "dataops ci",
        "tests": "5",
        "failures": "1",
        "skipped": "2",
        "time": "187.600",
    }
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "validate",
        "build",
        "unit",
        "integration",
        "promote",
    ]
    assert {c.get("classname") for c in cases} == {"dataops.ci"}
    assert [c.get("time") for c in cases] == ["1.234", "42.500", "12.000", "0.000", "0.000"]


def test_junit_failed_stage_has_a_failure_with_the_last_line_as_message() -> None:
    case = parse(mixed_run()).findall("testcase")[2]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "1 failed, 13 passed in 2.31s"
    assert failure.text == FAILED_NOTE
    assert case.find("skipped") is None and case.find("system-out") is None


def test_junit_failed_stage_without_a_note() -> None:
    case = parse(run_of(StageResult("lint", "failed", 3.0))).find("testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == ""
    assert parse(run_of(StageResult("lint", "failed"))).get("failures") == "1"


def test_junit_skipped_and_not_run_stages_are_skipped_with_their_note() -> None:
    cases = parse(mixed_run()).findall("testcase")
    for case, note in [
        (cases[3], "an earlier stage failed"),
        (cases[4], "branch 'feature/orders-revenue' is not main"),
    ]:
        skipped = case.find("skipped")
        assert skipped is not None and skipped.get("message") == note
        assert case.find("failure") is None


def test_junit_passed_stage_note_is_its_output() -> None:
    cases = parse(mixed_run()).findall("testcase")
    out = cases[1].find("system-out")
    assert out is not None and out.text == "built dbt; skipped ingest: unchanged"
    # A passed stage without a note has an empty test case.
    assert list(cases[0]) == [] and not cases[0].text


def test_junit_escapes_special_characters() -> None:
    nasty = "expected <orders> & \"customers\" > 0\nwhere a < b && c = 'x'"
    run = run_of(
        StageResult('lint "sql" <a&b>', "passed", 1.0, nasty),
        StageResult("unit", "failed", 1.0, nasty),
        StageResult("promote", "skipped", 0.0, nasty),
    )
    text = junit(run)
    assert "<orders>" not in text and "&&" not in text
    cases = ET.fromstring(text).findall("testcase")
    assert cases[0].get("name") == 'lint "sql" <a&b>'
    out = cases[0].find("system-out")
    assert out is not None and out.text == nasty
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.text == nasty
    assert failure.get("message") == "where a < b && c = 'x'"
    skipped = cases[2].find("skipped")
    assert skipped is not None and skipped.get("message") == nasty


def test_junit_of_an_empty_run() -> None:
    suite = parse(run_of())
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("0", "0", "0")
    assert suite.findall("testcase") == []


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in rows[1:]]


def test_summary_of_a_failed_run() -> None:
    text = summary(mixed_run())
    lines = text.splitlines()
    assert lines[0] == ("## dataops CI failed: `9c1e4b7d2a3f` on `feature/orders-revenue` (188 s)")
    assert COMMIT[:13] not in text
    assert lines[2:4] == ["| stage | result | time | notes |", "|---|---|---|---|"]
    assert table_rows(text) == [
        ["validate", "passed", "1.2 s", ""],
        ["build", "passed", "42.5 s", "built dbt; skipped ingest: unchanged"],
        ["unit", "failed", "12.0 s", "1 failed, 13 passed in 2.31s"],
        ["integration", "not run", "0.0 s", "an earlier stage failed"],
        ["promote", "skipped", "0.0 s", "branch 'feature/orders-revenue' is not main"],
    ]
    assert "FAILED tests/unit" not in text
    assert text.endswith("|\n")


def test_summary_of_a_passed_run() -> None:
    run = run_of(
        StageResult("validate", "passed", 0.8),
        StageResult("promote", "skipped", note="branch 'feature/orders-revenue' is not main"),
    )
    text = summary(run)
    assert text.startswith("## dataops CI passed: `9c1e4b7d2a3f`")
    assert len(table_rows(text)) == 2


def test_summary_replaces_pipes_in_notes() -> None:
    run = run_of(
        StageResult("build", "passed", 2.0, "built dbt | ingest"),
        StageResult("unit", "failed", 2.0, "collected 3 items\nerror: a | b || c"),
    )
    rows = table_rows(summary(run))
    assert rows[0][3] == "built dbt / ingest"
    assert rows[1][3] == "error: a / b // c"
    assert all(len(row) == 4 for row in rows)


def test_summary_keeps_each_stage_on_one_row() -> None:
    run = run_of(
        StageResult("build", "passed", 2.0, "built extract\nskipped load: unchanged"),
        StageResult("promote", "skipped", 0.0, "branch 'x' is not main\n"),
    )
    text = summary(run)
    rows = table_rows(text)
    assert [row[0] for row in rows] == ["build", "promote"]
    assert rows[0][3] == "built extract skipped load: unchanged"
    assert rows[1][3] == "branch 'x' is not main"
    assert text.count("\n") == 4 + len(run.stages)
