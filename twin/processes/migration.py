"""Moving guests between hosts: choosing a target, HA restart and live migration.

A guest can only move inside its cluster (`twin.placement.Clusters`: hosts of one pod
and one architecture, a VM does not live-migrate between ESXi and Hyper-V). A target
must be accepting guests, have the cpu and memory free, and respect the guest's
service anti-affinity (no other replica on the same host, or in the same rack).

* HA restart: some time after a host goes down (or, isolated, powers its guests off),
  its guests are restarted on other hosts as capacity allows; they are down until they
  boot there. Those that fit nowhere are tried again at each of ``ha.retries`` (vSphere
  HA: 2, 6, 14 and 30 minutes after the first attempt) while their host is down; those
  still left wait for it (``ha_restart_failures``).
* Live migration (`Evacuation`): guests stay up while they move, in waves of at
  most ``max_concurrent`` per source host; a wave takes memory / bandwidth. Each
  migration fails with ``fail_prob`` (the guest stays), and each completed one stuns
  its guest for ``stun_time``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING

from twin.accounting import guests_booted
from twin.capacity import spread_alike, spread_each
from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.agents.guest import Guest
    from twin.agents.host import Host
    from twin.engine import Timer
    from twin.fleet import Fleet

Moves = list[tuple["Host", "array[int]"]]
"""Where guests go: each target host with the guests it takes (by `Guest.index`), targets
in first-use order. Moves are carried out target by target (`Host.hand_over`), never
guest by guest."""


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


def plan_moves(model: Fleet, guests: array[int], source: Host) -> Moves:
    """Choose a target for each guest (reserving its capacity); guests that fit nowhere
    are left out. ``spread`` prefers the emptiest host, ``pack`` the first that fits."""
    return plan_departures(model, [(source, guests)])[0]


def plan_departures(model: Fleet, leaving: list[tuple[Host, array[int]]]) -> list[Moves]:
    """`plan_moves` for the guests leaving several hosts at once (an update batch drains a
    few hosts of every cluster): the same plans as one host after the other, with one
    look at each cluster's capacity."""
    if model.config.guests.placement == "pack":
        return [_plan_pack(model, guests, source) for source, guests in leaving]
    if len(leaving) == 1:
        return _plan_spread(model, leaving)
    clusters: dict[str, list[int]] = {}  # positions in ``leaving``
    for i, (source, _) in enumerate(leaving):
        clusters.setdefault(model.clusters.key(source), []).append(i)
    plans: list[Moves] = [[] for _ in leaving]
    for positions in clusters.values():
        part = [leaving[i] for i in positions]
        for i, moves in zip(positions, _plan_spread(model, part), strict=True):
            plans[i] = moves
    return plans


def _plan_pack(model: Fleet, guests: array[int], source: Host) -> Moves:
    """Pack: each guest to the first accepting host of the cluster where it fits."""
    placed: dict[Host, array[int]] = {}
    candidates = [h for h in model.clusters.of(source) if h is not source and h.accepting]
    for i in guests:
        guest = model.guests[i]
        target = next((h for h in candidates if allows(guest, h)), None)
        if target is not None:
            target.take(guest.cpu, guest.memory_gb)
            placed.setdefault(target, array("q")).append(i)
    return list(placed.items())


