"""The metrics of SPEC section 4, read from a fleet's books, and their summaries.

`fleet_metrics` turns one fleet (run so far) into a flat ``{"dotted.name": value}`` dict
from its exact accounts (`twin.accounting`); `sample` reads one time-series row;
`summarise` turns replications into means and Student-t 95 % confidence intervals.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from scipy import stats

from twin.accounting import Incident, Ledger
from twin.architectures import ARCHITECTURES
from twin.slo import guest_metrics
from twin.vocabulary import CAUSES

if TYPE_CHECKING:
    from twin.config.schema import CostsConfig
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


def sample(ledger: Ledger, scope: str, now: float) -> Sample:
    """The levels of ``scope`` at ``now``."""
    guest_hours = ledger.integral("guests", scope, now)
    so_far = ledger.integral("guests_up", scope, now) / guest_hours if guest_hours else 1.0
    return Sample(
        now, scope,
        ledger.value("guests_up", scope), ledger.value("guests", scope),
        ledger.value("hosts_up", scope), ledger.value("hosts", scope),
        ledger.value("hosts_degraded", scope), so_far,
    )  # fmt: skip


def fleet_metrics(fleet: Fleet) -> dict[str, float]:
    """SPEC 4 metrics of ``fleet`` so far, flat (``incidents.driver``,
    ``by_architecture.microkernel.x``)."""
    now = fleet.time
    accounts = fleet.accounts
    out: dict[str, float] = {}
    scopes = ["*", *fleet.architectures]
    incidents = incident_stats(accounts.incidents, now, scopes)
    books = fleet.guest_books()
    costs = fleet.config.costs
    operator_hours = len(fleet.operators.operators) * now
    for scope in scopes:
        m = availability_stats(accounts.ledger, scope, now)
        m |= incidents[scope]
        m |= guest_metrics(books, fleet.config.slo, scope)
        if costs is not None:
            m |= cost_stats(costs, accounts.ledger, scope, now, operator_hours)
        m |= fleet.operators.stats(scope, now)
        m["migrations"] = float(accounts.migrations.get(scope, 0))
        if scope == "*" and fleet.services:
            m["service_availability"] = float(
                np.mean([s.availability(now) for s in fleet.services.values()])
            )
        prefix = "" if scope == "*" else f"by_architecture.{scope}."
        out |= {prefix + k: float(v) for k, v in m.items()}
    return out


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


def ci95(values: Iterable[float]) -> dict[str, float]:
    """Mean and Student-t 95 % interval over replications (bounds = mean when n = 1)."""
    x = np.asarray(list(values), dtype=float)
    mean = float(x.mean()) if x.size else 0.0
    if x.size < 2:
        return {"mean": mean, "ci95_low": mean, "ci95_high": mean}
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half}


def summarise(rows: Iterable[Mapping[str, float]]) -> dict[str, Any]:
    """Nest flat per-replication metrics into SPEC 5 leaves ``{mean, ci95_low, ci95_high}``.

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
        node[leaf] = ci95(values)
    return nested
