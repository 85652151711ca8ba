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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from twin.metrics import NOTHING

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
    return keeps_apart(guest, target)


def keeps_apart(guest: Guest, target: Host) -> bool:
    """Whether ``target`` keeps ``guest`` apart from the other replicas of its service."""
    service = guest.service
    if service is None or service.anti_affinity == "none":
        return True
    return not service.conflicts(guest, target)


def plan_moves(model: Fleet, guests: Sequence[Guest], source: Host) -> Plan:
    """Choose a target for each guest (reserving its capacity); guests that fit nowhere
    are left out. ``spread`` prefers the emptiest host, ``pack`` the first that fits."""
    if model.config.guests.placement == "pack":
        plan: Plan = []
        candidates = [h for h in model.cluster_of(source) if h is not source and h.accepting]
        for guest in guests:
            target = next((h for h in candidates if allows(guest, h)), None)
            if target is not None:
                target.reserve(guest)
                plan.append((guest, target))
        return plan
    return _plan_spread(model, guests, source)


def _plan_spread(model: Fleet, guests: Sequence[Guest], source: Host) -> Plan:
    """Spread: each guest to the accepting host of the cluster with the most free cpu.

    The candidates are sorted once (numpy) and pulled into a heap only when they have
    more free cpu than the heap's top, so about one host per guest is ever pulled; the
    search works on plain lists and the reservations are written back at the end.
    """
    members = model.cluster_indices(source)
    members = members[model.accepting[members] & (members != source.index)]
    order = members[np.argsort(-model.free_cpu[members], kind="stable")]
    ids = order.tolist()
    cpu = model.free_cpu[order].tolist()
    memory = model.free_memory[order].tolist()
    hosts, plan, chosen = model.hosts, [], set()
    heap: list[tuple[float, int]] = []  # (-free cpu, position in the sorted candidates)
    pulled, n = 0, len(ids)
    for guest in guests:
        need_cpu, need_memory, skipped = guest.cpu, guest.memory_gb, []
        while True:
            while pulled < n and (not heap or cpu[pulled] > -heap[0][0]):
                heapq.heappush(heap, (-cpu[pulled], pulled))
                pulled += 1
            if not heap:
                break
            entry = heapq.heappop(heap)
            k = entry[1]
            if (cpu[k] >= need_cpu and memory[k] >= need_memory
                    and (guest.service is None or keeps_apart(guest, hosts[ids[k]]))):  # fmt: skip
                cpu[k] -= need_cpu
                memory[k] -= need_memory
                chosen.add(k)
                plan.append((guest, hosts[ids[k]]))
                heapq.heappush(heap, (-cpu[k], k))
                break
            skipped.append(entry)
        for entry in skipped:
            heapq.heappush(heap, entry)
    if chosen:
        taken = list(chosen)
        where = [ids[k] for k in taken]
        model.free_cpu[where] = [cpu[k] for k in taken]
        model.free_memory[where] = [memory[k] for k in taken]
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
        """The guests have booted: those on hosts serving now are up (booked as one block:
        the hosts share an architecture)."""
        self.event = None
        up, architecture = 0, None
        for host, guests in self.placed.items():
            host.arrivals.discard(self)
            up += host.boot_arrivals(guests)
            architecture = host.architecture
        if up:
            self.model.book(architecture, NOTHING, arrived(self.model, architecture, 0, up))
        for incident in self.incidents:
            incident.release(self, self.model.time)

    def cancel_on(self, host: Host) -> None:
        """``host`` went down before its guests booted: they will boot with it instead,
        and the incidents now wait for that host."""
        host.boot_arrivals(self.placed.pop(host))  # down: none of them is up
        for incident in self.incidents:
            host.open_incidents.add(incident)
            incident.pending.add(host)
        if not self.placed:
            if self.event is not None:
                self.event.cancel()
                self.event = None
            for incident in self.incidents:
                incident.pending.discard(self)


def arrived(model: Fleet, architecture: str, guests: int, up: int) -> tuple:
    """The levels a block of guests adds to serving hosts of one architecture."""
    io = model.config.architectures.get(architecture).io_overhead
    return (0, guests, 0, 0, up, up * (1.0 - io), 0)


def restart_elsewhere(source: Host) -> int:
    """HA: restart the guests of a down host on other hosts of its cluster, as capacity
    and anti-affinity allow. Returns how many were restarted."""
    model = source.model
    plan = plan_moves(model, list(source.guests), source)
    placed = source.hand_over(plan, booting=True)
    incidents = set(source.open_incidents)
    if placed:
        Arrival(model, placed, incidents)
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
        self.model.log_guests([g for g, _ in plan], "up", "migrating", "migration")
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
        source, moves, left = self.host, [], 0
        for end, wave in self.waves:
            for guest, target in wave:
                guest.migrating = False
                if end <= until and target.accepting and keeps_apart(guest, target):
                    moves.append((guest, target))
                else:
                    target.unreserve(guest)
                    left += 1
        self.waves = []
        source.evacuation = None
        source.hand_over(moves, booting=False)
        self.model.count_migration(source.architecture, len(moves))
        self.model.log_guests([g for g, _ in moves], "migrating", "up", "migration")
        source.refresh()
        return left
