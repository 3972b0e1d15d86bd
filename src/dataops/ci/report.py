"""A CI run as data, and its two renderings: JUnit XML for CI backends, Markdown for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr


@dataclass
class StageResult:
    name: str
    status: str  # passed, failed, skipped, not run
    seconds: float = 0.0
    note: str = ""
    log: str = ""


@dataclass
class CiRun:
    id: str
    commit: str
    branch: str
    started_at: str
    stages: list[StageResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.status in ("passed", "skipped") for s in self.stages)


def junit(run: CiRun) -> str:
    """One JUnit test case per stage: failed stages as failures, skipped and not-run ones as
    skipped, a passed stage's note as its output."""
    failures = sum(s.status == "failed" for s in run.stages)
    skipped = sum(s.status in ("skipped", "not run") for s in run.stages)
    cases = []
    for stage in run.stages:
        body = ""
        if stage.status == "failed":
            body = (
                f"<failure message={quoteattr(stage.note.splitlines()[-1] if stage.note else '')}>"
                f"{escape(stage.note)}</failure>"
            )
        elif stage.status in ("skipped", "not run"):
            body = f"<skipped message={quoteattr(stage.note)}/>"
        elif stage.note:
            body = f"<system-out>{escape(stage.note)}</system-out>"
        cases.append(
            f'  <testcase classname="dataops.ci" name={quoteattr(stage.name)}'
            f' time="{stage.seconds:.3f}">{body}</testcase>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuite name="dataops ci" tests="{len(run.stages)}" failures="{failures}"'
        f' skipped="{skipped}" time="{run.seconds:.3f}">\n' + "\n".join(cases) + "\n</testsuite>\n"
    )


def summary(run: CiRun) -> str:
    """The Markdown table CI backends show (e.g. $GITHUB_STEP_SUMMARY): one row per stage."""
    verdict = "passed" if run.ok else "failed"
    lines = [
        f"## dataops CI {verdict}: `{run.commit[:12]}` on `{run.branch}` ({run.seconds:.0f} s)",
        "",
        "| stage | result | time | notes |",
        "|---|---|---|---|",
    ]
    for stage in run.stages:
        note_lines = stage.note.splitlines()
        # A table row is one line: a failure's last line says what broke; others are joined.
        failed = stage.status == "failed" and note_lines
        note = note_lines[-1] if failed else " ".join(note_lines)
        lines.append(
            f"| {stage.name} | {stage.status} | {stage.seconds:.1f} s | {note.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"
