"""Coverage of the likelihood-weighted intervals on the rare power outage, against its
closed form.

Runs N boosted replications of `twin.validation.rare_power_case` (a feed failing once in
MTTF years, fixed repair) for each boost, cuts them into batches of B, and prints for each
estimator (the regression on the likelihood ratio, the self-normalised one, and the
choice `twin.rare_events.estimate` makes) the share of batches whose 95 % interval of the
host unavailability holds the closed form, the spread of (estimate - truth) / stderr
(1 for an honest stderr) and the median 95 % half-width relative to the truth.

    .venv/bin/python scripts/rare_events_coverage.py --mttf 1000 --boost 150 1000 -n 8000 -b 200
"""

from __future__ import annotations

import argparse

import numpy as np

from twin import analytic, rare_events
from twin.experiments.runner import run_replications
from twin.validation import rare_power_case

ESTIMATORS = {
    "regression": rare_events.regression_estimate,
    "self-normalised": rare_events.self_normalised_estimate,
    "twin (chosen)": rare_events.estimate,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mttf", type=float, default=1000.0, help="feed MTTF, years")
    parser.add_argument("--boost", type=float, nargs="+", default=[150.0, 1000.0])
    parser.add_argument("-n", "--replications", type=int, default=8000)
    parser.add_argument("-b", "--batch", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    case = rare_power_case(power_mttf=args.mttf * 8760.0)
    truth = 1 - analytic.warmup_availability(args.mttf * 8760.0, 6.5, 1.0)
    print(f"feed MTTF {args.mttf:g} y, {args.replications} replications in batches of "
          f"{args.batch}, true host unavailability {truth:.4g}")  # fmt: skip
    print("\n| boost | estimator | covered | sd of z | median half-width / truth | outside 5 sd |")
    print("|---:|---|---:|---:|---:|---:|")
    for boost in args.boost:
        config = rare_events.accelerated(case.fleet_config(8760.0, args.seed), {"power": boost})
        result = run_replications(config, args.replications, seed=args.seed)
        log_w = np.asarray(result.log_weights)
        shortfall = np.array([1 - r.metrics["host_availability"] for r in result.replications])
        for name, estimator in ESTIMATORS.items():
            z, half = [], []
            for start in range(0, args.replications - args.batch + 1, args.batch):
                part = slice(start, start + args.batch)
                mean, stderr, _ = estimator(shortfall[part], log_w[part])
                z.append((mean - truth) / stderr if stderr > 0 else np.inf)
                half.append(1.96 * stderr / truth)
            z = np.asarray(z)
            sane = np.abs(z) < 5
            print(f"| {boost:g} | {name} | {np.mean(np.abs(z) < 1.96):.2f} | "
                  f"{np.std(z[sane]):.2f} | {np.median(half):.3f} | {np.sum(~sane)} |")  # fmt: skip


if __name__ == "__main__":
    main()
