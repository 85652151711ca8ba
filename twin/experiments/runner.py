"""Run a fleet config R times with independent, reproducible seeds.

Replication i of a run with seed S uses child i of ``SeedSequence(S).spawn(R)``
(SPEC 6), so a replication's result does not depend on which worker runs it or
in which order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin import rare_events
from twin.config import FleetConfig
from twin.config.schema import Injection
from twin.experiments.precision import (
    PrecisionReport,
    PrecisionRule,
    relative_half_widths,
    run_in_rounds,
)
from twin.fleet import EVENT_COLUMNS, Fleet
from twin.metrics import Sample, summarise
from twin.slo import guest_downtimes

if TYPE_CHECKING:
    from twin.experiments.backends import Backend

TIMESERIES_COLUMNS = (
    "time",
    "architecture",
    "guests_up",
    "guests",
    "hosts_up",
    "hosts",
    "hosts_degraded",
    "guest_availability_to_date",
)


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(replications)


def replication_seed(seed: int, index: int) -> np.random.SeedSequence:
    """Child ``index`` of ``SeedSequence(seed).spawn(...)`` (SPEC 6), made directly: a
    child is its parent's entropy with spawn key ``(index,)``, and spawning ``index + 1``
    children to keep the last costs O(index), which thousands of replications feel."""
    return np.random.SeedSequence(seed, spawn_key=(index,))


@dataclass
class ReplicationResult:
    """What one replication produced."""

    index: int
    metrics: dict[str, float]
    timeseries: pd.DataFrame
    events: pd.DataFrame | None = None
    guest_downtime: np.ndarray | None = None
    """Each guest's own downtime, minutes per guest-year (`twin.slo.guest_downtimes`)."""
    log_weight: float = 0.0
    """The log likelihood ratio of its boosted component faults (`twin.rare_events`)."""


def run_replication(
    config: FleetConfig,
    index: int,
    seed: int | None = None,
    *,
    record_events: bool = False,
    injections: Sequence[Injection] = (),
) -> ReplicationResult:
    """Build and run replication ``index`` of ``config`` (seeded by ``seed`` or config.seed),
    with a scenario's timed ``injections``; a fleet whose sites share nothing runs site
    by site (`twin.experiments.sites`)."""
    from twin.experiments import sites

    seed = config.seed if seed is None else seed
    if sites.runs_by_site(config, injections):
        return next(sites.run_by_site(config, [index], seed, record_events=record_events))
    child = replication_seed(seed, index)
    fleet = Fleet(config, child, record_events=record_events, injections=injections)
    metrics = fleet.run()
    return replication_result(
        index, metrics, fleet.samples, fleet.events if record_events else None,
        guest_downtimes(fleet.guest_books()), fleet.log_likelihood_ratio,
    )  # fmt: skip


def replication_result(
    index: int,
    metrics: dict[str, float],
    samples: Sequence[Sample],
    events: list | None,
    guest_downtime: np.ndarray | None = None,
    log_weight: float = 0.0,
) -> ReplicationResult:
    """A replication's metrics, its time series, (when recorded) its event log, each
    guest's downtime (min per guest-year) and its log likelihood ratio."""
    timeseries = pd.DataFrame(samples, columns=list(TIMESERIES_COLUMNS))
    timeseries.insert(0, "replication", index)
    frame = None
    if events is not None:
        frame = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
        frame.insert(0, "replication", index)
    return ReplicationResult(index=index, metrics=metrics, timeseries=timeseries, events=frame,
                             guest_downtime=guest_downtime, log_weight=log_weight)  # fmt: skip


