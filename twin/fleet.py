"""The fleet: a `mesa.Model` of hosts, guests, drivers, operators and shared components
on a NetworkX topology, advanced event by event by its `Engine`.

Time is in hours. There is no tick: every process (faults, repairs, reboots, detection,
sampling) schedules its next event itself. Read the fleet through `Fleet.metrics`,
`Fleet.snapshot` and the agents; advance it with Mesa's `run_until` / `run_for`.

The fleet holds the world and its collaborators, each with one job: ``engine`` (the
clock and calendar), ``draws`` (random durations and coin flips), ``accounts`` (exact
levels, incidents, migrations), ``log`` (the state-change log), ``capacity`` (free cpu and
memory), ``clusters`` (where guests may move), ``infrastructure`` (what failed switches
and feeds do), ``operators`` (the ticket queue). Agents talk to these, not to the fleet.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from mesa.time import Schedule

from twin.accounting import EVENT_COLUMNS, Accounts, EventLog
from twin.agents import Component, Guest, Host
from twin.agents.component import Infrastructure
from twin.architectures import ARCHITECTURES
from twin.build import build_world
from twin.capacity import Capacity
from twin.config import FleetConfig
from twin.config.schema import Injection
from twin.engine import EventDrivenModel, cyclic_gc_paused
from twin.metrics import Sample, architectures_present, fleet_metrics, guest_hours, sample
from twin.placement import Clusters
from twin.processes.drs import Balancer
from twin.processes.injections import schedule_injections
from twin.rare_events import LikelihoodRatio
from twin.services import Service
from twin.sites import campaigns, operator_teams
from twin.slo import GuestBooks, PeriodBooks
from twin.topology import Topology, build_topology

__all__ = ["EVENT_COLUMNS", "Fleet"]


class Fleet(EventDrivenModel):
    """A virtualised data-center fleet built from a validated `FleetConfig`.

    ``rng`` is anything `numpy.random.default_rng` accepts (a `SeedSequence` child
    for a replication). ``record_events`` keeps the full state-change log (every
    host, guest, driver, switch and operator transition); switch it off for speed.
    ``site`` builds only that site of a generated topology (a site that shares nothing
    with the others, `twin.experiments.sites`).
    """

    def __init__(
        self,
        config: FleetConfig,
        rng: Any = None,
        *,
        record_events: bool = True,
        topology: Topology | None = None,
        injections: list[Injection] | tuple[Injection, ...] = (),
        site: int | None = None,
    ) -> None:
        super().__init__(np.random.default_rng(rng))
        self.config = config
        self.horizon = config.horizon
        self.hosts: list[Host] = []
        self.hosts_by_name: dict[str, Host] = {}
        self.guests: list[Guest] = []  # by `Guest.index`
        self.components: dict[str, Component] = {}
        self.services: dict[str, Service] = {}
        self.samples: list[Sample] = []
        self.sample_hours: list[tuple[float, float]] = []  # each sample's `guest_hours`
        self.accounts = Accounts(self.engine)
        self.likelihood = LikelihoodRatio.of(config)
        """The likelihood ratio of boosted component faults (`twin.rare_events`)."""
        self.log = EventLog(self.engine, record_events, self.guests)
        self.capacity: Capacity
        self.clusters: Clusters
        self._guest_hosts: np.ndarray | None = None  # host index by guest; None: moved since
        with cyclic_gc_paused():
            self.topology = topology or build_topology(
                config.topology, config.hosts.inventory, site
            )
            self.operators = operator_teams(self)
            build_world(self)
            rows = [ARCHITECTURES.index(self.hosts[h].architecture)
                    for h in self.guest_host_indices()]  # fmt: skip
            self.accounts.guest_time.allocate(len(ARCHITECTURES), np.array(rows, dtype=int))
            self.infrastructure = Infrastructure(self, self.topology, self.hosts)
            for host in self.hosts:
                host.refresh()
                host.start_clocks()
            for component in self.components.values():
                component.start_clock()
            self.campaigns = campaigns(self)
            self.balancer = Balancer(self) if config.guests.drs.enabled else None
            self.injections = schedule_injections(self, injections)
        self.periods = PeriodBooks(self)
        self.schedule_recurring(self._sample, Schedule(interval=config.sample_every, start=0.0))

    # -- the guest map --------------------------------------------------------------------

    def guests_moved(self) -> None:
        """Guests were placed or moved: the guest map is stale."""
        self._guest_hosts = None

    def host_of(self, guest: int) -> Host | None:
        """The host guest ``guest`` (an index) is on."""
        i = int(self.guest_host_indices()[guest])
        return self.hosts[i] if i >= 0 else None

    def guest_host_indices(self) -> np.ndarray:
        """Each guest's host index (-1: none). Moves never touch the guests, so the map is
        rebuilt from the hosts when read after one."""
        if self._guest_hosts is None:
            self._guest_hosts = np.full(len(self.guests), -1)
            for host in self.hosts:
                self._guest_hosts[host.guest_ids] = host.index
        return self._guest_hosts

    def guest_downtime_hours(self) -> np.ndarray:
        """Each guest's own downtime so far, in hours, [architecture, guest]
        (`twin.accounting.GuestTime`)."""
        return self.accounts.guest_time.downtime(self.guest_host_indices())

    def guest_books(self) -> GuestBooks:
        """Per-guest downtime and per-period SLO arrays so far (mergeable over guests)."""
        return self.periods.books()

    # -- reading the fleet ----------------------------------------------------------------

    @property
    def record_events(self) -> bool:
        return self.log.enabled

    @property
    def events(self) -> list[tuple[float, str, str, str, str | None]]:
        """The state-change log, rows of `EVENT_COLUMNS` (empty unless ``record_events``)."""
        return self.log.rows

    @property
    def incidents(self) -> list:
        return self.accounts.incidents

    @property
    def events_processed(self) -> int:
        return self.engine.events_processed

    @property
    def architectures(self) -> list[str]:
        """Architectures that have (or had) hosts in this run."""
        return architectures_present(self.accounts.ledger, self.time)

    def _sample(self) -> None:
        now, ledger = self.time, self.accounts.ledger
        scopes = ["*", *self.architectures]
        self.samples.extend(sample(ledger, scope, now) for scope in scopes)
        self.sample_hours.extend(guest_hours(ledger, scope, now) for scope in scopes)

    def metrics(self) -> dict[str, float]:
        """SPEC 4 metrics so far, flat (``incidents.driver``, ``by_architecture.microkernel.x``)."""
        return fleet_metrics(self)

    def snapshot(self) -> dict[str, Any]:
        """Counts of hosts by state and architecture, and queue length, right now."""
        states: dict[str, dict[str, int]] = {}
        for host in self.hosts:
            by_state = states.setdefault(host.architecture, {})
            by_state[host.state.value] = by_state.get(host.state.value, 0) + 1
        return {
            "time": self.time,
            "hosts": states,
            "tickets_waiting": self.operators.waiting,
            "switches_down": sorted(self.infrastructure.down_switches),
            "feeds_down": sorted(self.infrastructure.down_feeds),
            "datastores_down": sorted(self.infrastructure.down_datastores),
        }

    @property
    def log_likelihood_ratio(self) -> float:
        """The log likelihood ratio of this run's component faults so far: 0 unless
        faults are boosted (`twin.rare_events`); clocks still running count as survived."""
        lr = self.likelihood
        if not lr.boost:
            return 0.0
        running = (lr.survival_term(c, c.clock_age) for c in self.components.values()
                   if c.clock_age is not None)  # fmt: skip
        return lr.log + math.fsum(running)

    def run(self) -> dict[str, float]:
        """Run to the configured horizon and return the metrics."""
        self.run_until(self.horizon)
        return self.metrics()