def _plan_spread(model: Fleet, leaving: list[tuple[Host, array[int]]]) -> list[Moves]:
    """Spread: each guest to the accepting host of the cluster with the most free cpu;
    ``leaving`` are hosts of one cluster, planned in turn.

    The search works on plain lists of the candidates' free cpu and memory, most free
    cpu first, and the reservations are written back at the end. Guests of one kind
    (same size, no service) can only land on the hosts with most room, so for them the
    candidates are the roomiest hosts, one per guest (all of them if those fall short,
    as when memory binds before cpu), and only how many go where is searched.
    """
    counts = [len(guests) for _, guests in leaving]
    total = sum(counts)
    if not total:
        return [[] for _ in leaving]
    capacity = model.capacity
    members = model.clusters.indices(leaving[0][0])
    room = capacity.room[members]  # free cpu where accepting guests, -inf elsewhere
    for source, _ in leaving:
        if source.accepting:  # never so while its guests leave (down, draining, escalating)
            room[members == source.index] = -math.inf
    order = room.argsort()[::-1]  # most free cpu first (ties in no particular order)
    alike = not any([source.has_replicas for source, _ in leaving])  # all of the one kind?
    need_cpu, need_memory = capacity.guest_kind
    taken: list[dict[int, int]] | None = None  # per host: candidate position -> guests
    if alike and total < len(room):
        ids, cpu, memory = capacity.candidates(members, room, order[:total])
        taken, short = spread_alike(cpu, memory, need_cpu, need_memory, counts)
        if short:
            taken = None
    if taken is None:
        ids, cpu, memory = capacity.candidates(members, room, order)
        if alike:
            taken, _ = spread_alike(cpu, memory, need_cpu, need_memory, counts)
    hosts = model.hosts
    plans: list[Moves] = []
    if taken is not None:  # consecutive guests to each target
        for (_, guests), chosen in zip(leaving, taken, strict=True):
            moves: Moves = []
            start = 0
            for k, n in chosen.items():
                moves.append((hosts[ids[k]], guests[start : start + n]))
                start += n
            plans.append(moves)
        used = {k for chosen in taken for k in chosen}
    else:  # guests of several sizes, or replicas: one by one
        candidates = [hosts[i] for i in ids]
        everyone = [model.guests[i] for _, leaving_ids in leaving for i in leaving_ids]
        where = iter(spread_each(cpu, memory, everyone, candidates, keeps_apart))
        used = set()
        for _, leaving_ids in leaving:
            groups: dict[int, array[int]] = {}
            for i in leaving_ids:
                k = next(where)
                if k >= 0:
                    groups.setdefault(k, array("q")).append(i)
            plans.append([(candidates[k], chunk) for k, chunk in groups.items()])
            used.update(groups)
    used_ids = [ids[k] for k in used]
    capacity.write_back(used_ids, [cpu[k] for k in used], [memory[k] for k in used])
    return plans


