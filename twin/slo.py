"""Service-level objectives, judged exactly per calendar period, and each guest's own
downtime.

`PeriodBooks` snapshots every guest's downtime so far (`twin.accounting.GuestTime`) and
every service's up-time integral at each period boundary (`twin.periods`: one engine
event per boundary), so a guest's (or service's) downtime in a period is the difference
of two exact integrals, never a sample. `GuestBooks` holds what the SLO and percentile
metrics are computed from, as plain arrays over guests (or services): a fleet simulated
in parts (sites) merges exactly by concatenating them along that axis.

Pure functions turn them into SPEC 4 metrics: `downtime_percentiles`,
`breach_probability`, `error_budget_used`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from twin.architectures import ARCHITECTURES
from twin.periods import next_boundary

if TYPE_CHECKING:
    from twin.config.schema import SloConfig
    from twin.fleet import Fleet

HOURS_PER_YEAR = 8760.0
PERCENTILES = (50, 90, 99)
SLACK_HOURS = 1e-9
"""Downtime within this of what a target allows counts as within it (float rounding of
the integrals, some microseconds; no process of the twin is that short)."""


@dataclass
class GuestBooks:
    """Per-guest (and per-service) downtime arrays of one run so far.

    ``downtime`` and ``presence`` are hours, [architecture (``ARCHITECTURES`` order),
    guest]; ``period_downtime`` is hours per complete calendar period, [period, guest],
    with ``period_rows`` each guest's architecture at the period's end and
    ``period_hours`` each period's length; ``service_period_downtime`` is [period,
    service] (hours without quorum).
    """

    downtime: np.ndarray
    presence: np.ndarray
    period_downtime: np.ndarray
    period_rows: np.ndarray
    period_hours: np.ndarray
    service_period_downtime: np.ndarray

    @classmethod
    def joined(cls, parts: list[GuestBooks]) -> GuestBooks:
        """The books of fleets that share nothing (sites run apart), run over the same
        periods: their guests (and services) side by side."""
        return cls(
            downtime=np.concatenate([p.downtime for p in parts], axis=1),
            presence=np.concatenate([p.presence for p in parts], axis=1),
            period_downtime=np.concatenate([p.period_downtime for p in parts], axis=1),
            period_rows=np.concatenate([p.period_rows for p in parts], axis=1),
            period_hours=parts[0].period_hours,
            service_period_downtime=np.concatenate(
                [p.service_period_downtime for p in parts], axis=1
            ),
        )


class PeriodBooks:
    """Snapshots at every SLO period boundary of a fleet (none without an ``slo`` block)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.times: list[float] = []
        self.downtime: list[np.ndarray] = []  # per boundary: each guest's downtime so far
        self.rows: list[np.ndarray] = []  # per boundary: each guest's architecture
        self.service_up: list[np.ndarray] = []  # per boundary: each service's up-time so far
        slo = fleet.config.slo
        if slo is not None:
            self._schedule(next_boundary(fleet.config.start_date, slo.period, fleet.time))

    def _schedule(self, hour: float) -> None:
        self.fleet.engine.schedule(self._on_boundary, at=hour)

    def _on_boundary(self) -> None:
        fleet = self.fleet
        now = fleet.time
        self.times.append(now)
        self.downtime.append(fleet.guest_downtime_hours().sum(axis=0))
        self.rows.append(fleet.accounts.guest_time.row.copy())
        self.service_up.append(
            np.array([s.available.integral_until(now) for s in fleet.services.values()])
        )
        slo = fleet.config.slo
        assert slo is not None
        self._schedule(next_boundary(fleet.config.start_date, slo.period, now + 1.0))

    def books(self) -> GuestBooks:
        """The arrays the metrics are computed from (`GuestBooks`)."""
        fleet = self.fleet
        guest_time = fleet.accounts.guest_time
        n_guests, n_services = len(fleet.guests), len(fleet.services)
        if len(self.times) >= 2:
            times = np.array(self.times)
            period_downtime = np.diff(np.array(self.downtime), axis=0)
            service_up = np.diff(np.array(self.service_up).reshape(len(times), -1), axis=0)
            period_hours = np.diff(times)
            service_down = period_hours[:, None] - service_up
            rows = np.array(self.rows[1:])
        else:
            period_downtime = np.zeros((0, n_guests))
            rows = np.zeros((0, n_guests), dtype=np.intp)
            period_hours = np.zeros(0)
            service_down = np.zeros((0, n_services))
        return GuestBooks(
            downtime=fleet.guest_downtime_hours(),
            presence=guest_time.presence(),
            period_downtime=period_downtime,
            period_rows=rows,
            period_hours=period_hours,
            service_period_downtime=service_down,
        )


