"""Arms of a scenario side by side.

Every arm runs the same replication seeds (common random numbers), so the
difference of an arm from the first arm is estimated per replication and its
confidence interval is a paired Student-t interval: much tighter than comparing
two independent intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.architectures import ARCHITECTURES
from twin.config import expand_arms, load_experiment
from twin.experiments.runner import ReplicationResult, RunResult, run_replications
from twin.metrics import ci95

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
    *(f"by_architecture.{arch}.{metric}" for metric in ("guest_availability",
      "degraded_min_per_year") for arch in ARCHITECTURES),
)  # fmt: skip


@dataclass
class Comparison:
    """Each arm's run, in the scenario's order (the first arm is the baseline)."""

    name: str
    question: str
    runs: dict[str, RunResult]

    def metric_names(self) -> list[str]:
        """Headline metrics present in at least one arm, then incidents by cause."""
        present: set[str] = set()
        for run in self.runs.values():
            for rep in run.replications:
                present |= rep.metrics.keys()
        names = [m for m in HEADLINE if m in present]
        return names + sorted(m for m in present if m.startswith("incidents."))

    def leaf(self, arm: str, metric: str) -> dict[str, float] | None:
        values = [r.metrics[metric] for r in self.runs[arm].replications if metric in r.metrics]
        return ci95(values) if values else None

    def difference(self, arm: str, metric: str) -> dict[str, float] | None:
        """Paired 95 % CI of (arm - first arm) over replications with the same seed."""
        base = self.runs[next(iter(self.runs))].replications
        pairs = [
            (r.metrics[metric], b.metrics[metric])
            for r, b in zip(self.runs[arm].replications, base, strict=True)
            if metric in r.metrics and metric in b.metrics
        ]
        return ci95([a - b for a, b in pairs]) if pairs else None

    def to_json(self) -> dict[str, Any]:
        arms = list(self.runs)
        return {
            "name": self.name,
            "question": self.question,
            "arms": {arm: self.runs[arm].summary() for arm in arms},
            "differences_from_first": {
                arm: {m: self.difference(arm, m) for m in self.metric_names()} for arm in arms[1:]
            },
        }


def compare(
    path: Path,
    sets: list[str] | None = None,
    replications: int | None = None,
    seed: int | None = None,
    on_done: Callable[[str, ReplicationResult], None] | None = None,
) -> Comparison:
    """Run every arm of a scenario (a plain config is one arm) with the same seeds."""
    sets = list(sets or [])
    experiment = load_experiment(path, sets)
    scenario = experiment.scenario
    runs: dict[str, RunResult] = {}
    injections = scenario.injections if scenario else ()
    for arm, config in expand_arms(path, sets):
        label = arm or config.name
        runs[label] = run_replications(
            config,
            replications,
            seed,
            injections=injections,
            on_done=(lambda rep, label=label: on_done(label, rep)) if on_done else None,
        )
    name = scenario.name if scenario else experiment.config.name
    return Comparison(name=name, question=scenario.question if scenario else "", runs=runs)
