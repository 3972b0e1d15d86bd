#!/usr/bin/env bash
# What every hosted CI backend runs once the platform is up (`make up`): the dataops CI stages,
# with the JUnit report and the Markdown summary in reports/. GitHub Actions and GitLab CI call
# it; the git-push hook runs the same `dataops ci run` in a clean checkout.
# Usage: ci/stages.sh BASE_REF   (the ref lint compares with, e.g. origin/main)
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: ci/stages.sh BASE_REF}"
mkdir -p reports
exec .venv/bin/dataops ci run --base "$base" --junit reports/junit.xml --summary reports/summary.md
