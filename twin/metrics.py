"""Exact availability accounting and the metrics of SPEC section 4.

Every quantity the twin reports is piecewise constant between events, so it is
integrated exactly: a `Level` holds the current value and the integral so far,
and is advanced only when the value changes (never sampled). Incidents are
recorded as they open and close. `fleet_metrics` turns one finished run into a
flat ``{"dotted.name": value}`` dict; `summarise` turns replications into means
and Student-t 95 % confidence intervals.
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from twin.agents.host import Host

HOURS_PER_YEAR = 8760.0
MINUTES_PER_YEAR = HOURS_PER_YEAR * 60.0

CAUSES = (
    "driver",
    "hypervisor",
    "parent_os",
    "hardware",
    "network",
    "power",
    "update",
    "operator_error",
)
PLANNED_CAUSES = frozenset({"update"})  # guest downtime they cause is planned downtime
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


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def incident_stats(
    incidents: Sequence[Incident], horizon: float, scopes: Sequence[str] = ("*",)
) -> dict[str, dict[str, float]]:
    """Per scope (an architecture, or ``*``: all), counts by cause, blast radius and MTTR
    of the incidents touching it.

    Incidents still open at the horizon count with the horizon as their end (censored).
    An incident's blast radius in an architecture is the guests it took down there.
    """
    causes = np.array([inc.cause for inc in incidents], dtype=object)
    ends = np.array([inc.end for inc in incidents], dtype=float)  # None: nan
    repairs = np.where(np.isnan(ends), horizon, ends)
    repairs -= np.array([inc.start for inc in incidents], dtype=float)
    lost = [inc.guests_lost for inc in incidents]  # every architecture touched (`touch`)
    out = {}
    for scope in scopes:
        if scope == "*":
            radii = np.array([inc.blast_radius for inc in incidents], dtype=float)
            out[scope] = _incident_summary(causes, radii, repairs)
        else:
            radii = np.array([d.get(scope, -1) for d in lost], dtype=float)
            touched = radii >= 0
            out[scope] = _incident_summary(causes[touched], radii[touched], repairs[touched])
    return out


def _incident_summary(causes: np.ndarray, radii: np.ndarray, repairs: np.ndarray) -> dict:
    out: dict[str, float] = {f"incidents.{c}": 0.0 for c in CAUSES}
    for cause, count in Counter(causes.tolist()).items():
        out[f"incidents.{cause}"] = float(count)
    out["blast_radius_mean"] = float(radii.mean()) if radii.size else 0.0
    out["blast_radius_p95"] = float(np.percentile(radii, 95)) if radii.size else 0.0
    out["blast_radius_max"] = float(radii.max()) if radii.size else 0.0
    out["mttr_hours"] = float(repairs.mean()) if repairs.size else 0.0
    return out


def availability_stats(ledger: Ledger, arch: str, horizon: float) -> dict[str, float]:
    """Guest and host availability, downtime and capacity for one architecture (or ``*``)."""
    guest_hours = ledger.integral("guests", arch, horizon)
    guest_up = ledger.integral("guests_up", arch, horizon)
    planned = ledger.integral("guests_down_planned", arch, horizon)
    host_hours = ledger.integral("hosts", arch, horizon)
    host_up = ledger.integral("hosts_up", arch, horizon)
    degraded = ledger.integral("hosts_degraded", arch, horizon)
    capacity = ledger.integral("capacity", arch, horizon)
    guest_years = guest_hours / HOURS_PER_YEAR
    host_years = host_hours / HOURS_PER_YEAR
    return {
        "guest_availability": _ratio(guest_up, guest_hours),
        "host_availability": _ratio(host_up, host_hours),
        "guest_downtime_min_per_year": _ratio((guest_hours - guest_up) * 60.0, guest_years),
        "planned_downtime_min_per_year": _ratio(planned * 60.0, guest_years),
        "degraded_min_per_year": _ratio(degraded * 60.0, host_years),
        "effective_capacity": _ratio(capacity, horizon),
    }


SHARES = ("availability", "patch_compliance", "slo_breach_probability", "operator_utilization")
"""Metric names ending so are shares of time or of things: their values lie in [0, 1]."""


def physical_range(metric: str) -> tuple[float, float]:
    """Where a metric's values can lie: [0, 1] for a share, [0, inf) for every other
    metric of SPEC 4 (counts, durations, rates, costs, capacities)."""
    leaf = metric.rsplit(".", 1)[-1]
    return (0.0, 1.0) if leaf.endswith(SHARES) else (0.0, math.inf)


def difference_range(metric: str) -> tuple[float, float]:
    """Where a difference of two values of a metric can lie (arm minus control)."""
    low, high = physical_range(metric)
    return (low - high, high - low)


def interval(
    mean: float, stderr: float, dof: int, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> dict[str, float]:
    """A Student-t 95 % interval ``mean ± t(dof) * stderr`` clipped to ``bounds``.

    Clipping removes only values the quantity cannot take, so the interval covers the
    true value whenever the unclipped one does: coverage is kept (docs/statistics.md).
    Any estimator that gives a mean, a standard error and degrees of freedom (a
    likelihood-weighted mean, say) gets its interval here.
    """
    low, high = bounds
    half = float(stats.t.ppf(0.975, dof) * stderr) if dof > 0 else 0.0
    return {
        "mean": mean,
        "ci95_low": min(max(mean - half, low), mean),
        "ci95_high": max(min(mean + half, high), mean),
        "stderr": stderr,
    }


def ci95(
    values: Iterable[float], bounds: tuple[float, float] = (-math.inf, math.inf)
) -> dict[str, float]:
    """Mean, standard error and Student-t 95 % interval over replications, clipped to
    ``bounds`` (the metric's physical range); bounds = mean when n = 1."""
    x = np.asarray(list(values), dtype=float)
    mean = float(x.mean()) if x.size else 0.0
    stderr = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    return interval(mean, stderr, x.size - 1, bounds)


def summarise(rows: Iterable[Mapping[str, float]]) -> dict[str, Any]:
    """Nest flat per-replication metrics into SPEC 5 leaves ``{mean, ci95_low, ci95_high,
    stderr}``, each interval inside its metric's `physical_range`.

    A metric missing from some replications (e.g. an architecture with no hosts
    after a conversion) is summarised over the replications that have it.
    """
    rows = list(rows)
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    nested: dict[str, Any] = {}
    for name in names:
        values = [row[name] for row in rows if name in row and not math.isnan(row[name])]
        node = nested
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = ci95(values, physical_range(name))
    return nested
