"""Sites that share nothing, run apart and merged exactly.

With ``operators.per_site: true`` each site of a generated topology has its own operator
team and rolls its own update campaigns; its clusters (one pod, one architecture) never
span sites and the core switch does not fail. When, in addition, no service places
replicas across sites and no scenario injection acts on the whole fleet, a replication's
sites are independent fleets: each is built alone (`Fleet` with ``site``), drawing from
its own child of the replication's `SeedSequence`, and their closed `Books` merge into
the whole's metrics (integrals and counts add; so do the tallies of incidents and
tickets, blast radii kept as counts per value, so means and percentiles over them are
the whole's).

The serial run does the same site by site in one process, so the JSON of ``twin run
--workers N`` (or ``--dask``) is the serial run's, bit for bit: the sites' outcomes are
pure functions of their seeds and are merged in site order whatever order they finished.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.architectures import ARCHITECTURES
from twin.config import ConfigError, FleetConfig
from twin.config.schema import Injection
from twin.experiments.runner import ReplicationResult, replication_result, replication_seed
from twin.fleet import Fleet
from twin.metrics import Books, Sample, books_metrics
from twin.slo import guest_downtimes

if TYPE_CHECKING:
    from twin.experiments.backends import Backend


def dependent_sites(config: FleetConfig, injections: Sequence[Injection] = ()) -> str | None:
    """Why the sites of ``config`` cannot run apart, or None when they can."""
    if not config.operators.per_site:
        return "operators.per_site is false (the sites share one operator team)"
    if config.topology.file or config.hosts.inventory:
        return "the topology is read from a file (only a generated topology splits by site)"
    if config.topology.sites < 2:
        return "the fleet has one site"
    if config.services:
        return "services place their replicas across sites"
    if injections:
        return "the scenario's injections act on the whole fleet"
    return None


def runs_by_site(config: FleetConfig, injections: Sequence[Injection] = ()) -> bool:
    """Whether a replication of ``config`` runs site by site (serially or on workers)."""
    return dependent_sites(config, injections) is None


def check_splittable(config: FleetConfig, injections: Sequence[Injection] = ()) -> None:
    """Bad input for ``--workers`` / ``--dask``: the sites are not independent."""
    reason = dependent_sites(config, injections)
    if reason is not None:
        raise ConfigError("operators.per_site", f"sites cannot run apart: {reason}")


def site_seeds(seed: int, replication: int, sites: int) -> list[np.random.SeedSequence]:
    """Each site's child of replication ``replication``'s `SeedSequence` (SPEC 6)."""
    return replication_seed(seed, replication).spawn(sites)


@dataclass(frozen=True)
class SiteTask:
    """One site of one replication: what a worker needs, small and picklable."""

    config: FleetConfig
    replication: int
    seed: int
    site: int
    record_events: bool = False

    @property
    def key(self) -> str:
        return f"r{self.replication}-s{self.site}"


@dataclass
class SiteOutcome:
    """What one site's run gives the merge: its books, samples and (maybe) events."""

    site: int
    books: Books
    samples: list[Sample]
    sample_hours: list[tuple[float, float]]
    events: list[tuple[float, str, str, str, str | None]] | None
    log_weight: float = 0.0


def run_site(task: SiteTask) -> SiteOutcome:
    """Build and run one site of a replication (on a worker, or in this process)."""
    seed = site_seeds(task.seed, task.replication, task.config.topology.sites)[task.site]
    fleet = Fleet(task.config, seed, record_events=task.record_events, site=task.site)
    fleet.run_until(fleet.horizon)
    events = fleet.events if task.record_events else None
    return SiteOutcome(task.site, Books.of(fleet), fleet.samples, fleet.sample_hours, events,
                       fleet.log_likelihood_ratio)  # fmt: skip


def merge_sites(replication: int, outcomes: Sequence[SiteOutcome]) -> ReplicationResult:
    """One replication's result from all its sites' outcomes (in any order)."""
    parts = sorted(outcomes, key=lambda o: o.site)
    books = Books.merged([p.books for p in parts])
    metrics = books_metrics(books)
    events = None
    if parts[0].events is not None:
        events = sorted((row for p in parts for row in p.events or ()), key=lambda r: r[0])
    log_weight = math.fsum(p.log_weight for p in parts)  # sites are independent
    return replication_result(replication, metrics, merge_samples(parts), events,
                              guest_downtimes(books.guests), log_weight)  # fmt: skip


def merge_samples(parts: Sequence[SiteOutcome]) -> list[Sample]:
    """The whole fleet's time series: at each sample time and scope, the sites' levels
    added, and the availability so far from their guest-hours added."""
    rows: dict[tuple[float, str], list[float]] = {}
    for part in parts:
        for s, (hours, up) in zip(part.samples, part.sample_hours, strict=True):
            row = rows.setdefault((s.time, s.scope), [0.0] * 7)
            for i, value in enumerate((s.guests_up, s.guests, s.hosts_up, s.hosts,
                                       s.hosts_degraded, hours, up)):  # fmt: skip
                row[i] += value
    order = {scope: i for i, scope in enumerate(["*", *ARCHITECTURES])}
    keys = sorted(rows, key=lambda k: (k[0], order[k[1]]))
    return [Sample(t, scope, *rows[t, scope][:5],
                   rows[t, scope][6] / rows[t, scope][5] if rows[t, scope][5] else 1.0)
            for t, scope in keys]  # fmt: skip


def site_tasks(
    config: FleetConfig, replications: Sequence[int], seed: int, record_events: bool
) -> list[SiteTask]:
    return [SiteTask(config, r, seed, s, record_events)
            for r in replications for s in range(config.topology.sites)]  # fmt: skip


def run_by_site(
    config: FleetConfig,
    replications: Sequence[int],
    seed: int,
    *,
    record_events: bool = False,
    backend: Backend | None = None,
) -> Iterator[ReplicationResult]:
    """Run these replications site by site, in this process or on ``backend``'s workers,
    and yield each merged replication in order as soon as it and those before it are
    done."""
    tasks = site_tasks(config, replications, seed, record_events)
    done = backend.run(tasks, run_site) if backend else ((t, run_site(t)) for t in tasks)
    sites = config.topology.sites
    waiting: dict[int, list[SiteOutcome]] = {r: [] for r in replications}
    pending = list(replications)
    for task, outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
        waiting[task.replication].append(outcome)
        while pending and len(waiting[pending[0]]) == sites:
            yield merge_sites(pending[0], waiting.pop(pending.pop(0)))


def run_replications_by_site(
    config: FleetConfig,
    replications: int,
    seed: int,
    *,
    record_events: bool = False,
    backend: Backend | None = None,
    on_done: Callable[[ReplicationResult], Any] | None = None,
) -> list[ReplicationResult]:
    """Every replication of ``config`` site by site (`run_by_site`)."""
    results = []
    for result in run_by_site(config, range(replications), seed,
                              record_events=record_events, backend=backend):  # fmt: skip
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results
