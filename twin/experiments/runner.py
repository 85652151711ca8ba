"""Run a fleet config R times with independent, reproducible seeds.

Replication i of a run with seed S uses child i of ``SeedSequence(S).spawn(R)``
(SPEC 6), so a replication's result does not depend on which worker runs it or
in which order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from twin.config import FleetConfig
from twin.config.schema import Injection
from twin.fleet import EVENT_COLUMNS, Fleet
from twin.metrics import summarise
from twin.slo import guest_downtimes

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


@dataclass
class ReplicationResult:
    """What one replication produced."""

    index: int
    metrics: dict[str, float]
    timeseries: pd.DataFrame
    events: pd.DataFrame | None = None
    guest_downtime: np.ndarray | None = None
    """Each guest's own downtime, minutes per guest-year (`twin.slo.guest_downtimes`)."""


def run_replication(
    config: FleetConfig,
    index: int,
    seed: int | None = None,
    *,
    record_events: bool = False,
    injections: Sequence[Injection] = (),
) -> ReplicationResult:
    """Build and run replication ``index`` of ``config`` (seeded by ``seed`` or config.seed),
    with a scenario's timed ``injections``."""
    seed = config.seed if seed is None else seed
    child = np.random.SeedSequence(seed).spawn(index + 1)[index]
    fleet = Fleet(config, child, record_events=record_events, injections=injections)
    metrics = fleet.run()
    timeseries = pd.DataFrame(fleet.samples, columns=list(TIMESERIES_COLUMNS))
    timeseries.insert(0, "replication", index)
    events = None
    if record_events:
        events = pd.DataFrame(fleet.events, columns=list(EVENT_COLUMNS))
        events.insert(0, "replication", index)
    return ReplicationResult(index=index, metrics=metrics, timeseries=timeseries, events=events,
                             guest_downtime=guest_downtimes(fleet.guest_books()))  # fmt: skip


@dataclass
class RunResult:
    """R replications of one config."""

    config: FleetConfig
    seed: int
    replications: list[ReplicationResult] = field(default_factory=list)

    def summary_frame(self) -> pd.DataFrame:
        """One row per replication: its index, seed and every metric."""
        rows = [{"replication": r.index, "seed": self.seed, **r.metrics} for r in self.replications]
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """The SPEC 5 JSON object: every metric as ``{mean, ci95_low, ci95_high}``."""
        return {
            "name": self.config.name,
            "seed": self.seed,
            "replications": len(self.replications),
            "horizon_hours": float(self.config.horizon),
            "metrics": summarise(r.metrics for r in self.replications),
        }

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
) -> RunResult:
    """Run ``replications`` (default config.replications) in this process, in order."""
    seed = config.seed if seed is None else seed
    n = config.replications if replications is None else replications
    result = RunResult(config=config, seed=seed)
    for i in range(n):
        rep = run_replication(config, i, seed, record_events=record_events, injections=injections)
        result.replications.append(rep)
        if on_done is not None:
            on_done(rep)
    return result
