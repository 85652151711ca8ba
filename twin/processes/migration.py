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
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from twin.metrics import NOTHING, guests_arriving

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

    The search works on plain lists of the candidates' free cpu and memory, most free
    cpu first, and the reservations are written back at the end. Guests of one kind
    (same size, no service) can only land on the hosts with most room, so for them the
    candidates are the ``len(guests)`` roomiest hosts first (all of them if those fall
    short, as when memory binds before cpu).
    """
    if not guests:
        return []
    members = model.cluster_indices(source)
    room = model.room[members]  # free cpu where accepting guests, -inf elsewhere
    if source.accepting:  # never so while its guests leave (it is down, draining, escalating)
        room[members == source.index] = -math.inf
    kind = None if source.has_replicas else model.guest_kind  # all guests of one kind?
    n, count = len(room), len(guests)
    where: list[int] | None = None
    if kind is not None and count < n:
        top = room.argpartition(n - count)[n - count :]
        ids, cpu, memory = _candidates(model, members, room, top[room[top].argsort()[::-1]])
        where = _spread_alike(cpu, memory, *kind, count)
        if len(where) < count:
            where = None
    if where is None:
        order = (-room).argsort(kind="stable")
        ids, cpu, memory = _candidates(model, members, room, order)
        if kind is not None:
            where = _spread_alike(cpu, memory, *kind, count)
        else:
            where = _spread_each(cpu, memory, guests, [model.hosts[i] for i in ids])
    taken = list({k for k in where if k >= 0})
    if taken:
        targets = np.array([ids[k] for k in taken])
        model.free_cpu[targets] = model.room[targets] = np.array([cpu[k] for k in taken])
        model.free_memory[targets] = np.array([memory[k] for k in taken])
    hosts = model.hosts
    return [(g, hosts[ids[k]]) for g, k in zip(guests, where, strict=False) if k >= 0]


def _candidates(
    model: Fleet, members: np.ndarray, room: np.ndarray, order: np.ndarray
) -> tuple[list[int], list[float], list[float]]:
    """Host indices, free cpu and free memory of ``members[order]``, as plain lists."""
    chosen = members[order]
    return chosen.tolist(), room[order].tolist(), model.free_memory[chosen].tolist()


def _spread_alike(
    cpu: list[float], memory: list[float], need_cpu: float, need_memory: float, count: int
) -> list[int]:
    """Candidates (by position, sorted by free cpu, most first) for ``count`` identical
    guests, each to the one with most free cpu now, taking their capacity.

    For identical guests the hosts used come back, with less room, in the order they
    were used, so the heap of `_spread_each` is a queue here: a merge of two sorted runs.
    """
    chosen: list[int] = []
    used: deque[int] = deque()
    pulled, n = 0, len(cpu)
    while len(chosen) < count:
        if used and (pulled >= n or cpu[used[0]] >= cpu[pulled]):
            k = used.popleft()
        elif pulled < n:
            k, pulled = pulled, pulled + 1
        else:
            break
        if cpu[k] < need_cpu:
            break  # the host with most free cpu has too little: so have all the others
        if memory[k] >= need_memory:
            cpu[k] -= need_cpu
            memory[k] -= need_memory
            chosen.append(k)
            used.append(k)
    return chosen


def _spread_each(
    cpu: list[float], memory: list[float], guests: Sequence[Guest], hosts: list[Host]
) -> list[int]:
    """Like `_spread_alike` for guests of any size or service (position -1: no room).

    Candidates are pulled into a heap only when they have more free cpu than its top, so
    about one host per guest is ever pulled."""
    where: list[int] = []
    heap: list[tuple[float, int]] = []  # (-free cpu, position)
    pulled, n = 0, len(cpu)
    for guest in guests:
        skipped, k = [], -1
        while True:
            while pulled < n and (not heap or cpu[pulled] > -heap[0][0]):
                heapq.heappush(heap, (-cpu[pulled], pulled))
                pulled += 1
            if not heap:
                k = -1
                break
            entry = heapq.heappop(heap)
            k = entry[1]
            if (cpu[k] >= guest.cpu and memory[k] >= guest.memory_gb
                    and keeps_apart(guest, hosts[k])):  # fmt: skip
                cpu[k] -= guest.cpu
                memory[k] -= guest.memory_gb
                heapq.heappush(heap, (-cpu[k], k))
                break
            skipped.append(entry)
        where.append(k)
        for entry in skipped:
            heapq.heappush(heap, entry)
    return where


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
        up, host = 0, None
        for host, guests in self.placed.items():
            host.arrivals.discard(self)
            up += host.boot_arrivals(guests)
        if up and host is not None:
            added = guests_arriving(0, up, host.arch.io_overhead)
            self.model.book(host.architecture, NOTHING, added)
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
        movable = host.guests
        if host.booting_guests:  # guests still booting after an HA restart stay
            movable = [g for g in movable if not g.booting]
        plan = plan_moves(self.model, movable, host)
        self.waves: list[tuple[float, Plan]] = []
        hours_per_gb = 8.0 / lm.bandwidth_gbps / 3600.0
        step = lm.max_concurrent
        alike = not host.has_replicas  # every wave takes as long
        memory = [self.model.guest_kind[1]] * len(plan) if alike else [g.memory_gb for g, _ in plan]
        elapsed = 0.0
        for i in range(0, len(plan), step):
            elapsed += max(memory[i : i + step]) * hours_per_gb
            self.waves.append((elapsed, plan[i : i + step]))
        self.moving = {guest for guest, _ in plan}
        if self.model.record_events:
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
        """Move the guests of the waves finished by ``until`` to targets that still accept
        them; return how many stayed."""
        source, model = self.host, self.model
        due = [pair for end, wave in self.waves if end <= until for pair in wave]
        stay = [pair for end, wave in self.waves if end > until for pair in wave]
        targets = {target for _, target in due}
        if source.has_replicas or not all(model.accepting[t.index] for t in targets):
            moves = []
            for guest, target in due:
                if model.accepting[target.index] and keeps_apart(guest, target):
                    moves.append((guest, target))
                else:
                    stay.append((guest, target))
        else:
            moves = due
        for guest, target in stay:
            target.unreserve(guest)
        self.waves = []
        self.moving = set()
        source.evacuation = None
        source.hand_over(moves, booting=False)
        model.count_migration(source.architecture, len(moves))
        if model.record_events:
            model.log_guests([g for g, _ in moves], "migrating", "up", "migration")
        source.refresh()
        return len(stay)