@dataclass
class RunResult:
    """R replications of one config."""

    config: FleetConfig
    seed: int
    replications: list[ReplicationResult] = field(default_factory=list)
    precision: PrecisionReport | None = None
    notes: list[str] = field(default_factory=list)
    """Warnings found while running (precision not reached, ...); see `warnings`."""

    def warnings(self) -> list[str]:
        """Every warning about this run, one line each (`twin.experiments.warnings`)."""
        from twin.experiments.warnings import run_warnings

        return run_warnings(self)

    @property
    def weighted(self) -> bool:
        """Whether component faults were boosted, so that replications carry weights."""
        return self.config.rare_events is not None

    @property
    def log_weights(self) -> list[float] | None:
        """Each replication's log likelihood ratio, or None when no fault is boosted."""
        return [r.log_weight for r in self.replications] if self.weighted else None

    def summary_frame(self) -> pd.DataFrame:
        """One row per replication: its index, seed and every metric (and, with boosted
        faults, its ``log_likelihood_ratio``)."""
        rows = [{"replication": r.index, "seed": self.seed, **r.metrics} for r in self.replications]
        if self.weighted:
            for row, rep in zip(rows, self.replications, strict=True):
                row["log_likelihood_ratio"] = rep.log_weight
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """The SPEC 5 JSON object: every metric as ``{mean, ci95_low, ci95_high, stderr}``,
        the precision run's outcome (with ``--precision``) and the ``warnings``."""
        out = {
            "name": self.config.name,
            "seed": self.seed,
            "replications": len(self.replications),
            "horizon_hours": float(self.config.horizon),
            "metrics": summarise((r.metrics for r in self.replications), self.log_weights),
        }
        if self.weighted:
            out["rare_events"] = rare_events.report(self.config, self.log_weights or [])
        if self.precision is not None:
            out["precision"] = self.precision.to_json()
        return out | {"warnings": self.warnings()}

    def timeseries(self) -> pd.DataFrame:
        return pd.concat([r.timeseries for r in self.replications], ignore_index=True)

    def events(self) -> pd.DataFrame:
        frames = [r.events for r in self.replications if r.events is not None]
        if not frames:
            return pd.DataFrame(columns=["replication", *EVENT_COLUMNS])
        return pd.concat(frames, ignore_index=True)


def run_replications(
    config: FleetConfig,
    replications: int | None = None,
    seed: int | None = None,
    *,
    record_events: bool = False,
    injections: Sequence[Injection] = (),
    on_done: Callable[[ReplicationResult], None] | None = None,
    backend: Backend | None = None,
) -> RunResult:
    """Run ``replications`` (default config.replications), in order; with a ``backend``, a
    fleet whose sites share nothing runs its sites there as separate tasks
    (`twin.experiments.sites`), with the same result."""
    result = RunResult(config=config, seed=config.seed if seed is None else seed)
    replicate(result, replications, record_events=record_events, injections=injections,
              on_done=on_done, backend=backend)  # fmt: skip
    return result


def extend_run(
    result: RunResult,
    total: int,
    *,
    record_events: bool = False,
    injections: Sequence[Injection] = (),
    on_done: Callable[[ReplicationResult], None] | None = None,
    backend: Backend | None = None,
) -> None:
    """Add replications to ``result`` until it has ``total`` (replication i is always seed
    child i, so a run extended to R equals a run of R); with a ``backend``, site by site
    on its workers."""
    indices = range(len(result.replications), total)
    if backend is not None:
        from twin.experiments import sites

        sites.check_splittable(result.config, injections)
        reps = sites.run_by_site(result.config, indices, result.seed,
                                 record_events=record_events, backend=backend)  # fmt: skip
    else:
        reps = (run_replication(result.config, i, result.seed, record_events=record_events,
                                injections=injections) for i in indices)  # fmt: skip
    for rep in reps:
        result.replications.append(rep)
        if on_done is not None:
            on_done(rep)


def replicate(
    result: RunResult,
    replications: int | None = None,
    precision: PrecisionRule | None = None,
    *,
    record_events: bool = False,
    injections: Sequence[Injection] = (),
    on_done: Callable[[ReplicationResult], None] | None = None,
    backend: Backend | None = None,
) -> RunResult:
    """Fill ``result`` (appending as each replication ends, so a failure keeps what
    finished): ``replications`` of them (default config.replications), or with
    ``precision`` in rounds until its rule is met (`twin.experiments.precision`); with a
    ``backend``, each replication's sites run there as separate tasks."""
    n = result.config.replications if replications is None else replications
    options = {"record_events": record_events, "injections": injections, "on_done": on_done,
               "backend": backend}  # fmt: skip
    if precision is None:
        extend_run(result, n, **options)
        return result

    def extend(total: int) -> dict[str, float]:
        extend_run(result, total, **options)
        return relative_half_widths([r.metrics for r in result.replications],
                                    log_weights=result.log_weights)  # fmt: skip

    result.precision = run_in_rounds(precision, n, extend)
    if not result.precision.reached:
        result.notes.append(result.precision.describe())
    return result
