"""Print chosen metrics of `twin run --json` outputs, one row per file, as mean ± 95 % CI
half-width (the numbers quoted in docs/realism.md and the README's claims table).

    .venv/bin/python scripts/json_metrics.py METRIC[,METRIC...] FILE [FILE ...]

A metric is a dotted path below ``metrics`` (``by_architecture.microkernel.incidents.aging``);
the file's ``warnings`` are printed after its row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def leaf(metrics: dict, path: str) -> str:
    node = metrics
    for part in path.split("."):
        node = node[part]
    return f"{node['mean']:.6g} ± {node['ci95_high'] - node['mean']:.2g}"


def main(names: list[str], files: list[Path]) -> None:
    print(" | ".join(["file", *names]))
    for path in files:
        summary = json.loads(path.read_text())
        print(" | ".join([path.name, *(leaf(summary["metrics"], n) for n in names)]))
        for warning in summary.get("warnings", []):
            print(f"  warning: {warning}")


if __name__ == "__main__":
    main(sys.argv[1].split(","), [Path(p) for p in sys.argv[2:]])
