"""Replications in rounds until the headline metrics are known to a relative precision.

The rule (docs/statistics.md): a first round of ``max(R, first_round)`` replications,
then rounds that add 50 % to 100 % more, each sized by the classic estimate of how many
replications the current half-width asks for, until every headline metric's Student-t
95 % half-width is at most ``rel`` of its value (of the *un*availability for an
availability), after at least ``min_rounds`` rounds, or until ``max_replications``.
Replication i is always ``SeedSequence(S).spawn(...)[i]``, so the first R replications of
a precision run are those of a fixed-R run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twin.metrics import ci95, present

HEADLINE = ("guest_availability", "host_availability", "guest_downtime_min_per_year")
"""The metrics ``--precision`` bounds, and the noise warning watches."""


def is_availability(metric: str) -> bool:
    return metric.rsplit(".", 1)[-1].endswith("availability")


def relative_half_width(
    values: Sequence[float], metric: str, log_weights: Sequence[float] | None = None
) -> float:
    """The 95 % half-width of the mean of ``values`` (likelihood-weighted with
    ``log_weights``, `twin.rare_events`) over the quantity estimated: the unavailability
    ``1 - mean`` for an availability, else the mean. Zero when every value is equal
    (nothing left to resolve), infinite with fewer than two."""
    if len(values) < 2:
        return math.inf
    leaf = ci95(values, log_weights=log_weights)
    half = leaf["ci95_high"] - leaf["mean"]
    if half == 0.0:
        return 0.0
    mean = leaf["mean"]
    value = abs(1.0 - mean if is_availability(metric) else mean)
    return half / value if value > 0 else math.inf


def relative_half_widths(
    rows: Sequence[Mapping[str, float]],
    metrics: Iterable[str] = HEADLINE,
    prefix: str = "",
    log_weights: Sequence[float] | None = None,
) -> dict[str, float]:
    """`relative_half_width` of each of ``metrics`` present in the replications ``rows``,
    keyed ``prefix + metric``."""
    out = {}
    for metric in metrics:
        values, weights = present(rows, metric, log_weights)
        if values:
            out[prefix + metric] = relative_half_width(values, metric, weights)
    return out


@dataclass(frozen=True)
class PrecisionRule:
    """When to stop adding replications (see the module docstring)."""

    rel: float
    max_replications: int = 1000
    first_round: int = 10
    min_rounds: int = 2
    confirm: int = 2
    """Rounds in a row that must meet the target (2: a round of fresh replications has to
    confirm a target met, which tempers stopping on a lucky sample)."""

    def __post_init__(self) -> None:
        if not (0 < self.rel <= 1) or not math.isfinite(self.rel):
            raise ValueError(
                f"--precision: expected a relative half-width in (0, 1], got {self.rel:g}"
            )
        if self.max_replications < 2:
            raise ValueError(
                f"--max-replications: expected a whole number >= 2, got {self.max_replications}"
            )

    def first(self, configured: int) -> int:
        """The size of the first round: the configured replications, at least ``first_round``."""
        return min(self.max_replications, max(configured, self.first_round))

    def after_round(
        self, total: int, rounds: int, relative: Mapping[str, float], met_in_a_row: int = 1
    ) -> int | None:
        """The total replications the next round should reach, or None to stop: every
        relative half-width at most ``rel`` (as it has been for ``met_in_a_row`` rounds, at
        least ``confirm``) after ``min_rounds`` rounds, or ``max_replications`` reached."""
        reached = all(r <= self.rel for r in relative.values())
        confirmed = reached and met_in_a_row >= self.confirm
        if (confirmed and rounds >= self.min_rounds) or total >= self.max_replications:
            return None
        return self.next_total(total, max(relative.values(), default=0.0))

    def next_total(self, done: int, worst: float) -> int:
        """The total after the next round: what the worst relative half-width asks for
        (half-widths shrink as 1/sqrt(n)), but at least 50 % and at most 100 % more."""
        wanted = math.ceil(done * (worst / self.rel) ** 2) if math.isfinite(worst) else 2 * done
        grown = max(done + math.ceil(done / 2), min(2 * done, wanted))
        return min(self.max_replications, grown)


@dataclass
class PrecisionReport:
    """How a precision run ended: rounds, replications, and each metric's relative
    half-width at the end (the largest of them bound last)."""

    rule: PrecisionRule
    rounds: int
    replications: int
    relative: dict[str, float]

    @property
    def bound_by(self) -> str | None:
        """The metric that bound last: the one furthest from (or closest to) its target."""
        return max(self.relative, key=lambda m: self.relative[m], default=None)

    @property
    def reached(self) -> bool:
        return all(r <= self.rule.rel for r in self.relative.values())

    def describe(self) -> str:
        """One line for people."""
        worst = self.bound_by
        tail = f"; {worst} bound last ({_percent(self.relative[worst])})" if worst else ""
        if self.reached:
            head = f"precision {_percent(self.rule.rel)} reached"
        else:
            head = f"precision {_percent(self.rule.rel)} NOT reached at --max-replications"
        return f"{head} after {self.rounds} round(s), {self.replications} replication(s){tail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.rule.rel,
            "reached": self.reached,
            "rounds": self.rounds,
            "replications": self.replications,
            "max_replications": self.rule.max_replications,
            "bound_by": self.bound_by,
            "relative_half_width": {m: finite_or_none(r) for m, r in self.relative.items()},
        }


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no infinity


def _percent(x: float) -> str:
    return f"{x * 100:.1f} %" if math.isfinite(x) else "unknown"


def run_in_rounds(
    rule: PrecisionRule, configured: int, extend: Callable[[int], dict[str, float]]
) -> PrecisionReport:
    """Call ``extend(total)`` (run replications up to ``total``, return the relative
    half-widths) round after round until ``rule`` says stop."""
    total: int | None = rule.first(configured)
    rounds = in_a_row = 0
    while total is not None:
        relative = extend(total)
        rounds += 1
        report = PrecisionReport(rule, rounds, total, relative)
        in_a_row = in_a_row + 1 if report.reached else 0
        total = rule.after_round(total, rounds, relative, in_a_row)
    return report
