"""The metrics of SPEC section 4, read from a fleet's books, and their summaries.

`fleet_metrics` turns one fleet (run so far) into a flat ``{"dotted.name": value}`` dict
from its exact accounts (`twin.accounting`); `sample` reads one time-series row;
`summarise` turns replications into means and Student-t 95 % confidence intervals.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
from scipy import stats

from twin import rare_events
from twin.accounting import Incident, Ledger
from twin.architectures import ARCHITECTURES
from twin.slo import GuestBooks, guest_metrics
from twin.vocabulary import CAUSES

if TYPE_CHECKING:
    from twin.config.schema import CostsConfig, SloConfig
    from twin.fleet import Fleet

HOURS_PER_YEAR = 8760.0
MINUTES_PER_YEAR = HOURS_PER_YEAR * 60.0


class Sample(NamedTuple):
    """One row of the time series: a scope's levels now, and its availability so far."""

    time: float
    scope: str  # an architecture, or ``*``: the whole fleet
    guests_up: float
    guests: float
    hosts_up: float
    hosts: float
    hosts_degraded: float
    guest_availability_so_far: float


class LedgerLike(Protocol):
    """What the metrics read of levels: a live `Ledger`, or the `ClosedLedger` of books."""

    def value(self, quantity: str, arch: str) -> float: ...

    def integral(self, quantity: str, arch: str, now: float) -> float: ...


def guest_hours(ledger: LedgerLike, scope: str, now: float) -> tuple[float, float]:
    """Guest-hours of ``scope`` until ``now``, and how many of them were up."""
    return ledger.integral("guests", scope, now), ledger.integral("guests_up", scope, now)


def sample(ledger: LedgerLike, scope: str, now: float) -> Sample:
    """The levels of ``scope`` at ``now``."""
    hours, up = guest_hours(ledger, scope, now)
    return Sample(
        now, scope,
        ledger.value("guests_up", scope), ledger.value("guests", scope),
        ledger.value("hosts_up", scope), ledger.value("hosts", scope),
        ledger.value("hosts_degraded", scope), up / hours if hours else 1.0,
    )  # fmt: skip


def architectures_present(ledger: LedgerLike, now: float) -> list[str]:
    """Architectures that have (or had) hosts until ``now``."""
    return [a for a in ARCHITECTURES if ledger.integral("hosts", a, now) > 0
            or ledger.value("hosts", a) > 0]  # fmt: skip


class ClosedLedger:
    """The levels of one or more ledgers, closed: each level's value and moment.

    Reads as `Ledger` does. The books of sites that share nothing are joined by
    concatenating their levels (site by site), so an integral of the whole is the sum of
    the sites' integrals, level by level, in site order."""

    def __init__(self, levels: list[tuple[str, str, float, float]]) -> None:
        self.levels = levels  # (quantity, architecture, value, moment)

    @classmethod
    def of(cls, ledger: Ledger) -> ClosedLedger:
        return cls([(q, a, lv.value, lv.moment) for (q, a), lv in ledger.items()])

    def _chosen(self, quantity: str, arch: str) -> list[tuple[str, str, float, float]]:
        return [lv for lv in self.levels if lv[0] == quantity and (arch == "*" or lv[1] == arch)]

    def value(self, quantity: str, arch: str) -> float:
        return float(sum(lv[2] for lv in self._chosen(quantity, arch)))

    def integral(self, quantity: str, arch: str, now: float) -> float:
        # `Level.integral_until` of each
        return float(sum(lv[2] * now - lv[3] for lv in self._chosen(quantity, arch)))


@dataclass
class ScopeTally:
    """The incidents that touched one scope (an architecture, or ``*``: all), as the
    incident metrics need them: counts by cause, the blast radii as counts per value
    (guests come whole, so every percentile of them stays exact), and the repair hours'
    sum. A site-year's tally is a few hundred numbers however many incidents it had."""

    causes: Counter[str]
    radii: Counter[int]  # blast radius (guests) -> incidents
    repair_hours: float

    @property
    def count(self) -> int:
        return sum(self.radii.values())

    def merged(self, other: ScopeTally) -> ScopeTally:
        return ScopeTally(self.causes + other.causes, self.radii + other.radii,
                          self.repair_hours + other.repair_hours)  # fmt: skip

    def radius_percentile(self, q: float) -> float:
        """``np.percentile`` of the radii (its default, linear method), bit for bit, from the
        counts: the two order statistics around rank ``q/100 (n - 1)``, interpolated as
        numpy interpolates them."""
        values = sorted(self.radii)
        cumulative = np.cumsum([self.radii[v] for v in values])
        last = int(cumulative[-1]) - 1  # the rank of the largest radius
        rank = last * (q / 100)
        low = math.floor(rank)
        below, above = (values[int(np.searchsorted(cumulative, k, side="right"))]
                        for k in (low, min(low + 1, last)))  # fmt: skip
        return float(np.quantile(np.array([below, above], dtype=float), rank - low))


