"""Write the synthetic Failure Trace Archive fixture of the tests (tests/data/fta-g5k-style/).

Each node alternates available and unavailable intervals drawn from known distributions,
G5K-style (the FTA paper's Grid'5000 fits, Javadi et al. JPDC 2013): time between failures
Weibull (shape 0.48, scale 14.37 h), unavailability lognormal (mu -2.0, sigma 2.2 of
ln hours). Each node's process starts long before the trace window, so its first and last
intervals are cut by the window, as in a real trace. Times are whole epoch seconds. Run
from the repository root:

    .venv/bin/python scripts/make_fta_fixture.py
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "fta-g5k-style"
NODES = 20
WINDOW_START = 1_136_073_600  # 2006-01-01 00:00 UTC, epoch seconds
WINDOW_HOURS = 30 * 24
WARM_UP_HOURS = 2000
TBF_SHAPE, TBF_SCALE = 0.48, 14.37
DOWN_MU, DOWN_SIGMA = -2.0, 2.2
SEED = 2013


def node_intervals(rng: np.random.Generator) -> list[tuple[int, float, float]]:
    """(event_type, start, stop) in hours since the window start, cut to the window."""
    t, up, out = -WARM_UP_HOURS, bool(rng.integers(2)), []
    while t < WINDOW_HOURS:
        length = TBF_SCALE * rng.weibull(TBF_SHAPE) if up else rng.lognormal(DOWN_MU, DOWN_SIGMA)
        a, b = max(t, 0.0), min(t + length, WINDOW_HOURS)
        if b > 0:
            out.append((int(up), a, b))
        t, up = t + length, not up
    return out


def main() -> None:
    rng = np.random.default_rng(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    header = ("# event_id\tcomponent_id\tnode_id\tplatform_id\tnode_name\tevent_type\t"
              "event_start_time\tevent_stop_time\tevent_end_reason\n")  # fmt: skip
    rows, event = [header], 0
    for node in range(NODES):
        for kind, a, b in node_intervals(rng):
            start = WINDOW_START + math.floor(a * 3600)
            stop = WINDOW_START + math.floor(b * 3600)
            rows.append(f"{event}\t0\t{node}\t0\tg5k-{node}\t{kind}\t{start}\t{stop}\t\n")
            event += 1
    (OUT / "event_trace.tab").write_text("".join(rows))
    nodes = ["# node_id\tplatform_id\tnode_name\n"]
    nodes += [f"{n}\t0\tg5k-{n}\n" for n in range(NODES)]
    (OUT / "node.tab").write_text("".join(nodes))
    print(f"{event} intervals of {NODES} nodes written to {OUT}")


if __name__ == "__main__":
    main()
