"""Arms of a scenario side by side, and a verdict on each arm against its control.

Every arm runs the same replication seeds (common random numbers), so the difference
of an arm from its control (the first arm unless the arm names another) is estimated
per replication and its confidence interval is a paired Student-t interval: much
tighter than comparing two independent intervals (measured in docs/statistics.md).
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from twin import rare_events
from twin.config import ConfigError, expand_arms, load_experiment
from twin.experiments.precision import HEADLINE as PRECISION_METRICS
from twin.experiments.precision import (
    PrecisionReport,
    PrecisionRule,
    finite_or_none,
    is_availability,
    relative_half_widths,
    run_in_rounds,
)
from twin.experiments.runner import ReplicationResult, RunResult, extend_run
from twin.experiments.warnings import comparison_warnings
from twin.fleet import Fleet
from twin.metrics import ci95, difference_range, interval, physical_range, present

if TYPE_CHECKING:
    from twin.experiments.backends import Backend

HEADLINE = (
    "guest_availability",
    "service_availability",
    "host_availability",
    "guest_downtime_min_per_year",
    "planned_downtime_min_per_year",
    "degraded_min_per_year",
    "blast_radius_mean",
    "mttr_hours",
    "effective_capacity",
    "migrations",
    "operator_utilization",
    "ticket_wait_hours",
    "guest_downtime_p50_min_per_year",  # issue 19: per-guest downtime, SLO, cost per year
    "guest_downtime_p90_min_per_year",
    "guest_downtime_p99_min_per_year",
    "slo_breach_probability",
    "error_budget_used",
    "cost.downtime",
    "cost.operators",
    "cost.hosts",
    "cost.licenses",
    "cost.total",
)
"""The rows of ``twin compare`` by default (then each architecture's availability and
degraded time, then incidents by cause)."""
BY_ARCHITECTURE = ("guest_availability", "degraded_min_per_year")
DEFAULT_VERDICT = ("guest_downtime_min_per_year",)

LABELS = {
    "guest_availability": ("guest availability", ""),
    "host_availability": ("host availability", ""),
    "service_availability": ("service availability", ""),
    "guest_downtime_min_per_year": ("guest downtime", " min/yr"),
    "planned_downtime_min_per_year": ("planned guest downtime", " min/yr"),
    "degraded_min_per_year": ("degraded time", " min/host-yr"),
    "ticket_wait_hours": ("ticket wait", " h"),
    "mttr_hours": ("MTTR", " h"),
    "operator_utilization": ("operator utilisation", ""),
    "effective_capacity": ("effective capacity", " guests"),
    "migrations": ("live migrations", ""),
}


def metric_label(metric: str) -> tuple[str, str]:
    """A metric in words and its unit (with a leading space), for verdict lines."""
    parts = metric.split(".")
    if parts[0] == "by_architecture" and len(parts) > 2:
        label, unit = metric_label(".".join(parts[2:]))
        return f"{parts[1]} {label}", unit
    if parts[0] == "incidents" and len(parts) == 2:
        return f"{parts[1].replace('_', ' ')} incidents", " over the horizon"
    return LABELS.get(metric, (metric, ""))


def number(x: float, spread: float) -> str:
    """``x`` with decimals down to two significant digits of ``spread`` (so availabilities
    near 1 keep their nines)."""
    if spread > 0 and math.isfinite(spread):
        digits = min(9, max(0, 1 - math.floor(math.log10(spread))))
        return f"{x:.{digits}f}"
    return f"{x:.6g}"


@dataclass(frozen=True)
class Verdict:
    """One metric of one arm against its control: the paired difference and its reading."""

    arm: str
    control: str
    metric: str
    difference: dict[str, Any]
    replications: int
    advice: str = ""
    """How to resolve a difference that is not distinguishable (empty when it is)."""
    unpaired_half_width: float = math.nan
    """The half-width the difference would have without common random numbers (Welch)."""

    @property
    def significant(self) -> bool:
        return bool(self.difference["significant"])

    @property
    def reading(self) -> str:
        d = self.difference
        if d["mean"] == 0 and d["stderr"] == 0 and self.replications > 1:
            return "the same in every replication"
        if not self.significant:
            return f"not distinguishable at this precision: {self.advice}"
        return "higher" if self.difference["mean"] > 0 else "lower"

    def phrase(self) -> str:
        """``guest downtime -8.2 min/yr (95 % CI -9.0 to -7.4): lower``."""
        d = self.difference
        spread = (d["ci95_high"] - d["ci95_low"]) / 2
        label, unit = metric_label(self.metric)
        low, high = number(d["ci95_low"], spread), number(d["ci95_high"], spread)
        mean = number(d["mean"], spread)
        sign = "+" if d["mean"] > 0 and not mean.startswith("+") else ""
        return f"{label} {sign}{mean}{unit} (95 % CI {low} to {high}): {self.reading}"

    def to_json(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "control": self.control,
            "metric": self.metric,
            "difference": self.difference,
            "significant": self.significant,
            "reading": self.reading,
            "unpaired_half_width": finite_or_none(self.unpaired_half_width),
        }


def paired_difference(
    values: Sequence[float],
    controls: Sequence[float],
    metric: str,
    log_weights: tuple[Sequence[float], Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Paired 95 % CI of (arm - control) over replications with the same seed, inside the
    range a difference of the metric can take, and ``significant`` when it excludes 0
    (never with fewer than two pairs). With the two arms' ``log_weights`` (boosted
    faults), the difference of their likelihood-weighted estimates
    (`twin.rare_events.paired_estimate`)."""
    bounds = difference_range(metric)
    if log_weights is not None:
        ours, theirs = log_weights
        leaf = interval(*rare_events.paired_estimate(values, ours, controls, theirs), bounds)
    else:
        leaf = ci95([a - b for a, b in zip(values, controls, strict=True)], bounds)
    significant = len(values) > 1 and (leaf["ci95_low"] > 0 or leaf["ci95_high"] < 0)
    return leaf | {"significant": bool(significant)}


