"""Moving guests between hosts: choosing a target, HA restart and live migration.

A guest can only move inside its cluster: the hosts of the same pod running the
same architecture (a VM does not live-migrate between ESXi and Hyper-V). A target
must be accepting guests, have the cpu and memory free, and respect the guest's
service anti-affinity (no other replica on the same host, or in the same rack).

* HA restart: some time after a host goes down, its guests are restarted on other
  hosts as capacity allows; they are down until they boot there.
* Live migration (`Evacuation`): guests stay up while they move, in waves of at
  most ``max_concurrent`` per source host; a wave takes memory / bandwidth.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from twin.agents.guest import Guest
    from twin.agents.host import Host
    from twin.calendar import Timer
    from twin.fleet import Fleet

Plan = list[tuple["Guest", "Host"]]


def allows(guest: Guest, target: Host) -> bool:
    """Whether ``target`` has room for ``guest`` and keeps its service's anti-affinity."""
    if target.cpu_free < guest.cpu or target.memory_free < guest.memory_gb:
        return False
    service = guest.service
    if service is None or service.anti_affinity == "none":
        return True
    return not service.conflicts(guest, target)


def _by_free_capacity(model: Fleet, source: Host) -> Iterator[Host]:
    """Hosts of the source's cluster that accept guests, the emptiest (most free cpu) first."""
    members = model.cluster_indices(source)
    members = members[model.accepting[members]]
    order = members[np.argsort(-model.free_cpu[members], kind="stable")]
    hosts = model.hosts
    for i in order:
        host = hosts[i]
        if host is not source:
            yield host


def plan_moves(model: Fleet, guests: Sequence[Guest], source: Host) -> Plan:
    """Choose a target for each guest (reserving its capacity); guests that fit nowhere
    are left out. ``spread`` prefers the emptiest host, ``pack`` the first that fits."""
    plan: Plan = []
    if model.config.guests.placement == "pack":
        candidates = [h for h in model.cluster_of(source) if h is not source and h.accepting]
        for guest in guests:
            target = next((h for h in candidates if allows(guest, h)), None)
            if target is not None:
                target.reserve(guest)
                plan.append((guest, target))
        return plan
    # Spread: a heap of the hosts pulled so far from the emptiest-first stream; a host is
    # pulled before the heap's top is taken whenever it has more free cpu (on ties the
    # heap goes first, so only about one host per guest is ever pulled).
    stream = _by_free_capacity(model, source)
    upcoming = next(stream, None)
    heap: list[tuple[float, int, Host]] = []
    for guest in guests:
        skipped = []
        while True:
            while upcoming is not None and (not heap or upcoming.cpu_free > -heap[0][0]):
                heapq.heappush(heap, (-upcoming.cpu_free, upcoming.index, upcoming))
                upcoming = next(stream, None)
            if not heap:
                break
            entry = heapq.heappop(heap)
            target = entry[2]
            if allows(guest, target):
                target.reserve(guest)
                plan.append((guest, target))
                heapq.heappush(heap, (-target.cpu_free, target.index, target))
                break
            skipped.append(entry)
        for entry in skipped:
            heapq.heappush(heap, entry)
    return plan


class Arrival:
    """Guests restarted by HA on other hosts, booting there together (one draw of
    ``boot_time``); the incidents they belong to end, for them, when they are up."""

    def __init__(self, model: Fleet, placed: dict[Host, list[Guest]], incidents: set) -> None:
        self.model = model
        self.placed = placed
        self.incidents = incidents
        for incident in incidents:
            incident.pending.add(self)
        for host in placed:
            host.arrivals.add(self)
        self.event: Timer | None = model.after_hours(
            model.sample(model.config.guests.boot_time), self.done
        )

    def done(self) -> None:
        self.event = None
        for host, guests in self.placed.items():
            host.arrivals.discard(self)
            host.finish_booting(guests)
        for incident in self.incidents:
            incident.release(self, self.model.time)

    def cancel_on(self, host: Host) -> None:
        """``host`` went down before its guests booted: they will boot with it instead,
        and the incidents now wait for that host."""
        host.finish_booting(self.placed.pop(host), up=False)
        for incident in self.incidents:
            host.open_incidents.add(incident)
            incident.pending.add(host)
        if not self.placed:
            if self.event is not None:
                self.event.cancel()
                self.event = None
            for incident in self.incidents:
                incident.pending.discard(self)


