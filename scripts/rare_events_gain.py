"""How much ``--rare-events`` narrows the intervals of a fleet's headline metrics.

Runs R plain replications and R boosted ones of the same config and seed, and prints, per
metric, each estimate with its standard error and the variance ratio plain / boosted: the
factor by which plain sampling would need more replications for the same precision.

    .venv/bin/python scripts/rare_events_gain.py configs/default.yaml -r 100
    .venv/bin/python scripts/rare_events_gain.py configs/default.yaml -r 100 --boost power=4 tor=4
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
    parser.add_argument("--boost", nargs="*", default=None, help="kind=factor (default: auto)")
    args = parser.parse_args()
    config = load_experiment(args.config, []).config
    boost = None
    if args.boost:
        boost = {k: float(v) for k, v in (item.split("=") for item in args.boost)}
    boosted_config = rare_events.accelerated(config, boost)
    plain = run_replications(config, args.replications, seed=args.seed).summary()
    boosted = run_replications(boosted_config, args.replications, seed=args.seed).summary()
    info = boosted["rare_events"]
    print(f"{args.config}: {args.replications} replications each, seed {args.seed}")
    print(f"boost {info['boost']}, effective sample size {info['effective_sample_size']:.1f}")
    print(f"| metric | plain mean ± se | boosted mean ± se | variance ratio |")
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
