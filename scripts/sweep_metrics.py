"""Print chosen metrics of a `twin sweep` results directory, one row per arm x grid point,
as mean ± 95 % CI half-width over replications (the numbers quoted in docs/realism.md).

    .venv/bin/python scripts/sweep_metrics.py RESULTS_DIR METRIC [METRIC ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from twin.metrics import ci95


def main(results: Path, metrics: list[str]) -> None:
    rows = pd.read_parquet(results / "summary.parquet")
    print(" | ".join(["arm", "point", "reps", *metrics]))
    for (arm, point), cell in rows.groupby(["arm", "point"], sort=False):
        cells = []
        for metric in metrics:
            leaf = ci95(cell[metric])
            cells.append(f"{leaf['mean']:.4g} ± {leaf['ci95_high'] - leaf['mean']:.2g}")
        print(" | ".join([str(arm), str(point), str(len(cell)), *cells]))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