@dataclass
class IncidentTally:
    """Each scope's `ScopeTally`, closed at the horizon (an incident still open counts with
    the horizon as its end: censored). The tallies of sites that share nothing merge by
    adding, in site order."""

    scopes: dict[str, ScopeTally]

    @classmethod
    def of(cls, incidents: Sequence[Incident], horizon: float) -> IncidentTally:
        def tally(touched: Sequence[Incident], radii: Iterable[int]) -> ScopeTally:
            repairs = ((horizon if i.end is None else i.end) - i.start for i in touched)
            return ScopeTally(Counter(i.cause for i in touched), Counter(radii),
                              math.fsum(repairs))  # fmt: skip

        scopes = {"*": tally(incidents, (i.blast_radius for i in incidents))}
        for arch in ARCHITECTURES:
            touched = [i for i in incidents if arch in i.guests_lost]
            scopes[arch] = tally(touched, (i.guests_lost[arch] for i in touched))
        return cls(scopes)

    @classmethod
    def joined(cls, tallies: Sequence[IncidentTally]) -> IncidentTally:
        scopes = {}
        for scope in tallies[0].scopes:
            merged = tallies[0].scopes[scope]
            for other in tallies[1:]:
                merged = merged.merged(other.scopes[scope])
            scopes[scope] = merged
        return cls(scopes)


@dataclass
class Books:
    """Everything the SPEC 4 metrics of a fleet are computed from, closed at ``now``.

    Fleets that share nothing (the sites of a fleet with ``operators.per_site``) merge
    exactly: levels' integrals and counts add, incident and ticket tallies add (counts
    by cause, blast radii as counts per value, summed repair hours and waits, so means and
    percentiles over them are those of the whole), operator teams add up."""

    now: float
    ledger: ClosedLedger
    incidents: IncidentTally
    tickets: dict[str, int]  # tickets by scope
    ticket_waits: dict[str, float]  # their waits so far (a waiting one: until now), summed
    operators: int
    migrations: dict[str, int]
    services: list[float]  # each service's availability
    stunned: dict[str, float]  # guest-hours of live-migration stun, by scope
    ha_failures: dict[str, int]  # guests HA could not place, by scope
    ha_retried: dict[str, int]  # guests HA placed only on a retry, by scope
    ha_waited: dict[str, float]  # hours those guests waited (the waiting ones: until now)
    guests: GuestBooks  # per-guest downtime and SLO periods
    slo: SloConfig | None
    costs: CostsConfig | None

    @classmethod
    def of(cls, fleet: Fleet) -> Books:
        now, accounts = fleet.time, fleet.accounts
        waits: dict[str, list[float]] = {}
        for ticket in fleet.operators.tickets:
            wait = (now if ticket.taken is None else ticket.taken) - ticket.opened
            waits.setdefault("*", []).append(wait)
            if ticket.arch is not None:
                waits.setdefault(ticket.arch, []).append(wait)
        return cls(
            now=now,
            ledger=ClosedLedger.of(accounts.ledger),
            incidents=IncidentTally.of(accounts.incidents, now),
            tickets={scope: len(w) for scope, w in waits.items()},
            ticket_waits={scope: math.fsum(w) for scope, w in waits.items()},
            operators=len(fleet.operators.operators),
            migrations=dict(accounts.migrations),
            services=[s.availability(now) for s in fleet.services.values()],
            stunned=dict(accounts.stunned),
            ha_failures=dict(accounts.ha_failures),
            ha_retried=dict(accounts.ha_retried),
            ha_waited={
                scope: accounts.ha_wait_hours(scope, now) * failed
                for scope, failed in accounts.ha_failures.items()
            },
            guests=fleet.guest_books(),
            slo=fleet.config.slo,
            costs=fleet.config.costs,
        )

    @classmethod
    def merged(cls, parts: Sequence[Books]) -> Books:
        """The books of a fleet made of ``parts`` that share nothing, run to one time."""
        return cls(
            now=parts[0].now,
            ledger=ClosedLedger([lv for p in parts for lv in p.ledger.levels]),
            incidents=IncidentTally.joined([p.incidents for p in parts]),
            tickets=_summed([p.tickets for p in parts]),
            ticket_waits=_summed([p.ticket_waits for p in parts]),
            operators=sum(p.operators for p in parts),
            migrations=_summed([p.migrations for p in parts]),
            services=[a for p in parts for a in p.services],
            stunned=_summed([p.stunned for p in parts]),
            ha_failures=_summed([p.ha_failures for p in parts]),
            ha_retried=_summed([p.ha_retried for p in parts]),
            ha_waited=_summed([p.ha_waited for p in parts]),
            guests=GuestBooks.joined([p.guests for p in parts]),
            slo=parts[0].slo,
            costs=parts[0].costs,
        )