def unpaired_half_width(values: Sequence[float], controls: Sequence[float]) -> float:
    """The 95 % half-width of (mean arm - mean control) as if the two had been run with
    independent seeds: Welch's interval from each arm's own spread (a replication's
    marginal spread is the same whether or not the arms share seeds)."""
    if len(values) < 2 or len(controls) < 2:
        return math.nan
    if np.std(values) == 0 and np.std(controls) == 0:
        return 0.0
    with warnings.catch_warnings():  # nearly equal values: scipy warns, the width is right
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_ind(values, controls, equal_var=False)
    low, high = test.confidence_interval(0.95)
    return float(high - low) / 2


def _nice_floor(x: float) -> float:
    """The largest of 0.5, 0.2, 0.1, 0.05, ... not above ``x`` (at least 0.01)."""
    for nice in (0.5, 0.2, 0.1, 0.05, 0.02):
        if x >= nice:
            return nice
    return 0.01


@dataclass
class Comparison:
    """Each arm's run, in the scenario's order (the first arm is the default control)."""

    name: str
    question: str
    runs: dict[str, RunResult]
    controls: dict[str, str] = field(default_factory=dict)
    """Each arm compared, with the arm it is compared against."""
    verdict_metrics: tuple[str, ...] = DEFAULT_VERDICT
    precision: PrecisionReport | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.controls:
            first = next(iter(self.runs))
            self.controls = {arm: first for arm in list(self.runs)[1:]}

    def available_metrics(self) -> list[str]:
        """Every metric some arm has, in the order the fleet reports them."""
        names: list[str] = []
        for run in self.runs.values():
            for rep in run.replications:
                names.extend(m for m in rep.metrics if m not in names)
        return names

    def metric_names(self) -> list[str]:
        """The default rows: `HEADLINE`, each architecture's `BY_ARCHITECTURE`, incidents."""
        present = self.available_metrics()
        archs = sorted({m.split(".")[1] for m in present if m.startswith("by_architecture.")})
        by_arch = [f"by_architecture.{a}.{m}" for a in archs for m in BY_ARCHITECTURE]
        names = [m for m in (*HEADLINE, *by_arch) if m in present]
        return names + sorted(m for m in present if m.startswith("incidents."))

    def _values(self, arm: str, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.runs[arm].replications if metric in r.metrics]

    def leaf(self, arm: str, metric: str) -> dict[str, float] | None:
        run = self.runs[arm]
        values, weights = present([r.metrics for r in run.replications], metric, run.log_weights)
        return ci95(values, physical_range(metric), weights) if values else None

    def difference(
        self, arm: str, metric: str, control: str | None = None
    ) -> dict[str, Any] | None:
        """Paired 95 % CI of (arm - control) over replications with the same seed (the
        first arm by default), with its ``significant`` flag."""
        control = control or next(iter(self.runs))
        ours, theirs = self.runs[arm].replications, self.runs[control].replications
        pairs = [
            (r.metrics[metric], b.metrics[metric], r.log_weight, b.log_weight)
            for r, b in zip(ours, theirs, strict=False)  # the common replications
            if metric in r.metrics and metric in b.metrics
        ]
        if not pairs:
            return None
        a, b, wa, wb = (list(column) for column in zip(*pairs, strict=True))
        return paired_difference(a, b, metric, (wa, wb) if self.runs[arm].weighted else None)

    def verdicts(self) -> list[Verdict]:
        """Each compared arm against its control, on each verdict metric both have."""
        out = []
        for arm, control in self.controls.items():
            for metric in self.verdict_metrics:
                diff = self.difference(arm, metric, control)
                if diff is None:
                    continue
                n = min(len(self.runs[arm].replications), len(self.runs[control].replications))
                advice = self._advice(arm, metric, diff, n)
                ours, theirs = self._values(arm, metric), self._values(control, metric)
                welch = (
                    math.nan
                    if self.runs[arm].weighted  # Welch: plain samples only
                    else unpaired_half_width(ours, theirs)
                )
                out.append(Verdict(arm, control, metric, diff, n, advice, welch))
        return out

    def _advice(self, arm: str, metric: str, diff: dict[str, Any], n: int) -> str:
        """What would resolve a difference this size: a ``--precision`` for a metric it
        bounds (the arm's own half-width at half the difference), else more replications
        (the paired half-width at half the difference, if it shrinks as 1/sqrt(n))."""
        size = abs(diff["mean"])
        if metric in PRECISION_METRICS:
            mean = sum(self._values(arm, metric)) / max(1, len(self._values(arm, metric)))
            value = abs(1 - mean if is_availability(metric) else mean)
            rel = _nice_floor(size / (2 * value)) if value > 0 else 0.01
            current = relative_half_widths(
                [r.metrics for r in self.runs[arm].replications], [metric]
            ).get(metric, math.inf)
            if math.isfinite(current):
                rel = min(rel, _nice_floor(current / 2))
            return f"rerun with --precision {rel:g}"
        half = max(diff["ci95_high"] - diff["mean"], diff["mean"] - diff["ci95_low"])
        wanted = math.ceil(n * (2 * half / size) ** 2) if size > 0 else 10 * n
        return f"rerun with -r {min(1000, max(2 * n, wanted))}"

    def verdict_lines(self) -> list[str]:
        """One line per compared arm: ``arm - control: <metric phrase>; ...``."""
        by_arm: dict[str, list[Verdict]] = {}
        for verdict in self.verdicts():
            by_arm.setdefault(verdict.arm, []).append(verdict)
        return [
            f"{arm} - {self.controls[arm]}: " + "; ".join(v.phrase() for v in verdicts)
            for arm, verdicts in by_arm.items()
        ]

    def warnings(self) -> list[str]:
        return comparison_warnings(self.runs, self.notes)

    def to_json(self) -> dict[str, Any]:
        arms = list(self.runs)
        first = arms[0]
        out = {
            "name": self.name,
            "question": self.question,
            "arms": {arm: self.runs[arm].summary() for arm in arms},
            "controls": self.controls,
            "differences_from_first": {
                arm: {m: self.difference(arm, m, first) for m in self.metric_names()}
                for arm in arms[1:]
            },
            "verdicts": [v.to_json() for v in self.verdicts()],
            "verdict_lines": self.verdict_lines(),
        }
        if self.precision is not None:
            out["precision"] = self.precision.to_json()
        return out | {"warnings": self.warnings()}


