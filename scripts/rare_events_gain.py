"""How much ``--rare-events`` narrows the intervals of a fleet's headline metrics.

Runs R plain replications and R boosted ones of the same config and seed for each boost
asked for (``auto``: `twin.rare_events.automatic_boost`, as ``--rare-events`` does), and
prints, per metric, each estimate with its standard error and the variance ratio
plain / boosted: the factor by which plain sampling would need more replications for the
same precision.

    .venv/bin/python scripts/rare_events_gain.py configs/default.yaml -r 100
    .venv/bin/python scripts/rare_events_gain.py configs/default.yaml -r 100 \\
        --boost auto tor=3,power=2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from twin import rare_events
from twin.config import load_experiment
from twin.experiments.runner import run_replications

METRICS = (
    "guest_availability",
    "host_availability",
    "guest_downtime_min_per_year",
    "incidents.power",
    "incidents.network",
    "incidents.driver",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("-r", "--replications", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--boost", nargs="*", default=["auto"],
                        help="boosts to try: auto, or kind=factor,kind=factor")  # fmt: skip
    args = parser.parse_args()
    config = load_experiment(args.config, []).config
    plain = run_replications(config, args.replications, seed=args.seed).summary()
    print(f"{args.config}: {args.replications} replications each, seed {args.seed}")
    for asked in args.boost:
        boost = None
        if asked != "auto":
            boost = {k: float(v) for k, v in (item.split("=") for item in asked.split(","))}
        boosted_config = rare_events.accelerated(config, boost)
        boosted = run_replications(boosted_config, args.replications, seed=args.seed).summary()
        info = boosted["rare_events"]
        print(f"\nboost {asked}: {info['boost']}, effective sample size "
              f"{info['effective_sample_size']:.1f}\n")  # fmt: skip
        print("| metric | plain mean ± se | boosted mean ± se | variance ratio |")
        print("|---|---:|---:|---:|")
        for metric in METRICS:
            a, b = leaf(plain, metric), leaf(boosted, metric)
            ratio = (a["stderr"] / b["stderr"]) ** 2 if b["stderr"] > 0 else float("inf")
            print(f"| {metric} | {a['mean']:.6g} ± {a['stderr']:.2g} | "
                  f"{b['mean']:.6g} ± {b['stderr']:.2g} | {ratio:.2f} |")  # fmt: skip


def leaf(summary: dict, metric: str) -> dict:
    node = summary["metrics"]
    for part in metric.split("."):
        node = node[part]
    return node


if __name__ == "__main__":
    main()
