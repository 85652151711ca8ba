"""Shared infrastructure that fails and is repaired: top-of-rack and spine switches,
power feeds, datastores. Their outages are correlated by the topology: every host behind
a failed switch is unreachable, every host fed only by a failed feed loses power, and
every guest on a failed datastore is unavailable (all paths down) while its host runs."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import mesa
import numpy as np

from twin.agents.operator import Priority
from twin.config import Distribution
from twin.topology import NodeKind
from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.agents.host import Host
    from twin.engine import Timer
    from twin.fleet import Fleet
    from twin.topology import Topology


class ComponentState(StrEnum):
    UP = "up"
    DOWN = "down"


COMPONENT_CAUSES = {NodeKind.POWER: Cause.POWER, NodeKind.STORAGE: Cause.STORAGE}
"""Why guests go down when a component of this kind fails (any other: the network)."""


def datastore_of(host: Host, scope: str) -> str:
    """The name of the shared datastore ``host``'s guests live on: its pod's SAN (as the
    generated topology names it) or its cluster's."""
    return f"san-{host.pod}" if scope == "pod" else f"ds-{host.cluster}"


class Component(mesa.Agent):
    """A switch or a power feed of the fleet graph, with its fault and repair."""

    model: Fleet

    def __init__(
        self, model: Fleet, name: str, kind: NodeKind, fault: Distribution, repair: Distribution
    ) -> None:
        super().__init__(model)
        self.name = name
        self.kind = kind
        self.fault = fault
        self.repair = repair
        self.state = ComponentState.UP
        self._clock: Timer | None = None
        self._clock_started = 0.0
        self._fault_law = model.likelihood.fault_law(kind, fault)
        """What the fault clock draws from: ``fault``, or its boosted law
        (`twin.rare_events`)."""

    @property
    def cause(self) -> Cause:
        return COMPONENT_CAUSES.get(self.kind, Cause.NETWORK)

    @property
    def priority(self) -> Priority:
        """Its repair ticket's priority: power first, then the network and storage."""
        return Priority.POWER if self.kind == NodeKind.POWER else Priority.NETWORK

    def start_clock(self) -> None:
        self._clock = self.model.engine.after(self._fault_law, self._fault)
        self._clock_started = self.model.engine.now

    @property
    def clock_age(self) -> float | None:
        """How long the fault clock has run, or None when it is stopped."""
        return None if self._clock is None else self.model.engine.now - self._clock_started

    def _fault(self) -> None:
        self.model.likelihood.fired(self, self.model.engine.now - self._clock_started)
        self._clock = None
        self.fail()

    def fail(self, repair_hours: float | None = None) -> None:
        """Go down now; a repair ticket opens at once, or (for an injected outage of known
        length) the component comes back by itself after ``repair_hours``."""
        if self.state is ComponentState.DOWN:
            return
        if self._clock is not None:
            self._clock.cancel()
            self.model.likelihood.survived(self, self.model.engine.now - self._clock_started)
            self._clock = None
        self._set(ComponentState.DOWN)
        if repair_hours is None:
            self.model.operators.request_repair(self)
        else:
            self.model.engine.schedule(self.restore, after=repair_hours)

    def restore(self) -> None:
        if self.state is ComponentState.UP:
            return
        self._set(ComponentState.UP)
        self.start_clock()

    def _set(self, state: ComponentState) -> None:
        if self.model.log.enabled:
            self.model.log.state(self.name, self.state.value, state.value, self.cause)
        self.state = state
        self.model.infrastructure.changed(self)


class Infrastructure:
    """Which switches and power feeds are down, and what that does to the hosts."""

    def __init__(self, fleet: Fleet, topology: Topology, hosts: list[Host]) -> None:
        self.fleet = fleet
        self.topology = topology
        self.hosts = hosts
        self.down_switches: set[str] = set()
        self.down_feeds: set[str] = set()
        self.down_datastores: set[str] = set()
        self.reachable = np.ones(len(hosts), dtype=bool)
        self.datastore_hosts: dict[str, list[Host]] = {}
        for host in hosts:
            name = datastore_of(host, fleet.config.storage.scope)
            self.datastore_hosts.setdefault(name, []).append(host)

    def changed(self, component: Component) -> None:
        """A switch or power feed went down or came back: recompute who is affected."""
        down = component.state is ComponentState.DOWN
        accounts = self.fleet.accounts
        incident = accounts.open_incident(component.cause) if down else None
        topo = self.topology
        if component.kind == NodeKind.STORAGE:
            (self.down_datastores.add if down else self.down_datastores.discard)(component.name)
            for host in self.datastore_hosts.get(component.name, []):
                host.set_storage(not down, incident)
        elif component.kind == NodeKind.POWER:
            (self.down_feeds.add if down else self.down_feeds.discard)(component.name)
            for i in topo.feed_hosts[component.name]:
                host = self.hosts[i]
                powered = any(f not in self.down_feeds for f in topo.host_feeds[i])
                if host.powered and not powered:
                    host.lose_power(incident)
                elif powered and not host.powered:
                    host.regain_power()
        else:
            (self.down_switches.add if down else self.down_switches.discard)(component.name)
            reachable = topo.reachable_hosts(self.down_switches)
            for i in np.flatnonzero(reachable != self.reachable):
                self.hosts[i].set_reachable(bool(reachable[i]), incident)
            self.reachable = reachable
        if incident is not None:
            accounts.commit_incident(incident)
