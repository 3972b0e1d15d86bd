"""Benchmark: how long dataops.yml loading takes on hostile and on large legitimate files.

Run: .venv/bin/python bench/bench_config_load.py
Prints one line per case (best of 5, milliseconds); docs/benchmarks.md holds the current figures.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.core.test_yaml_loader import billion_laughs

from dataops.core.yaml_loader import load_yaml_text
from dataops.errors import ConfigError


def large(entries: int) -> str:
    return "items:\n" + "".join(
        f"  - {{name: item{i}, value: {i}, tags: [a, b, c]}}\n" for i in range(entries)
    )


CASES = {
    "billion laughs (9 levels, 10^9 values if expanded)": billion_laughs(),
    "1,100 nested lists": "a: " + "[" * 1100 + "]" * 1100,
    "1,100 nested maps": "".join("  " * i + f"k{i}:\n" for i in range(1100)),
    "python tag": "a: !!python/object/apply:os.system ['true']\n",
    "shipped dataops.yml": (Path(__file__).resolve().parents[1] / "dataops.yml").read_text(),
    "large legit file (20,000 entries)": large(20_000),
}


def main() -> None:
    for name, text in CASES.items():
        best = float("inf")
        outcome = ""
        for _ in range(5):
            started = time.perf_counter()
            try:
                load_yaml_text(text, "bench.yml")
                outcome = "accepted"
            except ConfigError:
                outcome = "rejected"
            best = min(best, time.perf_counter() - started)
        size = len(text.encode())
        print(f"{name:<52} {size / 1024:>8.1f} KiB  {outcome:<9} {best * 1000:>9.2f} ms")


if __name__ == "__main__":
    main()
