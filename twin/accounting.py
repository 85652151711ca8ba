"""Exact interval accounting: the fleet's levels, each host's share of them, incidents.

Every quantity the twin reports is piecewise constant between events, so it is
integrated exactly: a `Level` holds the current value and the integral so far, and is
advanced only when the value changes (never sampled). A host's share of its
architecture's levels is `contribution` of its status and guest counts; `HostShare`
books the change whenever either moves, so accounting is exact by construction.

The fast path is `book`: a change as (level, delta) pairs, computed once per distinct
status change or block size (cached) and applied with two multiply-adds a level.
`tests/test_accounting.py` checks it against `Level.add` one change at a time, and the
cached changes against the difference of two `contribution` calls.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.agents.host import Host
    from twin.engine import Engine

LEVELS = (  # what each host contributes to the fleet's levels, booked in the `Ledger`
    "hosts",
    "guests",
    "hosts_up",
    "hosts_degraded",
    "guests_up",
    "capacity",
    "guests_down_planned",
)
GUESTS_UP = LEVELS.index("guests_up")
CAPACITY = LEVELS.index("capacity")
NOTHING = (0,) * len(LEVELS)
SERVING = 2  # in a host's status: (running, degraded, serving, outage planned)


def contribution(status: tuple | None, guests: int, booting: int, io_overhead: float) -> tuple:
    """What a host of this status, with this many guests (of which ``booting`` still
    boot), adds to the fleet's levels, in `LEVELS` order."""
    if status is None:
        return NOTHING
    running, degraded, serving, planned = status  # see SERVING
    up = guests - booting if serving else 0
    return (1, guests, running, degraded, up, up * (1.0 - io_overhead),
            guests - up if planned else 0)  # fmt: skip


@functools.cache  # a handful of block sizes, booked at every move
def guests_arriving(guests: int, up: int, io_overhead: float) -> tuple:
    """What a block of guests (``up`` of them up) adds to serving hosts: their part of
    such a host's `contribution`, without the host itself."""
    serving = (False, False, True, False)
    return (0, *contribution(serving, guests, guests - up, io_overhead)[1:])


Change = tuple[tuple[int, float], ...]
"""A change of the fleet's levels: (position in `LEVELS`, delta) for each level it moves."""


def change_between(before: tuple, after: tuple) -> Change:
    """The change from one set of levels (in `LEVELS` order) to another."""
    pairs = enumerate(zip(before, after, strict=True))
    return tuple([(i, new - old) for i, (old, new) in pairs if new != old])


@functools.cache  # a handful of statuses and guest counts, at every status change
def status_change(
    before: tuple | None, after: tuple | None, guests: int, booting: int, io_overhead: float
) -> Change:
    """How a host's contribution changes when its status does (its guests stay)."""
    return change_between(
        contribution(before, guests, booting, io_overhead),
        contribution(after, guests, booting, io_overhead),
    )


@functools.cache  # a handful of statuses and block sizes, at every move
def block_moved(status: tuple | None, guests: int, up: int, io_overhead: float) -> Change:
    """How the levels of an architecture change when a block of its ``guests`` leaves a
    host of this status for serving hosts, ``up`` of them up there (nothing, as when
    guests live-migrate between serving hosts, or restart on others from a host that
    is down)."""
    left = contribution(status, guests, 0, io_overhead)
    stayed = contribution(status, 0, 0, io_overhead)
    arrived = guests_arriving(guests, up, io_overhead)
    after = [a - (b - c) for a, b, c in zip(arrived, left, stayed, strict=True)]
    return change_between(NOTHING, after)


@functools.cache  # a handful of block sizes
def guests_booted(up: int, io_overhead: float) -> Change:
    """How the levels change when ``up`` guests restarted by HA boot on serving hosts."""
    return change_between(NOTHING, guests_arriving(0, up, io_overhead))


