"""How honest is `--precision`'s stopping rule? Coverage of the final 95 % interval.

Each trial draws replications of a rare-event quantity shaped like a fleet's guest
downtime (a few minutes a year of small incidents, plus rare rack outages: Poisson with
mean ``rate`` per year, each costing a lognormal number of minutes), and runs the rule of
`twin.experiments.precision` on it exactly as ``twin run --precision`` does. It reports,
over many trials, how often the final Student-t interval covers the true mean, the mean
number of replications, and the same for a fixed number of replications (for contrast).

    .venv/bin/python benchmarks/stopping_rule_coverage.py [--trials 2000] [--rel 0.2]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from twin.experiments.precision import PrecisionRule, relative_half_width, run_in_rounds
from twin.metrics import ci95

METRIC = "guest_downtime_min_per_year"


def draw(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    small = rng.gamma(4.0, 1.0, n)  # small incidents: mean 4 min/yr
    outages = rng.poisson(rate, n)
    big = np.array([rng.lognormal(math.log(30.0), 0.5, k).sum() for k in outages])
    return small + big


def true_mean(rate: float) -> float:
    return 4.0 + rate * 30.0 * math.exp(0.5**2 / 2)


def trial(rng: np.random.Generator, rule: PrecisionRule, rate: float) -> tuple[bool, int]:
    values: list[float] = []

    def extend(total: int) -> dict[str, float]:
        values.extend(draw(rng, total - len(values), rate))
        return {METRIC: relative_half_width(values, METRIC)}

    run_in_rounds(rule, 0, extend)
    leaf = ci95(values, (0.0, math.inf))
    return leaf["ci95_low"] <= true_mean(rate) <= leaf["ci95_high"], len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--rel", type=float, default=0.2)
    parser.add_argument("--rate", type=float, default=0.3, help="rack outages per year")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"rare-event downtime: true mean {true_mean(args.rate):.2f}, rel {args.rel}, "
          f"{args.trials} trials")  # fmt: skip
    for min_rounds, confirm in ((1, 1), (2, 1), (2, 2), (2, 3)):
        rng = np.random.default_rng(args.seed)
        rule = PrecisionRule(args.rel, 1000, first_round=10, min_rounds=min_rounds,
                             confirm=confirm)  # fmt: skip
        outcomes = [trial(rng, rule, args.rate) for _ in range(args.trials)]
        sizes = [n for _, n in outcomes]
        fixed = round(float(np.mean(sizes)))
        plain = [fixed_trial(rng, fixed, args.rate) for _ in range(args.trials)]
        print(f"min_rounds={min_rounds}, confirm={confirm}: "
              f"coverage {_share([c for c, _ in outcomes])}, replications mean {fixed}, "
              f"median {np.median(sizes):.0f}; "
              f"a fixed {fixed}: coverage {_share(plain)}")  # fmt: skip


def fixed_trial(rng: np.random.Generator, n: int, rate: float) -> bool:
    leaf = ci95(draw(rng, n, rate), (0.0, math.inf))
    return leaf["ci95_low"] <= true_mean(rate) <= leaf["ci95_high"]


def _share(hits: list[bool]) -> str:
    p = float(np.mean(hits))
    return f"{p:.3f} (± {1.96 * math.sqrt(p * (1 - p) / len(hits)):.3f})"


if __name__ == "__main__":
    main()
