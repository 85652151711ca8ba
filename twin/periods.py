"""Calendar periods of an SLO: months, quarters or years of the fleet's calendar.

Hour 0 of a run is ``start_date`` at 00:00 (SPEC 3). An SLO is judged per *complete*
calendar period inside the run: a month from its 1st 00:00 to the next 1st, a quarter
from January, April, July or October 1st, a year from January 1st. A run that starts
mid-month judges its first month from the next 1st (a partial period would be judged on
less time than the target is stated for, which flatters it).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

Period = Literal["month", "quarter", "year"]
MONTHS_PER_PERIOD: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}
DEFAULT_START = dt.date(2024, 1, 1)
"""A Monday: hour 0 of a run when its config gives no ``start_date``."""


def _period_start(day: dt.date, period: Period) -> dt.date:
    """The first day of the period holding ``day``."""
    step = MONTHS_PER_PERIOD[period]
    month = (day.month - 1) // step * step + 1
    return dt.date(day.year, month, 1)


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + day.month - 1 + months
    return dt.date(total // 12, total % 12 + 1, 1)


def next_boundary(start_date: dt.date, period: Period, hour: float) -> float:
    """The first period boundary at or after ``hour``, in hours from ``start_date``."""
    day = start_date + dt.timedelta(hours=max(hour, 0.0))
    first = _period_start(day.date() if isinstance(day, dt.datetime) else day, period)
    hours = (first - start_date).days * 24.0
    while hours < hour:
        first = _add_months(first, MONTHS_PER_PERIOD[period])
        hours = (first - start_date).days * 24.0
    return hours


def boundaries(start_date: dt.date, period: Period, horizon: float) -> list[float]:
    """Every period boundary in ``[0, horizon]``, in hours: consecutive pairs are the
    complete periods of a run of ``horizon`` hours."""
    out: list[float] = []
    hour = next_boundary(start_date, period, 0.0)
    while hour <= horizon:
        out.append(hour)
        hour = next_boundary(start_date, period, hour + 1.0)
    return out