def downtime_per_year(downtime: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """Each guest's downtime in minutes per guest-year of its presence (guests with none
    are left out)."""
    present = presence > 0
    return downtime[present] * 60.0 * HOURS_PER_YEAR / presence[present]


def downtime_percentiles(minutes_per_year: np.ndarray) -> dict[str, float]:
    """``guest_downtime_p50/p90/p99_min_per_year`` of per-guest downtimes (linear
    interpolation between order statistics, numpy's default)."""
    if not minutes_per_year.size:
        return {}
    values = np.percentile(minutes_per_year, PERCENTILES)
    return {
        f"guest_downtime_p{p}_min_per_year": float(v)
        for p, v in zip(PERCENTILES, values, strict=True)
    }


def breaches(period_downtime: np.ndarray, period_hours: np.ndarray, target: float) -> np.ndarray:
    """Which (period, unit) fell below ``target``: its downtime exceeds what the target
    allows in that period, ``(1 - target) * length``."""
    allowed = (1.0 - target) * period_hours[:, None] + SLACK_HOURS
    return period_downtime > allowed


def breach_probability(
    period_downtime: np.ndarray, period_hours: np.ndarray, target: float
) -> float | None:
    """``slo_breach_probability``: the share of unit-periods below target (None: none)."""
    if not period_downtime.size:
        return None
    return float(breaches(period_downtime, period_hours, target).mean())


def error_budget_used(downtime_hours: float, unit_hours: float, target: float) -> float | None:
    """``error_budget_used``: downtime over the downtime ``target`` allows in ``unit_hours``
    (None when the target allows none)."""
    allowed = (1.0 - target) * unit_hours
    return downtime_hours / allowed if allowed > 0 else None


def slo_metrics(books: GuestBooks, slo: SloConfig, scope: str) -> dict[str, float]:
    """``slo_breach_probability`` and ``error_budget_used`` of one architecture (or ``*``),
    per guest, or per service (fleet-wide only: services span architectures)."""
    out: dict[str, float | None] = {}
    if slo.scope == "service":
        if scope != "*":
            return {}
        down = books.service_period_downtime
        out["slo_breach_probability"] = breach_probability(down, books.period_hours, slo.target)
        hours = float(books.period_hours.sum()) * down.shape[1]
        out["error_budget_used"] = error_budget_used(float(down.sum()), hours, slo.target)
    else:
        down, hours = books.period_downtime, books.period_hours
        if scope != "*":
            row = ARCHITECTURES.index(scope)
            mine = books.period_rows == row
            breached = breaches(down, hours, slo.target)[mine]
            out["slo_breach_probability"] = float(breached.mean()) if breached.size else None
            total_down, total_hours = books.downtime[row].sum(), books.presence[row].sum()
        else:
            out["slo_breach_probability"] = breach_probability(down, hours, slo.target)
            total_down, total_hours = books.downtime.sum(), books.presence.sum()
        out["error_budget_used"] = error_budget_used(
            float(total_down), float(total_hours), slo.target
        )
    return {k: v for k, v in out.items() if v is not None}


def guest_downtimes(books: GuestBooks, scope: str = "*") -> np.ndarray:
    """Each guest's own downtime in minutes per guest-year, of one architecture (its time
    there) or of the fleet (``*``): the distribution the percentiles summarise."""
    if scope == "*":
        return downtime_per_year(books.downtime.sum(axis=0), books.presence.sum(axis=0))
    row = ARCHITECTURES.index(scope)
    return downtime_per_year(books.downtime[row], books.presence[row])


def guest_metrics(books: GuestBooks, slo: SloConfig | None, scope: str) -> dict[str, float]:
    """Per-guest downtime percentiles, and the SLO metrics when there is an SLO, of one
    architecture (or ``*``)."""
    out = downtime_percentiles(guest_downtimes(books, scope))
    if slo is not None:
        out |= slo_metrics(books, slo, scope)
    return out