def _summed(counts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by scope of parts that share nothing, added up."""
    total: dict[str, Any] = {}
    for part in counts:
        for scope, count in part.items():
            total[scope] = total.get(scope, 0) + count
    return total


def fleet_metrics(fleet: Fleet) -> dict[str, float]:
    """SPEC 4 metrics of ``fleet`` so far, flat (``incidents.driver``,
    ``by_architecture.microkernel.x``)."""
    return books_metrics(Books.of(fleet))


def books_metrics(books: Books) -> dict[str, float]:
    """SPEC 4 metrics from a fleet's `Books`, flat."""
    now = books.now
    out: dict[str, float] = {}
    scopes = ["*", *architectures_present(books.ledger, now)]
    incidents = book_incident_stats(books.incidents, scopes)
    operator_hours = books.operators * now
    for scope in scopes:
        m = availability_stats(books.ledger, scope, now)
        m |= incidents[scope]
        m |= operator_stats(books, scope)
        m |= compliance_stats(books.ledger, scope, now)
        m["migrations"] = float(books.migrations.get(scope, 0))
        guest_years = books.ledger.integral("guests", scope, now) / HOURS_PER_YEAR
        stunned = books.stunned.get(scope, 0.0) * 60.0
        m["migration_downtime_min_per_year"] = stunned / guest_years if guest_years else 0.0
        failed = books.ha_failures.get(scope, 0)
        m["ha_restart_failures"] = float(failed)
        m["ha_restart_retried"] = float(books.ha_retried.get(scope, 0))
        m["ha_restart_wait_hours"] = books.ha_waited.get(scope, 0.0) / failed if failed else 0.0
        if scope == "*" and books.services:
            m["service_availability"] = float(np.mean(books.services))
        m |= guest_metrics(books.guests, books.slo, scope)
        if books.costs is not None:
            m |= cost_stats(books.costs, books.ledger, scope, now, operator_hours)
        prefix = "" if scope == "*" else f"by_architecture.{scope}."
        out |= {prefix + k: float(v) for k, v in m.items()}
    return out


def operator_stats(books: Books, scope: str) -> dict[str, float]:
    """``operator_utilization`` and ``ticket_wait_hours`` of one architecture's tickets
    (or ``*``: all); a ticket still waiting has waited until now."""
    now = books.now
    available = books.operators * now
    busy = books.ledger.integral("operators_busy", scope, now)
    tickets, waited = books.tickets.get(scope, 0), books.ticket_waits.get(scope, 0.0)
    return {
        "operator_utilization": busy / available if available > 0 else 0.0,
        "ticket_wait_hours": waited / tickets if tickets else 0.0,
    }


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def book_incident_stats(
    tally: IncidentTally, scopes: Sequence[str] = ("*",)
) -> dict[str, dict[str, float]]:
    """Per scope (an architecture, or ``*``: all), counts by cause, blast radius and MTTR
    of the incidents touching it. An incident's blast radius in an architecture is the
    guests it took down there."""
    out = {}
    for scope in scopes:
        part = tally.scopes[scope]
        m: dict[str, float] = {f"incidents.{c}": 0.0 for c in CAUSES}
        for cause, count in part.causes.items():
            m[f"incidents.{cause}"] = float(count)
        n = part.count
        m["blast_radius_mean"] = sum(r * k for r, k in part.radii.items()) / n if n else 0.0
        m["blast_radius_p95"] = part.radius_percentile(95) if n else 0.0
        m["blast_radius_max"] = float(max(part.radii)) if n else 0.0
        m["mttr_hours"] = part.repair_hours / n if n else 0.0
        out[scope] = m
    return out


def availability_stats(ledger: LedgerLike, arch: str, horizon: float) -> dict[str, float]:
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


def cost_stats(
    costs: CostsConfig, ledger: Ledger, arch: str, horizon: float, operator_hours: float
) -> dict[str, float]:
    """``cost.*`` per year of one architecture (or ``*``): guest downtime at its price per
    guest-hour, the operator team at its hourly rate for every hour (busy or not), hosts
    and licenses per host-year of each architecture. The team serves every host, so an
    architecture's share of ``cost.operators`` is its share of the host-hours."""
    years = horizon / HOURS_PER_YEAR
    if years <= 0:
        return {}
    archs = [a for a in ARCHITECTURES if arch in ("*", a)]
    host_hours = {a: ledger.integral("hosts", a, horizon) for a in archs}
    all_hosts = ledger.integral("hosts", "*", horizon)
    down = ledger.integral("guests", arch, horizon) - ledger.integral("guests_up", arch, horizon)
    share = math.fsum(host_hours.values()) / all_hosts if all_hosts > 0 else 0.0
    out = {
        "cost.downtime": costs.downtime_per_guest_hour * down / years,
        "cost.operators": costs.operator_per_hour * operator_hours * share / years,
        "cost.hosts": math.fsum(
            costs.host_per_year.get(a, 0.0) * h / HOURS_PER_YEAR for a, h in host_hours.items()
        ) / years,
        "cost.licenses": math.fsum(
            costs.license_per_host_year.get(a, 0.0) * h / HOURS_PER_YEAR
            for a, h in host_hours.items()
        ) / years,
    }  # fmt: skip
    out["cost.total"] = math.fsum(out.values())
    return out


def compliance_stats(ledger: Ledger, arch: str, horizon: float) -> dict[str, float]:
    """``patch_compliance`` (time-mean share of the hosts in the campaigns' scopes on their
    latest release, pooled over campaigns; 1 with none), ``updates_missed`` and
    ``releases_superseded`` (`twin.processes.compliance`) for one architecture (or ``*``)."""
    in_scope = ledger.integral("patch_scope", arch, horizon)
    patched = ledger.integral("patched", arch, horizon)
    return {
        "patch_compliance": patched / in_scope if in_scope > 0 else 1.0,
        "updates_missed": ledger.value("updates_missed", arch),
        "releases_superseded": ledger.value("releases_superseded", arch),
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
    values: Iterable[float],
    bounds: tuple[float, float] = (-math.inf, math.inf),
    log_weights: Sequence[float] | None = None,
) -> dict[str, float]:
    """Mean, standard error and Student-t 95 % interval over replications, clipped to
    ``bounds`` (the metric's physical range); bounds = mean when n = 1. With
    ``log_weights`` (replications drawn at boosted fault rates), the likelihood-weighted
    estimate of `twin.rare_events.estimate`."""
    x = np.asarray(list(values), dtype=float)
    if log_weights is not None:
        return interval(*rare_events.estimate(x, log_weights), bounds)
    mean = float(x.mean()) if x.size else 0.0
    stderr = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    return interval(mean, stderr, x.size - 1, bounds)


def present(
    rows: Sequence[Mapping[str, float]], name: str, log_weights: Sequence[float] | None = None
) -> tuple[list[float], list[float] | None]:
    """The values of metric ``name`` in the replications that have it (not NaN), and
    those replications' log weights (None stays None)."""
    kept = [i for i, row in enumerate(rows) if name in row and not math.isnan(row[name])]
    values = [rows[i][name] for i in kept]
    return values, None if log_weights is None else [log_weights[i] for i in kept]


def summarise(
    rows: Iterable[Mapping[str, float]], log_weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """Nest flat per-replication metrics into SPEC 5 leaves ``{mean, ci95_low, ci95_high,
    stderr}``, each interval inside its metric's `physical_range` (likelihood-weighted
    when the replications carry ``log_weights``, `twin.rare_events`).

    A metric missing from some replications (e.g. an architecture with no hosts
    after a conversion) is summarised over the replications that have it.
    """
    rows = list(rows)
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    nested: dict[str, Any] = {}
    for name in names:
        values, weights = present(rows, name, log_weights)
        node = nested
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = ci95(values, physical_range(name), weights)
    return nested