class Arrival:
    """Guests restarted by HA on other hosts, booting there together (one draw of
    ``boot_time``); the incidents they belong to end, for them, when they are up."""

    def __init__(self, model: Fleet, placed: dict[Host, array[int]], incidents: set) -> None:
        self.model = model
        self.placed = placed
        self.incidents = incidents
        for incident in incidents:
            incident.wait_for(self)
        for host in placed:
            host.arrivals.add(self)
        self.event: Timer | None = model.engine.schedule(
            self.done, after=model.draws.sample(model.config.guests.boot_time)
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
            self.model.accounts.book(host.architecture, guests_booted(up, host.arch.io_overhead))
        for incident in self.incidents:
            incident.release(self, self.model.engine.now)

    def cancel_on(self, host: Host) -> None:
        """``host`` went down before its guests booted: they will boot with it instead,
        and the incidents now wait for that host."""
        host.boot_arrivals(self.placed.pop(host))  # down: none of them is up
        for incident in self.incidents:
            host.open_incidents.add(incident)
            incident.wait_for(host)
        if not self.placed:
            if self.event is not None:
                self.event.cancel()
                self.event = None
            for incident in self.incidents:
                incident.stop_waiting(self)


def restart_elsewhere(source: Host, retry: bool = False) -> int:
    """HA: restart the guests of a down (or isolated and powered-off) host on other hosts
    of its cluster, as capacity and anti-affinity allow; those that fit nowhere are HA
    restart failures, waiting for their host, unless a ``retry`` places them later.
    Returns how many were restarted."""
    model = source.model
    moves = plan_moves(model, movable(source), source)
    incidents = set(source.open_incidents)
    if moves:  # first: a replica's new host reads from it that the replica boots
        Arrival(model, dict(moves), incidents)
    source.hand_over(moves, booting=True)
    restarted = sum([len(guests) for _, guests in moves])
    if retry and restarted:
        model.accounts.placed_on_retry(source.index, restarted)
    if source.guest_ids:
        if not retry:
            model.accounts.strand(source.index, source.architecture, len(source.guest_ids))
    else:
        for incident in incidents:
            incident.release(source, model.engine.now)
        source.open_incidents.clear()
    return restarted


def movable(host: Host) -> array[int]:
    """The guests that can live-migrate away: all but those not up yet (booting after an
    HA restart, or their own process restarting): they stay."""
    if not host.booting_guests:
        return host.guest_ids
    booting = {i for arrival in host.arrivals for i in arrival.placed[host]} | host.restarts.keys()
    return array("q", [i for i in host.guest_ids if i not in booting])


class Evacuation:
    """Live-migrate a host's guests away in waves of ``max_concurrent``; guests stay up
    while they move. ``on_done`` runs when every guest that could move has moved.

    The waves are computed up front (a wave takes the memory / bandwidth of its largest
    guest), so an evacuation is one event: at its end every guest moves; if it is cut
    short (the source goes down), the guests of the waves already finished move and the
    rest stay behind.
    """

    def __init__(
        self,
        host: Host,
        on_done: Callable[[], None] | None = None,
        retry: bool = True,
        moves: Moves | None = None,
    ) -> None:
        self.host = host
        self.model = model = host.model
        self.on_done = on_done
        self.retry = retry
        self.started = model.engine.now
        lm = model.config.guests.live_migration
        self.moves = plan_moves(model, movable(host), host) if moves is None else moves
        self.count = sum([len(ids) for _, ids in self.moves])
        self.step = step = lm.max_concurrent
        hours_per_gb = 8.0 / lm.bandwidth_gbps / 3600.0
        if host.has_replicas:
            memory = [model.guests[i].memory_gb for i in self.guest_ids]
            waves = [max(memory[i : i + step]) for i in range(0, self.count, step)]
        else:  # every wave takes as long
            waves = [model.capacity.guest_kind[1]] * -(-self.count // step)
        self.ends = list(itertools.accumulate([size * hours_per_gb for size in waves]))
        if model.log.enabled:
            model.log.guests(self.guest_ids, "up", "migrating", Cause.MIGRATION)
        host.evacuation = self
        host.refresh()  # it no longer accepts guests
        self.event: Timer | None = model.engine.schedule(
            self.finish, after=self.ends[-1] if waves else 0.0
        )

    @property
    def guest_ids(self) -> list[int]:
        """The guests on their way out, by index."""
        return [i for _, ids in self.moves for i in ids]

    def finish(self) -> None:
        """All waves are over; guests whose target stopped accepting meanwhile get one
        more evacuation to other targets."""
        self.event = None
        left = self._move(len(self.ends))
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
            self._move(bisect.bisect_right(self.ends, self.model.engine.now - self.started))

    def _move(self, waves: int) -> int:
        """Move the guests of the first ``waves`` waves to targets that still accept
        them; return how many stayed."""
        source, model = self.host, self.model
        if waves == len(self.ends):
            due, stay = self.moves, []
        else:
            due, stay = _split(self.moves, waves * self.step)
        if source.has_replicas or not all([t.accepting for t, _ in due]):
            moves: Moves = []
            for target, ids in due:
                if not target.accepting:
                    stay.append((target, ids))
                    continue
                apart = array("q", [i for i in ids if keeps_apart(model.guests[i], target)])
                if len(apart) < len(ids):
                    stay.append((target, array("q", [i for i in ids if i not in apart])))
                if apart:
                    moves.append((target, apart))
        else:
            moves = due
        if model.config.guests.live_migration.fail_prob > 0:
            moves = _fail_some(model, moves, stay)
        for target, ids in stay:
            for i in ids:
                guest = model.guests[i]
                target.take(-guest.cpu, -guest.memory_gb)
        self.moves = []
        source.evacuation = None
        source.hand_over(moves, booting=False)
        moved = self.count - sum([len(ids) for _, ids in stay])
        model.accounts.count_migration(source.architecture, moved)
        _stun(model, moves)
        if model.log.enabled:
            model.log.guests(
                [i for _, ids in moves for i in ids], "migrating", "up", Cause.MIGRATION
            )
        source.refresh()
        return self.count - moved


def _fail_some(model: Fleet, moves: Moves, stay: Moves) -> Moves:
    """Each migration fails with ``fail_prob``: its guest stays on the source (added to
    ``stay``, whose reservations are given back); the moves that completed."""
    chance, p = model.draws.chance, model.config.guests.live_migration.fail_prob
    done: Moves = []
    for target, ids in moves:
        failed = [chance(p) for _ in ids]
        if any(failed):
            stay.append((target, array("q", [i for i, f in zip(ids, failed, strict=True) if f])))
            ids = array("q", [i for i, f in zip(ids, failed, strict=True) if not f])
        if ids:
            done.append((target, ids))
    return done


def _stun(model: Fleet, moves: Moves) -> None:
    """Each block of completed migrations stuns its guests for one draw of ``stun_time``
    (cause ``migration``): booked as a dip of the target's levels, and as each guest's own
    downtime."""
    stun = model.config.guests.live_migration.stun_time
    if stun.never:
        return
    for target, ids in moves:
        hours = model.draws.sample(stun)
        if hours > 0:
            model.accounts.stun(target.architecture, len(ids), hours, target.arch.io_overhead)
            model.accounts.guest_time.add_downtime(ids, hours)


def _split(moves: Moves, count: int) -> tuple[Moves, Moves]:
    """The first ``count`` guests of ``moves``, and the rest."""
    head: Moves = []
    for i, (target, ids) in enumerate(moves):
        if count < len(ids):
            if count:
                head.append((target, ids[:count]))
            return head, [(target, ids[count:]), *moves[i + 1 :]]
        head.append((target, ids))
        count -= len(ids)
    return head, []