class Level:
    """A piecewise-constant quantity and its exact time integral.

    With changes ``d_i`` at times ``t_i`` from zero, the integral up to ``T`` is
    ``value(T) * T - sum(d_i * t_i)``, so a change costs two multiply-adds and the
    integral is read only when asked for."""

    __slots__ = ("moment", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.moment = 0.0  # sum of each change times its time

    def add(self, delta: float, now: float) -> None:
        self.value += delta
        self.moment += delta * now

    def integral_until(self, now: float) -> float:
        return self.value * now - self.moment


class Ledger:
    """Named levels keyed by (quantity, architecture); created on first use.

    The fleet-wide total of a quantity (architecture ``*``) is the sum over
    architectures, read on demand: integrals are linear, so it need not be kept."""

    def __init__(self) -> None:
        self._levels: dict[tuple[str, str], Level] = defaultdict(Level)

    def add(self, quantity: str, arch: str, delta: float, now: float) -> None:
        """Change a quantity of one architecture."""
        if delta:
            self._levels[(quantity, arch)].add(delta, now)

    def level(self, quantity: str, arch: str) -> Level:
        """The level itself, to change it often without looking it up each time."""
        return self._levels[(quantity, arch)]

    def items(self) -> Iterable[tuple[tuple[str, str], Level]]:
        """Every level with its (quantity, architecture), in the order they were made."""
        return self._levels.items()

    def _chosen(self, quantity: str, arch: str) -> list[Level]:
        return [level for (q, a), level in self._levels.items()
                if q == quantity and (arch == "*" or a == arch)]  # fmt: skip

    def value(self, quantity: str, arch: str) -> float:
        return float(sum(level.value for level in self._chosen(quantity, arch)))

    def integral(self, quantity: str, arch: str, now: float) -> float:
        return float(sum(level.integral_until(now) for level in self._chosen(quantity, arch)))


@dataclass(eq=False, slots=True)
class Incident:
    """An event that made guests unavailable or took hosts down.

    ``guests_lost`` counts, per architecture, the guests that were up and became
    unavailable (``blast_radius``: in all), and ``hosts_down`` the hosts it took down;
    the incident ends when every host it touched serves its guests again (``pending``
    empty).
    """

    cause: str
    start: float
    guests_lost: dict[str, int] = field(default_factory=dict)
    hosts_down: int = 0
    blast_radius: int = 0
    pending: set[Any] | None = None  # the hosts and HA arrivals its lost guests wait on
    hosts_pending: set[Host] | None = None  # hosts it took down without guests
    end: float | None = None
    recorded: bool = False

    def touch(self, host: Host, guests_lost: int, host_went_down: bool) -> None:
        """Record what this incident did to one host.

        It waits for the guests it took down; a host that went down without guests
        holds it open only when it took down no guest at all (then it ends when the
        hosts are back).
        """
        if guests_lost <= 0 and not host_went_down:
            return
        arch = host.architecture
        lost = max(guests_lost, 0)
        self.guests_lost[arch] = self.guests_lost.get(arch, 0) + lost
        self.blast_radius += lost
        if host_went_down:
            self.hosts_down += 1
        if guests_lost > 0:
            self.wait_for(host)
        elif self.hosts_pending is None:
            self.hosts_pending = {host}
        else:
            self.hosts_pending.add(host)
        host.open_incidents.add(self)

    def lose(self, architecture: str, guests: int, waiting: object) -> None:
        """It took down ``guests`` guests of one architecture, back when ``waiting`` is."""
        self.guests_lost[architecture] = self.guests_lost.get(architecture, 0) + guests
        self.blast_radius += guests
        self.wait_for(waiting)

    def release(self, waiting: object, now: float) -> None:
        """A touched host (or a group of guests restarted elsewhere) is back."""
        pending, hosts_pending = self.pending, self.hosts_pending
        if pending:
            pending.discard(waiting)
        if hosts_pending:
            hosts_pending.discard(waiting)
        hosts_back = self.blast_radius > 0 or not hosts_pending
        if self.end is None and not pending and hosts_back:
            self.end = now
            # a year holds some 170,000 incidents at 10,000 hosts: an ended one lets go of
            # its sets (`wait_for` makes a new one should anything wait on it again)
            self.pending = self.hosts_pending = None

    def wait_for(self, waiting: object) -> None:
        """A host it touched, or an HA arrival of the guests it took down, holds it open
        until released."""
        if self.pending is None:
            self.pending = {waiting}
        else:
            self.pending.add(waiting)

    def stop_waiting(self, waiting: object) -> None:
        if self.pending is not None:
            self.pending.discard(waiting)

    @property
    def effective(self) -> bool:
        return bool(self.guests_lost)  # every architecture it touched, even with none lost


@dataclass
class Ticket:
    """A unit of operator work, waiting in the queue or being worked."""

    kind: str
    priority: int
    opened: float
    arch: str | None
    taken: float | None = None
    closed: float | None = None


def book(levels: list[Level], change: Change, now: float) -> None:
    """Apply a change to an architecture's levels (in `LEVELS` order) at ``now``: what
    `Level.add` does for each (level, delta) pair, inlined (booked at every event)."""
    for i, delta in change:
        level = levels[i]
        level.value += delta
        level.moment += delta * now


def _unserving(status: tuple | None) -> int:
    """1 when a host of this status holds its guests down (counted, and not serving)."""
    return int(status is not None and not status[SERVING])


class HostShare:
    """One host's share of its architecture's levels.

    It keeps the host's *status* (running, degraded, serving, outage planned: what the
    levels depend on besides guest counts) and books every change of status or of guest
    counts as it happens.
    """

    __slots__ = ("architecture", "engine", "io_overhead", "levels", "serving", "status",
                 "unserved")  # fmt: skip

    def __init__(
        self, accounts: Accounts, architecture: str, io_overhead: float, host: int = -1
    ) -> None:
        self.engine = accounts.engine
        self.architecture = architecture
        self.io_overhead = io_overhead
        self.levels = accounts.levels_of(architecture)
        self.status: tuple | None = None  # not counted yet
        self.serving = False  # its guests count as up (the status says so)
        # 1 while the host does not serve its guests: its guests' downtime clock (the
        # host's own, kept across a change of architecture; `GuestTime`)
        self.unserved = accounts.guest_time.unserved(host)

    def contribution(self, guests: int, booting: int, status: tuple | None = None) -> tuple:
        """What the host adds to the levels with these guest counts (and its status, or
        ``status``)."""
        return contribution(self.status if status is None else status, guests, booting,
                            self.io_overhead)  # fmt: skip

    def set_status(self, status: tuple, guests: int, booting: int) -> bool:
        """The host's status is now ``status``: book the change (False: none)."""
        if status == self.status:
            return False
        before = self.status
        now = self.engine.now
        serving = status[SERVING]
        if before is None or before[SERVING] != serving:  # `_unserving` steps, inlined
            step = _unserving(status) - _unserving(before)
            if step:
                self.unserved.add(step, now)
        self.status = status
        self.serving = serving
        change = status_change(before, status, guests, booting, self.io_overhead)
        if change:
            book(self.levels, change, now)
        return True

    def guests_changed(self, before: tuple[int, int], after: tuple[int, int]) -> None:
        """Its (guests, booting) counts went from ``before`` to ``after``."""
        if self.status is not None:
            change = change_between(self.contribution(*before), self.contribution(*after))
            book(self.levels, change, self.engine.now)

    def block_left(self, guests: int, up: int) -> None:
        """A block of ``guests`` left for serving hosts of the same architecture, ``up``
        of them up there (`block_moved`)."""
        change = block_moved(self.status, guests, up, self.io_overhead)
        if change:
            book(self.levels, change, self.engine.now)

    def withdraw(self, guests: int, booting: int) -> None:
        """Take the host out of the levels (before it changes architecture)."""
        change = change_between(self.contribution(guests, booting), NOTHING)
        now = self.engine.now
        book(self.levels, change, now)
        if _unserving(self.status):
            self.unserved.add(-1, now)
        self.status = None
        self.serving = False


class Accounts:
    """The fleet's books: its levels by architecture, its incidents and migrations."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ledger = Ledger()
        self.incidents: list[Incident] = []
        self.migrations: dict[str, int] = {}
        self.stunned: dict[str, float] = {}  # guest-hours of live-migration stun
        self.ha_failures: dict[str, int] = {}  # guests HA could not place, by architecture
        self.ha_retried: dict[str, int] = {}  # guests it placed only on a retry
        self.ha_waited: dict[str, float] = {}  # guest-hours they waited, once back
        self.stranded: dict[int, tuple[str, int, float]] = {}  # host -> (arch, guests, since)
        self.guest_time = GuestTime(engine)
        self._levels: dict[str, list[Level]] = {}  # per architecture, in LEVELS order

    def levels_of(self, architecture: str) -> list[Level]:
        levels = self._levels.get(architecture)
        if levels is None:
            levels = [self.ledger.level(quantity, architecture) for quantity in LEVELS]
            self._levels[architecture] = levels
        return levels

    def book(self, architecture: str, change: Change) -> None:
        """Change one architecture's levels now."""
        book(self.levels_of(architecture), change, self.engine.now)

    def open_incident(self, cause: Cause) -> Incident:
        return Incident(cause=cause, start=self.engine.now)

    def commit_incident(self, incident: Incident) -> None:
        """Keep an incident once it has had an effect (and only once)."""
        if incident.effective and not incident.recorded:
            incident.recorded = True
            self.incidents.append(incident)

    def count_migration(self, architecture: str, guests: int = 1) -> None:
        _count(self.migrations, architecture, guests)

    def stun(self, architecture: str, guests: int, hours: float, io_overhead: float) -> None:
        """``guests`` guests just live-migrated are stunned (down) for ``hours``: a dip of
        ``guests_up`` and ``capacity`` from now to ``now + hours``, booked at once as its
        exact integral (a level's integral is value x now - moment, so a dip of d for h
        adds d x h to the moment). Read mid-stun, the integral is ahead by under a stun."""
        levels = self.levels_of(architecture)
        levels[GUESTS_UP].moment += guests * hours
        levels[CAPACITY].moment += guests * (1.0 - io_overhead) * hours
        _count(self.stunned, architecture, guests * hours)

    def strand(self, host: int, architecture: str, guests: int) -> None:
        """HA could not place ``guests`` guests of host ``host``: they wait for it."""
        _count(self.ha_failures, architecture, guests)
        _, before, since = self.stranded.get(host, (architecture, 0, self.engine.now))
        self.stranded[host] = (architecture, before + guests, since)

    def placed_on_retry(self, host: int, guests: int) -> None:
        """A retry of HA placed ``guests`` of the guests it had left on host ``host``: they
        are no failures after all (the failures' wait counts from HA's first attempt)."""
        architecture, stranded, since = self.stranded.pop(host)
        _count(self.ha_failures, architecture, -guests)
        _count(self.ha_retried, architecture, guests)
        if stranded > guests:
            self.stranded[host] = (architecture, stranded - guests, since)

    def unstrand(self, host: int) -> None:
        """The guests HA left on host ``host`` are back (or left it): their wait is over."""
        architecture, guests, since = self.stranded.pop(host)
        _count(self.ha_waited, architecture, guests * (self.engine.now - since))

    def ha_wait_hours(self, scope: str, now: float) -> float:
        """Mean hours a guest HA could not place waited (those still waiting: until now)."""
        failed = self.ha_failures.get(scope, 0)
        still = [
            n * (now - since) for arch, n, since in self.stranded.values() if scope in ("*", arch)
        ]
        waited = self.ha_waited.get(scope, 0.0) + sum(still)
        return waited / failed if failed else 0.0


def _count(counts: dict[str, Any], architecture: str, amount: float) -> None:
    """Add ``amount`` to one architecture's count and to the fleet's (``*``)."""
    counts[architecture] = counts.get(architecture, 0) + amount
    counts["*"] = counts.get("*", 0) + amount


class GuestTime:
    """Each guest's own downtime and presence, exact, by architecture.

    A guest is down while its host does not serve (a crash, a reboot, its guests booting,
    the host unreachable) and while it is itself not up on a serving host (booting after
    an HA restart, its own process restarting). Host-level incidents stay O(1): each host
    keeps a `Level` of "not serving" (``unserved``, booked by its `HostShare`), whose
    integral ``D_h(t)`` is its guests' downtime clock. A guest records ``D_h`` when it
    arrives (``mark``) and settles ``D_h(now) - mark`` when it leaves, block by block;
    while it boots alone it is down at rate 1 from ``booting_since`` instead. Its downtime
    so far is what it settled plus its open part, read on demand (`downtime`).

    The fast path: blocks are a handful of guests, so the per-guest books are plain lists
    walked in Python (numpy's per-call cost is larger than such a block's work), turned
    into arrays only when read. `tests/test_slo.py` checks them against a plain reference
    that reads every guest's state before every event.

    Rows are architectures (`twin.architectures.ARCHITECTURES` order): a guest changes
    architecture only when its host is converted (`convert`), which moves what it has so
    far into ``earlier`` under its old row. `add_downtime` is the hook for a per-guest
    downtime that is not an interval of its host's (a live migration's stun).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._unserved: list[Level] = []  # per host, by `Host.index`
        self.rows = 0
        self.settled: list[float] = []  # downtime hours settled, all architectures
        self.mark: list[float] = []  # its host's clock D_h when it arrived (or last settled)
        self.booting_since: list[float] = []  # when it began booting alone (nan: it does not)
        self.row = np.zeros(0, dtype=np.intp)  # each guest's architecture now
        self.since = np.zeros(0)  # when each guest joined its architecture
        self.earlier = np.zeros((0, 0))  # downtime in architectures it left, [row, guest]
        self.present = np.zeros((0, 0))  # presence in architectures it left, [row, guest]

    def unserved(self, host: int) -> Level:
        """Host ``host``'s "not serving" level (its guests' downtime clock; a level of its
        own for a share of no host, ``host < 0``)."""
        if host < 0:
            return Level()
        while len(self._unserved) <= host:
            self._unserved.append(Level())
        return self._unserved[host]

    def clock(self, host: int) -> float:
        """``D_h(now)``: how long host ``host`` has held its guests down so far."""
        return self._unserved[host].integral_until(self.engine.now)

    def allocate(self, rows: int, architecture_rows: np.ndarray) -> None:
        """Start each guest's books (the fleet is built; guests start on their hosts)."""
        n = len(architecture_rows)
        self.rows = rows
        self.settled = [0.0] * n
        self.mark = [0.0] * n
        self.booting_since = [math.nan] * n
        self.row = np.asarray(architecture_rows, dtype=np.intp)
        self.since = np.full(n, self.engine.now)
        self.earlier = np.zeros((rows, n))
        self.present = np.zeros((rows, n))

    def arrive(self, host: int, ids: Iterable[int], booting: bool = False) -> None:
        """Guests ``ids`` (indices) arrive on host ``host``; ``booting``: they boot alone."""
        if not self.rows:
            return
        if booting:
            now, since = self.engine.now, self.booting_since
            for i in ids:
                since[i] = now
        else:
            clock, mark = self.clock(host), self.mark
            for i in ids:
                mark[i] = clock

    def leave(self, host: int, ids: Iterable[int]) -> None:
        """Guests ``ids`` leave host ``host`` (up, or down with it): settle their part."""
        if not self.rows:
            return
        clock, mark, settled = self.clock(host), self.mark, self.settled
        for i in ids:
            settled[i] += clock - mark[i]

    def move(self, source: int, moves: Iterable[tuple[Host, Iterable[int]]], booting: bool) -> None:
        """`leave` host ``source`` and `arrive` on each target of ``moves`` (a planned move,
        `Tenancy.hand_over`), in one pass: ``booting``, the guests boot alone there."""
        if not self.rows:
            return
        now, unserved = self.engine.now, self._unserved
        left = unserved[source].integral_until(now)
        settled, mark, since = self.settled, self.mark, self.booting_since
        for target, ids in moves:
            if booting:
                for i in ids:
                    settled[i] += left - mark[i]
                    since[i] = now
            else:
                clock = unserved[target.index].integral_until(now)
                for i in ids:
                    settled[i] += left - mark[i]
                    mark[i] = clock

    def start_booting(self, host: int, ids: Iterable[int]) -> None:
        """Guests ``ids`` on host ``host`` are down alone until `stop_booting`."""
        if self.rows:
            self.leave(host, ids)
            self.arrive(host, ids, booting=True)

    def stop_booting(self, host: int, ids: Iterable[int]) -> None:
        """Guests ``ids`` no longer boot alone: from now on they follow host ``host``."""
        if not self.rows:
            return
        now, clock = self.engine.now, self.clock(host)
        settled, since, mark = self.settled, self.booting_since, self.mark
        for i in ids:
            settled[i] += now - since[i]
            since[i] = math.nan
            mark[i] = clock

    def add_downtime(self, ids: Iterable[int], hours: float) -> None:
        """Guests ``ids`` were down ``hours`` more, alone (e.g. a live migration's stun)."""
        if self.rows:
            settled = self.settled
            for i in ids:
                settled[i] += hours

    def convert(self, host: int, ids: Iterable[int], row: int) -> None:
        """Host ``host`` (holding ``ids``, none booting alone) takes architecture ``row``."""
        if not self.rows:
            return
        ids = np.array(list(ids), dtype=np.intp)
        self.leave(host, ids.tolist())
        old = self.row[ids]
        so_far = np.array([self.settled[i] for i in ids.tolist()])
        self.earlier[old, ids] += so_far - self.earlier[:, ids].sum(axis=0)
        self.present[old, ids] += self.engine.now - self.since[ids]
        self.row[ids] = row
        self.since[ids] = self.engine.now
        self.arrive(host, ids.tolist())

    def downtime(self, hosts: np.ndarray) -> np.ndarray:
        """Every guest's downtime so far in hours, [architecture, guest]; ``hosts`` is
        each guest's host index now."""
        now = self.engine.now
        clocks = np.array([level.integral_until(now) for level in self._unserved])
        booting = np.array(self.booting_since)
        open_part = np.where(np.isnan(booting), clocks[hosts] - np.array(self.mark), now - booting)
        total = np.array(self.settled) + open_part
        out = self.earlier.copy()
        out[self.row, np.arange(len(self.row))] += total - self.earlier.sum(axis=0)
        return out

    def presence(self) -> np.ndarray:
        """Every guest's presence so far in hours, [architecture, guest]."""
        out = self.present.copy()
        out[self.row, np.arange(len(self.row))] += self.engine.now - self.since
        return out


EVENT_COLUMNS = ("time", "entity", "from_state", "to_state", "cause")


class EventLog:
    """Every state change of the fleet (host, guest, driver, switch, operator), as rows of
    `EVENT_COLUMNS`, when ``enabled``; nothing at all otherwise (for speed)."""

    __slots__ = ("enabled", "engine", "roster", "rows")

    def __init__(self, engine: Engine, enabled: bool, roster: list[Any]) -> None:
        self.engine = engine
        self.enabled = enabled
        self.roster = roster  # the fleet's guests, by index (named in guest rows)
        self.rows: list[tuple[float, str, str, str, str | None]] = []

    def state(self, entity: str, frm: str, to: str, cause: str | None) -> None:
        if self.enabled:
            self.rows.append((self.engine.now, entity, frm, to, cause))

    def guests(self, ids: Iterable[int], frm: str, to: str, cause: str | None) -> None:
        """A state change of the guests with these indices."""
        if self.enabled:
            now, roster = self.engine.now, self.roster
            self.rows.extend((now, roster[i].name, frm, to, cause) for i in ids)
