"""The house rules of the repository's own text: a short README whose links resolve, the
version in CHANGELOG.md equal to the package's, and no dated figure outside the benchmarks page
and the changelog."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from dataops import __version__

ROOT = Path(__file__).resolve().parents[2]
DATED = re.compile(r"\b20[0-9]{2}-[01][0-9]-[0-3][0-9]\b")
# Dates that are data, not measurements: example intervals, fixture rows, test inputs.
EXAMPLE_DATES = re.compile(r"\b(2013|2024|2025)-[01][0-9]-[0-3][0-9]\b")


def tracked(*pathspecs: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z", *pathspecs], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_the_readme_is_short() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert len(text.encode()) <= 20 * 1024


def test_every_relative_link_of_the_readme_resolves() -> None:
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    assert len(local) >= 10, "the README links into the docs site"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
    assert "../" not in text, "the README names a path outside the repository"


def test_the_changelog_names_the_package_version_as_the_latest_release() -> None:
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert releases, "CHANGELOG.md has no released version"
    assert releases[0] == __version__


def test_no_dated_figure_outside_the_benchmarks_page_and_the_changelog() -> None:
    allowed = {ROOT / "CHANGELOG.md", ROOT / "docs" / "benchmarks.md"}
    found = []
    for path in tracked("README.md", "CONTRIBUTING.md", "docs", "src", "dags", "infra", "ci"):
        if path in allowed or path.suffix not in (".md", ".py", ".yml", ".yaml", ".sh", ".sql"):
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if DATED.search(EXAMPLE_DATES.sub("", line)):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not found, "dated lines (history goes to CHANGELOG.md):\n" + "\n".join(found)
