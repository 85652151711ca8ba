"""The fleet: a `mesa.Model` of hosts, guests, drivers, operators and shared components
on a NetworkX topology, advanced event by event on Mesa's event list.

Time is in hours. There is no tick: Mesa's default one-per-hour step is stopped,
and every process (faults, repairs, reboots, detection, sampling) schedules its
next event itself. Read the fleet through `Fleet.metrics`, `Fleet.snapshot` and the
agents; advance it with Mesa's `run_until` / `run_for`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from typing import Any

import mesa
import numpy as np
from mesa.experimental.mesa_signals import ObservableSignals
from mesa.time import Schedule

from twin.agents import Component, ComponentState, Driver, Guest, Host, OperatorTeam, Priority
from twin.agents.host import HostState
from twin.calendar import Calendar, Timer, cyclic_gc_paused
from twin.config import ARCHITECTURES, ConfigError, Distribution, FleetConfig
from twin.config.schema import Injection
from twin.draws import Draws
from twin.metrics import (
    LEVELS,
    Change,
    Incident,
    Ledger,
    Level,
    availability_stats,
    change_between,
    incident_stats,
)
from twin.placement import assign_architectures, hosts_with_share, place_guests
from twin.processes.injections import schedule_injections
from twin.processes.migration import allows
from twin.processes.updates import Campaign
from twin.services import Service
from twin.topology import NodeKind, Topology, build_topology

EVENT_COLUMNS = ("time", "entity", "from_state", "to_state", "cause")


class Fleet(mesa.Model):
    """A virtualised data-center fleet built from a validated `FleetConfig`.

    ``rng`` is anything `numpy.random.default_rng` accepts (a `SeedSequence` child
    for a replication). ``record_events`` keeps the full state-change log (every
    host, guest, driver, switch and operator transition); switch it off for speed.
    """

    def __init__(
        self,
        config: FleetConfig,
        rng: Any = None,
        *,
        record_events: bool = True,
        topology: Topology | None = None,
        injections: list[Injection] | tuple[Injection, ...] = (),
    ) -> None:
        super().__init__(rng=np.random.default_rng(rng))
        # Event-driven: no fixed tick. Mesa 3.5 has no public switch for its default step.
        self._default_schedule.stop()
        self.config = config
        self.horizon = config.horizon
        self.record_events = record_events
        self.events: list[tuple[float, str, str, str, str | None]] = []
        self.samples: list[tuple[float, str, float, float, float, float, float, float]] = []
        self.ledger = Ledger()
        self._host_levels: dict[str, list] = {}  # per architecture, in LEVELS order
        self.incidents: list[Incident] = []
        self.migrations: dict[str, int] = {}
        self.events_processed = 0
        self.calendar = Calendar()
        self.draws = Draws(self.rng)
        self._down_switches: set[str] = set()
        self._down_feeds: set[str] = set()
        self.hosts: list[Host] = []
        self.guests: list[Guest] = []  # by `Guest.index`
        self._guest_hosts: np.ndarray | None = None  # host index by guest; None: moved since
        self.components: dict[str, Component] = {}
        self.services: dict[str, Service] = {}
        self.clusters: dict[tuple[str, str], list[Host]] = {}
        with cyclic_gc_paused():
            self.topology = topology or build_topology(config.topology, config.hosts.inventory)
            self.operators = OperatorTeam(self, config.operators.count)
            self._build()
            for host in self.hosts:
                host.refresh()
                host.start_clocks()
            for component in self.components.values():
                component.start_clock()
            self.campaigns = {spec.name: Campaign(self, spec) for spec in config.updates}
            self.injections = schedule_injections(self, injections)
        self.schedule_recurring(self._sample, Schedule(interval=config.sample_every, start=0.0))

    # -- building the world ---------------------------------------------------------------

    def _build(self) -> None:
        """Hosts on the topology, their drivers, guests and service replicas, components."""
        self._build_hosts()
        self._install_drivers()
        self._place_guests()
        self._build_components()
        self._reachable = np.ones(len(self.hosts), dtype=bool)

    def _build_hosts(self) -> None:
        cfg, topo = self.config, self.topology
        archs = assign_architectures(
            topo.host_rack, cfg.hosts.architecture_mix, cfg.hosts.assign, self.rng
        )
        for i, name in enumerate(topo.hosts):
            node = topo.graph.nodes[name]
            arch = node.get("architecture", archs[i])
            self.hosts.append(
                Host(self, name, i, topo.host_rack[i], topo.host_pod[i], arch,
                     float(node.get("cpu", cfg.hosts.cpu)),
                     float(node.get("memory_gb", cfg.hosts.memory_gb)))
            )  # fmt: skip
        self.hosts_by_name = {h.name: h for h in self.hosts}
        self.free_cpu = np.array([h.cpu for h in self.hosts], dtype=float)
        self.free_memory = np.array([h.memory_gb for h in self.hosts], dtype=float)
        self.room = np.full(len(self.hosts), -math.inf)  # free cpu of the accepting hosts
        self.guest_kind = (cfg.guests.cpu, cfg.guests.memory_gb)  # all but service replicas

    def _install_drivers(self) -> None:
        """Each driver type on ``share`` of the hosts (or on the hosts an inventory lists)."""
        cfg, topo = self.config, self.topology
        listed = [topo.graph.nodes[h].get("drivers") for h in topo.hosts]  # from an inventory
        for spec in cfg.drivers:
            chosen = (
                hosts_with_share(len(self.hosts), spec.share, self.rng)
                if any(d is None for d in listed)
                else [i for i, d in enumerate(listed) if spec.name in str(d).split(";")]
            )
            for i in chosen:
                host = self.hosts[i]
                host.drivers.append(Driver(self, host, spec.name, spec.fault))

    def _place_guests(self) -> None:
        """The per-host guests by the placement policy, then the service replicas; the
        clusters guests may later move in (same pod, same architecture)."""
        cfg = self.config
        g = cfg.guests
        where = place_guests(
            len(self.hosts), g.per_host, g.cpu, g.memory_gb, cfg.hosts.cpu, cfg.hosts.memory_gb,
            g.placement,
        )  # fmt: skip
        for j, i in enumerate(where):  # `Host.add_guest`, for all of them at once
            self.guests.append(Guest(self, j, f"g{j}", g.cpu, g.memory_gb))
            self.hosts[i].guest_ids.append(j)
        placed = np.bincount(np.asarray(where, dtype=int), minlength=len(self.hosts))
        self.free_cpu -= placed * g.cpu
        self.free_memory -= placed * g.memory_gb
        for host in self.hosts:
            self.clusters.setdefault((host.pod, host.architecture), []).append(host)
        self._index_clusters()
        for n, spec in enumerate(cfg.services):
            service = Service(spec.name, spec.quorum, spec.anti_affinity)
            self.services[spec.name] = service
            for r in range(spec.replicas):
                guest = Guest(self, len(self.guests), f"{spec.name}-{r}", spec.cpu,
                              spec.memory_gb, service)  # fmt: skip
                service.replicas.append(guest)
                self.guests.append(guest)
                self._place_replica(guest, f"services.{n}")

    def _build_components(self) -> None:
        """A failing component for every switch and power feed of the graph."""
        net, topo = self.config.network, self.topology
        processes = {
            NodeKind.TOR: (net.tor_fault, net.tor_repair),
            NodeKind.SPINE: (net.spine_fault, net.spine_repair),
            NodeKind.POWER: (net.power_fault, net.power_repair),
        }
        for name in [*topo.switches, *topo.feeds]:
            kind = topo.kind(name)
            fault, repair = processes[kind]
            self.components[name] = Component(self, name, kind.value, fault, repair)

    def _place_replica(self, guest: Guest, where: str) -> None:
        """Place a service replica by the placement policy, honouring anti-affinity."""
        hosts = self.hosts
        if self.config.guests.placement == "spread":
            hosts = sorted(hosts, key=lambda h: (-h.cpu_free, h.index))
        target = next((h for h in hosts if allows(guest, h)), None)
        if target is None:
            raise ConfigError(where, f"no host can take replica {guest.name} "
                              "(capacity or anti-affinity)")  # fmt: skip
        target.add_guest(guest)

    def cluster_of(self, host: Host) -> list[Host]:
        """The hosts a guest of ``host`` may move to: same pod, same architecture."""
        return self.clusters[(host.pod, host.architecture)]

    def cluster_indices(self, host: Host) -> np.ndarray:
        """Indices of `cluster_of` ``host``, for vectorised capacity look-ups."""
        return self._cluster_indices[(host.pod, host.architecture)]

    def _index_clusters(self) -> None:
        self._cluster_indices = {
            key: np.array([h.index for h in hosts], dtype=int)
            for key, hosts in self.clusters.items()
        }

    def convert(self, host: Host, architecture: str) -> None:
        """Reinstall a host with the other hypervisor: a planned reboot into it."""
        if host.architecture == architecture:
            return
        was_up = host.is_up
        if was_up:
            host.go_down(HostState.MAINTENANCE, "update", self.open_incident("update"))
        self.clusters[(host.pod, host.architecture)].remove(host)
        host.withdraw()
        host.set_architecture(architecture)
        self.clusters.setdefault((host.pod, architecture), []).append(host)
        self._index_clusters()
        host.refresh()
        if was_up:
            host.begin_reboot()

    def count_migration(self, architecture: str, guests: int = 1) -> None:
        self.migrations[architecture] = self.migrations.get(architecture, 0) + guests
        self.migrations["*"] = self.migrations.get("*", 0) + guests

    def operator_error(self, task: Any) -> None:
        """An operator's mistake: the wrong host is rebooted, a running neighbour in the
        rack of the task's host (or, for other tasks, a running host drawn at random)."""
        target = getattr(task, "host", None)
        pool: list[Host] = []
        if target is not None:
            neighbours = (self.hosts[i] for i in self.topology.rack_hosts[target.rack])
            pool = [h for h in neighbours if h.is_up and h is not target]
        if not pool:
            draws = (self.hosts[i] for i in self.rng.integers(len(self.hosts), size=16))
            pool = [h for h in draws if h.is_up and h is not target][:1]
        if not pool:
            return
        victim = pool[int(self.rng.integers(len(pool)))]
        victim.go_down(HostState.REBOOTING, "operator_error", self.open_incident("operator_error"))
        victim.begin_reboot()

    # -- the event vocabulary -------------------------------------------------------------

    def sample(self, dist: Distribution) -> float:
        """One draw of a duration distribution, in hours."""
        return self.draws.sample(dist)

    def chance(self, probability: float) -> bool:
        """True with the given probability (a coin flip of the fleet's generator)."""
        return self.draws.chance(probability)

    def after_hours(self, hours: float, fn: Callable[[], None]) -> Timer:
        """Call ``fn`` ``hours`` (>= 0) from now, on the fleet's calendar."""
        return self.calendar.schedule(self._time + hours, fn)

    @property
    def now(self) -> float:
        """The simulation time, read past Mesa's observable descriptor (which tracks reads
        for its computed signals; none reads the clock inside the fleet's own steps)."""
        return self._time

    def after(self, dist: Distribution, fn: Callable[[], None]) -> Timer | None:
        """Call ``fn`` after a draw of ``dist``; nothing when the process is ``never``."""
        if dist.never:
            return None
        return self.after_hours(self.draws.sample(dist), fn)

    def log(self, entity: str, frm: str, to: str, cause: str | None) -> None:
        if self.record_events:
            self.events.append((self.now, entity, frm, to, cause))

    def log_guests(self, ids: Iterable[int], frm: str, to: str, cause: str | None) -> None:
        """Log a state change of the guests with these indices."""
        if self.record_events:
            now, guests = self.now, self.guests
            self.events.extend((now, guests[i].name, frm, to, cause) for i in ids)

    def guests_moved(self) -> None:
        """Guests were placed or moved: the guest map is stale."""
        self._guest_hosts = None

    def host_of(self, guest: int) -> Host | None:
        """The host guest ``guest`` (an index) is on. Moves never touch the guests, so the
        map is rebuilt from the hosts when read after one."""
        if self._guest_hosts is None:
            self._guest_hosts = np.full(len(self.guests), -1)
            for host in self.hosts:
                self._guest_hosts[host.guest_ids] = host.index
        i = int(self._guest_hosts[guest])
        return self.hosts[i] if i >= 0 else None

    def book(self, architecture: str, before: tuple, after: tuple) -> None:
        """Change the fleet's levels by what one host contributes, from ``before`` to
        ``after`` (in `LEVELS` order)."""
        self.book_change(architecture, change_between(before, after))

    def book_change(self, architecture: str, change: Change) -> None:
        """Change the fleet's levels of one architecture (`Level.add`, inlined)."""
        levels, now = self._levels_of(architecture), self._time
        for i, delta in change:
            level = levels[i]
            level.value += delta
            level.moment += delta * now

    def _levels_of(self, architecture: str) -> list[Level]:
        levels = self._host_levels.get(architecture)
        if levels is None:
            levels = [self.ledger.level(quantity, architecture) for quantity in LEVELS]
            self._host_levels[architecture] = levels
        return levels

    def open_incident(self, cause: str) -> Incident:
        return Incident(cause=cause, start=self.now)

    def commit_incident(self, incident: Incident) -> None:
        """Keep an incident once it has had an effect (and only once)."""
        if incident.effective and not incident.recorded:
            incident.recorded = True
            self.incidents.append(incident)

    # -- shared infrastructure ------------------------------------------------------------

    def priority_of(self, component: Component) -> Priority:
        return Priority.POWER if component.kind == NodeKind.POWER else Priority.NETWORK

    def on_component_change(self, component: Component) -> None:
        """A switch or power feed went down or came back: recompute who is affected."""
        down = component.state is ComponentState.DOWN
        incident = self.open_incident(component.cause) if down else None
        if component.kind == NodeKind.POWER:
            (self._down_feeds.add if down else self._down_feeds.discard)(component.name)
            for i in self.topology.feed_hosts[component.name]:
                host = self.hosts[i]
                powered = any(f not in self._down_feeds for f in self.topology.host_feeds[i])
                if host.powered and not powered:
                    host.lose_power(incident)
                elif powered and not host.powered:
                    host.regain_power()
        else:
            (self._down_switches.add if down else self._down_switches.discard)(component.name)
            reachable = self.topology.reachable_hosts(self._down_switches)
            for i in np.flatnonzero(reachable != self._reachable):
                self.hosts[i].set_reachable(bool(reachable[i]), incident)
            self._reachable = reachable
        if incident is not None:
            self.commit_incident(incident)

    # -- reading the fleet ----------------------------------------------------------------

    @property
    def architectures(self) -> list[str]:
        """Architectures that have (or had) hosts in this run."""
        return [a for a in ARCHITECTURES if self.ledger.integral("hosts", a, self.time) > 0
                or self.ledger.value("hosts", a) > 0]  # fmt: skip

    def _sample(self) -> None:
        now = self.time
        for scope in ["*", *self.architectures]:
            ledger = self.ledger
            guest_hours = ledger.integral("guests", scope, now)
            so_far = ledger.integral("guests_up", scope, now) / guest_hours if guest_hours else 1.0
            self.samples.append((
                now, scope,
                ledger.value("guests_up", scope), ledger.value("guests", scope),
                ledger.value("hosts_up", scope), ledger.value("hosts", scope),
                ledger.value("hosts_degraded", scope), so_far,
            ))  # fmt: skip

    def metrics(self) -> dict[str, float]:
        """SPEC 4 metrics so far, flat (``incidents.driver``, ``by_architecture.microkernel.x``)."""
        now = self.time
        out: dict[str, float] = {}
        ops = self.config.operators
        scopes = ["*", *self.architectures]
        incidents = incident_stats(self.incidents, now, scopes)
        for scope in scopes:
            m = availability_stats(self.ledger, scope, now)
            m |= incidents[scope]
            tickets = [t for t in self.operators.tickets if scope in ("*", t.arch)]
            available = ops.count * now
            busy = self.ledger.integral("operators_busy", scope, now)
            m["operator_utilization"] = busy / available if available > 0 else 0.0
            # a ticket still waiting has waited until now (as an open incident ends now)
            waits = [(now if t.taken is None else t.taken) - t.opened for t in tickets]
            m["ticket_wait_hours"] = float(np.mean(waits)) if waits else 0.0
            m["migrations"] = float(self.migrations.get(scope, 0))
            if scope == "*" and self.services:
                m["service_availability"] = float(
                    np.mean([s.availability(now) for s in self.services.values()])
                )
            prefix = "" if scope == "*" else f"by_architecture.{scope}."
            out |= {prefix + k: float(v) for k, v in m.items()}
        return out

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
            "switches_down": sorted(self._down_switches),
            "feeds_down": sorted(self._down_feeds),
        }

    def _advance_time(self, until: float) -> None:
        """Mesa's event loop (`run_until` / `run_for` call it): the fleet's calendar and
        Mesa's event list run as one, earliest first (Mesa's first on a tie).

        The fleet's timers run in a tight loop up to Mesa's next event; a callback that
        puts an earlier event on Mesa's list ends that run, and the two merge again."""
        with cyclic_gc_paused():
            self._run_events(until)
        self.time = max(self.time, until)

    def _run_events(self, until: float) -> None:
        calendar = self.calendar
        heap = calendar.heap  # refilled in place: the same list throughout
        mesa_events = self._event_list._events  # Mesa's heap: its peek_ahead scans it all
        pop = heapq.heappop
        fired = 0
        while True:
            while mesa_events and mesa_events[0].CANCELED:
                pop(mesa_events)
            mesa_head = mesa_events[0] if mesa_events else None
            mesa_next = mesa_head.time if mesa_head is not None else math.inf
            # Mesa's `time` is an observable: setting it checks for subscribers each time.
            # With none (checked again at each of Mesa's events), set its slot directly.
            observed = self._has_subscribers("time", ObservableSignals.CHANGED)
            stop = min(mesa_next, math.nextafter(until, math.inf))  # timers due before
            while heap or calendar.refill():
                time, _, timer = heap[0]
                fn = timer.fn
                if fn is None:  # cancelled: `Calendar.next_time`'s skip, inlined for speed
                    pop(heap)
                    calendar.cancelled -= 1
                    continue
                if time >= stop:
                    break
                pop(heap)
                timer.fn = None
                if observed:
                    self.time = time
                else:
                    self._time = time
                fn()
                fired += 1
                if mesa_events and mesa_events[0] is not mesa_head:
                    break  # a callback put something on Mesa's list: merge again
            if mesa_events and mesa_events[0] is not mesa_head:
                continue
            if mesa_next > until:
                break
            event = pop(mesa_events)
            self.time = event.time
            event.execute()
            fired += 1
        self.events_processed += fired

    def run(self) -> dict[str, float]:
        """Run to the configured horizon and return the metrics."""
        self.run_until(self.horizon)
        return self.metrics()
