"""Durations: every time in the twin is a float number of hours.

A config may write a time as a number of hours (``1.5``) or as a number with a unit:
``30s``, ``5m``, ``2h``, ``3d``, ``2w``, ``1y`` (a year is 365 days).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import PlainValidator
from pydantic_core import PydanticCustomError

_UNITS: dict[str, tuple[float, float]] = {
    "s": (1.0, 3600.0),
    "m": (1.0, 60.0),
    "h": (1.0, 1.0),
    "d": (24.0, 1.0),
    "w": (168.0, 1.0),
    "y": (8760.0, 1.0),
}
"""Hours per unit as (multiplier, divisor): seconds and minutes divide, so ``15s`` is exact."""

_DURATION = re.compile(
    r"^\s*(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[smhdwy]?)\s*$"
)

DURATION_HINT = "expected a duration like 30s, 5m, 2h, 3d, 2w or 1y"


def parse_duration(value: Any) -> float:
    """Hours in ``value``: a number of hours, or a string such as ``"30s"``, ``"1.5h"``, ``"2w"``.

    Raises ``ValueError`` for anything else, for negative and for non-finite durations.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{DURATION_HINT} (got {value!r})")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{DURATION_HINT} (got {value!r})")
        number, unit = float(match["number"]), match["unit"] or "h"
        multiplier, divisor = _UNITS[unit]
        hours = number * multiplier / divisor
    else:
        hours = float(value)
    if not math.isfinite(hours):
        raise ValueError(f"duration must be finite (got {value})")
    if hours < 0:
        raise ValueError(f"duration must be >= 0 (got {str(value).strip()})")
    return hours + 0.0  # no negative zero


def invalid(reason: str, key: str | None = None) -> PydanticCustomError:
    """A validation error whose message is ``reason`` as written.

    ``key`` is a dotted path below the field being validated (``"mean"``, ``"guests.per_host"``
    for a model-level check); the loader appends it to the field's path in the one-line error.
    """
    context: dict[str, Any] = {"reason": reason}
    if key is not None:
        context["key"] = key
    return PydanticCustomError("config", "{reason}", context)


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise invalid(str(err)) from None


def _positive_duration(value: Any) -> float:
    hours = _duration(value)
    if hours <= 0:
        raise invalid(f"expected a duration > 0 (got {value})")
    return hours


Duration = Annotated[float, PlainValidator(_duration, json_schema_input_type=float | str)]
"""A plain duration in hours, >= 0 (cadences, offsets, injection times)."""

PositiveDuration = Annotated[
    float, PlainValidator(_positive_duration, json_schema_input_type=float | str)
]
"""A plain duration in hours, > 0 (``horizon``, ``sample_every``, ``every``)."""
