"""Backtest the twin on every LANL system with enough data, beside the naive baseline.

For each system: the test window is the last calendar year of its records, the training
window the two years before it (or from the system's production start, if later). The twin
calibrates on the training window and simulates the test window (``-r`` replications);
the baseline carries the training window's downtime per host-year forward. Both are scored
by the relative error of the host *un*availability against the observed one. The twin's
prediction is a mean over replications, so its error has an interval (from the 95 % CI of
that mean), and "closer" is the backtest's verdict: the twin only when its whole interval
is nearer than the baseline, the baseline only when none of it is, otherwise undecided
(more replications would decide). Prints a Markdown table (the one in
docs/calibration.md), the median errors and the verdicts counted. Run from the repository
root:

    .venv/bin/python scripts/lanl_backtests.py [--data PATH] [-r 10] [--seed 42]

Data: the failure records Los Alamos National Laboratory released (LA-UR-05-7318); these
are HPC cluster nodes, not hypervisor hosts.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pandas as pd

from twin.calibration.backtest import backtest
from twin.calibration.logs import IncidentLog, lanl_systems, read_lanl_log
from twin.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "lanl-failures-1996-2005.csv.xz"
MIN_HOSTS, MIN_TRAIN, MIN_TEST = 8, 50, 20
"""Enough data: a fleet (not a single machine), and enough incidents on both sides to fit
and to score."""


def windows(log: IncidentLog) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """Training start, test start (= training end), test end: the last calendar year of the
    records is the test, the two years before it the training."""
    end = log.window_end
    test_start = pd.Timestamp(year=end.year if end.month > 1 or end.day > 1 else end.year - 1,
                              month=1, day=1)  # fmt: skip
    if end - test_start < pd.Timedelta(days=200):
        test_start = pd.Timestamp(year=test_start.year - 1, month=1, day=1)
    train_start = max(log.window_start, pd.Timestamp(year=test_start.year - 2, month=1, day=1))
    return train_start, test_start, end


def profile(log: IncidentLog) -> tuple[float, float, float]:
    """Incidents per host-year, mean and longest down time (hours) of a window: what moves
    a prediction of unavailability (rate x mean repair)."""
    hours = (log.incidents["end"] - log.incidents["start"]).dt.total_seconds() / 3600
    rate = len(log.incidents) / (log.exposure_hours() / 8760)
    return rate, float(hours.mean()), float(hours.max())


def relative_error(predicted: float, observed: float) -> float:
    """Error of a predicted unavailability, relative to the observed one."""
    return abs(predicted - observed) / observed


def error_interval(low: float, high: float, observed: float) -> tuple[float, float]:
    """The relative errors of the predictions in ``[low, high]``: the least and the most."""
    nearest = min(max(observed, low), high)
    return relative_error(nearest, observed), max(relative_error(e, observed) for e in (low, high))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("-r", "--replications", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    config = load_config(ROOT / "configs" / "default.yaml")
    print(
        "| system | hosts | train | test | incidents train / test | observed unavailability "
        "| twin (95 % CI) | baseline | twin error (95 % CI) | baseline error | closer |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    twin_errors, naive_errors, profiles, verdicts = [], [], [], []
    for system in lanl_systems(args.data).index:
        log = read_lanl_log(args.data, int(system))
        lo, mid, hi = windows(log)
        if len(log.hosts) < MIN_HOSTS or not mid > lo:
            continue
        train, test = log.between(lo, mid), log.between(mid, hi)
        if len(train.incidents) < MIN_TRAIN or len(test.incidents) < MIN_TEST:
            continue
        result = backtest(log, (str(lo), str(mid)), (str(mid), str(hi)), config,
                          replications=args.replications, seed=args.seed)  # fmt: skip
        observed = 1 - result.observed["host_availability"]
        predicted = result.predicted["host_availability"]
        twin = 1 - predicted["mean"]
        low, high = 1 - predicted["ci95_high"], 1 - predicted["ci95_low"]  # unavailability
        naive = 1 - result.baseline["host_availability"]
        twin_errors.append(relative_error(twin, observed))
        naive_errors.append(relative_error(naive, observed))
        errors = error_interval(low, high, observed)
        closer = result.closer["host_availability"]
        verdicts.append(closer)
        trend = result.train.trend
        profiles.append((system, profile(train), profile(test), trend.statistic, trend.p_value))
        print(f"| {system} | {len(log.hosts)} | {lo:%Y-%m} to {mid:%Y-%m} | {mid:%Y-%m} to "
              f"{hi:%Y-%m} | {len(train.incidents)} / {len(test.incidents)} | {observed:.3g} | "
              f"{twin:.3g} ({low:.3g}-{high:.3g}) | {naive:.3g} | {twin_errors[-1]:.0%} "
              f"({errors[0]:.0%}-{errors[1]:.0%}) | {naive_errors[-1]:.0%} | {closer} |",
              flush=True)  # fmt: skip
    wins = sum(t < n for t, n in zip(twin_errors, naive_errors, strict=True))
    counted = ", ".join(f"{name} {verdicts.count(name)}" for name in sorted(set(verdicts)))
    print(f"\nmedian error on unavailability over {len(twin_errors)} systems: twin "
          f"{statistics.median(twin_errors):.0%}, baseline {statistics.median(naive_errors):.0%}; "
          f"the twin's mean is closer on {wins} of {len(twin_errors)}; closer, given the twin's "
          f"precision at -r {args.replications}: {counted}")  # fmt: skip
    print(
        "\n| system | incidents per host-year train / test | mean down h train / test "
        "| longest down h train / test | Laplace U (p) of training |"
    )
    print("|---|---|---|---|---|")
    for system, (r0, m0, x0), (r1, m1, x1), u, p in profiles:
        print(f"| {system} | {r0:.3g} / {r1:.3g} | {m0:.3g} / {m1:.3g} | {x0:,.0f} / {x1:,.0f} "
              f"| {u:.2f} ({p:.2g}) |")  # fmt: skip


if __name__ == "__main__":
    main()
