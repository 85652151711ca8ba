"""The calendar behind simulation hours: hour 0 is ``start_date`` at 00:00.

Maintenance windows and the operators' business hours are weekly (or daily) and were
written for hour 0 being a Monday; `week_offset` shifts them to the weekday
``start_date`` really is. Change freezes are
yearly ``MM-DD`` ranges (inclusive, possibly across New Year): `freeze_end` says when
the freeze covering an hour lifts. Pure functions of their inputs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

DAY_HOURS = 24.0


def week_offset(start: dt.date) -> float:
    """Hours from the Monday 00:00 on or before ``start`` to ``start`` 00:00: add it to a
    simulation hour to read a weekly window written for a Monday hour 0."""
    return start.weekday() * DAY_HOURS


def in_business_hours(hour: float, offset: float = 0.0) -> bool:
    """Monday to Friday, 09:00-17:00, at simulation ``hour`` with the `week_offset` of the
    run's ``start_date`` (0: hour 0 is a Monday 00:00)."""
    day, time_of_day = divmod((hour + offset) % (7 * DAY_HOURS), DAY_HOURS)
    return day < 5 and 9.0 <= time_of_day < 17.0


def parse_month_day(text: str) -> tuple[int, int]:
    """``"12-24"`` as (12, 24); raises ``ValueError`` for anything that is not a day of a
    year (02-29 is allowed: it only exists in leap years)."""
    parts = str(text).strip().split("-")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"expected a calendar day MM-DD like 12-24 (got {text!r})")
    month, day = int(parts[0]), int(parts[1])
    try:
        dt.date(2024, month, day)  # a leap year: every MM-DD that ever exists
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar day (MM-DD)") from None
    return month, day


class Freeze(NamedTuple):
    """A yearly change freeze from ``first`` to ``last`` (inclusive, (month, day) each);
    ``last`` before ``first`` runs across New Year."""

    first: tuple[int, int]
    last: tuple[int, int]

    def covers(self, day: dt.date) -> bool:
        md = (day.month, day.day)
        if self.first <= self.last:
            return self.first <= md <= self.last
        return md >= self.first or md <= self.last


def freeze_end(t: float, freezes: Sequence[Freeze], start: dt.date) -> float:
    """``t`` if no freeze covers hour ``t``, else the first hour after it (the start of the
    first day no freeze covers); infinity when freezes cover every day of a year."""
    day = start + dt.timedelta(hours=t)
    moved = False
    for _ in range(367):
        if not any(freeze.covers(day) for freeze in freezes):
            if not moved:
                return t
            return (day - start).days * DAY_HOURS
        day = dt.date(day.year, day.month, day.day) + dt.timedelta(days=1)
        moved = True
    return float("inf")
