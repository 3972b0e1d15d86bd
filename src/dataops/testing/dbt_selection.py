"""Which nodes each dbt selection matches, from one parse, in a fresh interpreter.

Usage (in a dbt project folder, with dbt's environment: `dataops.clients.dbt.environment`):
  python -m dataops.testing.dbt_selection SELECTION...  -> a line `RESULT <json>` on stdout,
  {selection: [name, ...]} of the models, seeds and snapshots it matches (what `dbt build`
  builds; tests follow them); exit 2 when the project does not parse (dbt said why above).
One `dbt parse` and a `dbt ls` per selection on its manifest: a subprocess per selection would
parse again each time.
"""

from __future__ import annotations

import json
import sys

from dbt.cli.main import dbtRunner

BUILT = ("--resource-type", "model", "--resource-type", "seed", "--resource-type", "snapshot")


def main(selections: list[str]) -> int:
    parsed = dbtRunner().invoke(["parse", "--no-partial-parse"])
    if not parsed.success:
        return 2
    runner = dbtRunner(manifest=parsed.result)  # type: ignore[arg-type]
    found: dict[str, list[str]] = {}
    for selection in selections:
        listed = runner.invoke(["--quiet", "ls", "--select", selection, "--output", "name", *BUILT])
        if not listed.success:
            return 2
        names = listed.result if isinstance(listed.result, list) else []
        found[selection] = sorted(str(name) for name in names)
    print("RESULT " + json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