def select_metrics(available: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The metrics named by ``patterns`` (exact names or shell globs such as
    ``incidents.*``; commas separate several), in the order given; ``ConfigError`` on a
    pattern that names none."""
    chosen: list[str] = []
    for pattern in (p.strip() for item in patterns for p in item.split(",")):
        if not pattern:
            continue
        matches = fnmatch.filter(available, pattern)
        if not matches:
            close = [m for m in available if pattern in m][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError("--metrics", f"no metric {pattern!r}{hint}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def compare(
    path: Path,
    sets: list[str] | None = None,
    replications: int | None = None,
    seed: int | None = None,
    on_done: Callable[[str, ReplicationResult], None] | None = None,
    *,
    precision: PrecisionRule | None = None,
    metrics: Sequence[str] = (),
    backend: Backend | None = None,
    rare: bool = False,
    rare_boost: Mapping[str, float] | None = None,
) -> Comparison:
    """Run every arm of a scenario (a plain config is one arm) with the same seeds: the
    configured replications, or with ``precision`` in rounds (all arms together, so they
    stay paired) until every arm's headline metrics meet it. With ``rare``, every arm
    samples component faults at the first arm's boosted rates (`twin.rare_events`), or at
    ``rare_boost`` when the caller has them already.

    The scenario's verdict metrics and the ``metrics`` asked for are checked against the
    fleet's metric names before anything runs (``ConfigError``)."""
    sets = list(sets or [])
    experiment = load_experiment(path, sets)
    scenario = experiment.scenario
    arms = expand_arms(path, sets)
    if rare or rare_boost is not None:
        boost = rare_boost
        if boost is None:
            boost = dict(rare_events.accelerated(arms[0][1]).rare_events.boost)
        arms = [(arm, rare_events.accelerated(config, boost)) for arm, config in arms]
    runs: dict[str, RunResult] = {}
    injections: dict[str, list] = {}
    for arm, config in arms:
        label = arm or config.name
        runs[label] = RunResult(config=config, seed=config.seed if seed is None else seed)
        injections[label] = scenario.arm_injections(arm) if scenario else []
    controls = {}
    if scenario is not None and scenario.arms:
        controls = {a: c for a in scenario.arms if (c := scenario.control_of(a)) is not None}
    verdict = tuple(scenario.verdict) if scenario else DEFAULT_VERDICT
    known = {m for run in runs.values() for m in Fleet(run.config, 0).metrics()}
    for i, metric in enumerate(verdict):
        if metric not in known:
            raise ConfigError(f"verdict.{i}", f"no metric {metric!r} in this fleet")
    select_metrics(sorted(known), metrics)

    def grow(label: str, total: int) -> None:
        done = (lambda rep: on_done(label, rep)) if on_done else None
        extend_run(runs[label], total, injections=injections[label], on_done=done,
                   backend=backend)  # fmt: skip

    def extend(total: int) -> dict[str, float]:
        relative: dict[str, float] = {}
        for label, run in runs.items():
            grow(label, total)
            relative |= relative_half_widths([r.metrics for r in run.replications],
                                             prefix=f"{label}: ",
                                             log_weights=run.log_weights)  # fmt: skip
        return relative

    report = None
    notes: list[str] = []
    if precision is None:
        for label, run in runs.items():
            grow(label, run.config.replications if replications is None else replications)
    else:
        configured = replications or max(run.config.replications for run in runs.values())
        report = run_in_rounds(precision, configured, extend)
        if not report.reached:
            notes.append(report.describe())
    name = scenario.name if scenario else experiment.config.name
    return Comparison(
        name=name,
        question=scenario.question if scenario else "",
        runs=runs,
        controls=controls,
        verdict_metrics=verdict,
        precision=report,
        notes=notes,
    )