def restart_elsewhere(source: Host) -> int:
    """HA: restart the guests of a down host on other hosts of its cluster, as capacity
    and anti-affinity allow. Returns how many were restarted."""
    model = source.model
    plan = plan_moves(model, list(source.guests), source)
    by_target: dict[Host, list[Guest]] = {}
    for guest, target in plan:
        source.remove_guest(guest)
        target.unreserve(guest)
        target.add_guest(guest, booting=True)
        by_target.setdefault(target, []).append(guest)
    incidents = set(source.open_incidents)
    if by_target:
        Arrival(model, by_target, incidents)
    for target in by_target:
        target.refresh()
    if not source.guests:
        for incident in incidents:
            incident.release(source, model.time)
        source.open_incidents.clear()
    source.refresh()
    return len(plan)


class Evacuation:
    """Live-migrate a host's guests away in waves of ``max_concurrent``; guests stay up
    while they move. ``on_done`` runs when every guest that could move has moved.

    The waves are computed up front (a wave takes the memory / bandwidth of its largest
    guest), so an evacuation is one event: at its end every guest moves; if it is cut
    short (the source goes down), the guests of the waves already finished move and the
    rest stay behind.
    """

    def __init__(
        self, host: Host, on_done: Callable[[], None] | None = None, retry: bool = True
    ) -> None:
        self.host = host
        self.model = host.model
        self.on_done = on_done
        self.retry = retry
        self.started = self.model.time
        lm = self.model.config.guests.live_migration
        movable = [g for g in host.guests if not g.booting]  # still booting after an HA restart
        plan = plan_moves(self.model, movable, host)
        self.waves: list[tuple[float, Plan]] = []
        elapsed = 0.0
        for i in range(0, len(plan), lm.max_concurrent):
            wave = plan[i : i + lm.max_concurrent]
            elapsed += max(g.memory_gb * 8.0 / lm.bandwidth_gbps for g, _ in wave) / 3600.0
            self.waves.append((elapsed, wave))
        for guest, _ in plan:
            guest.migrating = True
        host.evacuation = self
        host.refresh()  # it no longer accepts guests
        self.event: Timer | None = self.model.after_hours(elapsed, self.finish)

    def finish(self) -> None:
        """All waves are over; guests whose target stopped accepting meanwhile get one
        more evacuation to other targets."""
        self.event = None
        left = self._move(until=math.inf)
        if left and self.retry and self.host.is_up:
            Evacuation(self.host, self.on_done, retry=False)
        elif self.on_done is not None:
            self.on_done()

    def abort(self) -> None:
        """The source goes down now: the waves already finished have moved; the guests
        of the others stay (and go down with it)."""
        if self.event is not None:
            self.event.cancel()
            self.event = None
            self._move(until=self.model.time - self.started)

    def _move(self, until: float) -> int:
        """Move the guests of the waves finished by ``until``; return how many stayed."""
        source, moved_to, left = self.host, set(), 0
        for end, wave in self.waves:
            for guest, target in wave:
                guest.migrating = False
                target.unreserve(guest)
                if end <= until and target.accepting and allows(guest, target):
                    source.remove_guest(guest)
                    target.add_guest(guest, booting=False)
                    moved_to.add(target)
                    self.model.count_migration(source.architecture)
                else:
                    left += 1
        self.waves = []
        source.evacuation = None
        for target in moved_to:
            target.refresh()
        source.refresh()
        return left
