"""Which keys of a config took a bare number as hours.

By the contract a time written without a unit is hours (``response_time: 30`` is 30 hours),
which is easy to write by mistake for minutes or seconds. ``bare_hours`` finds every such
number the file gives, so ``twin check`` can say so. Zero is left out: it is zero in any
unit.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, PlainValidator

from . import distributions, durations
from .distributions import DISTRIBUTIONS
from .schema import FleetConfig

_TIME_VALIDATORS = {
    distributions._validate: "distribution",
    durations._duration: "duration",
    durations._positive_duration: "duration",
}


def _time_kind(annotation: Any, metadata: list[Any]) -> str | None:
    """``distribution`` or ``duration`` when a field's type holds a time, else ``None``."""
    stack = [annotation, *metadata]
    while stack:
        item = stack.pop()
        if isinstance(item, PlainValidator) and item.func in _TIME_VALIDATORS:
            return _TIME_VALIDATORS[item.func]
        stack.extend(getattr(item, "__metadata__", ()))
        stack.extend(typing.get_args(item))
    return None


def _models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """The config sections a field holds: ``("", Model)`` for one, ``("list", Model)`` for a
    list of them, ``("dict", Model)`` for a mapping of names to them."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
    elif origin is list and args:
        yield from (("list", m) for _, m in _models(args[0]))
    elif origin is dict and len(args) == 2:
        yield from (("dict", m) for _, m in _models(args[1]))
    else:
        for arg in args:
            yield from _models(arg)


def _bare(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value != 0


def _in_distribution(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if _bare(value):
        yield path, value
        return
    if not isinstance(value, Mapping):
        return
    kind = DISTRIBUTIONS.get(str(value.get("dist")))
    for key, param in (kind.params if kind else {}).items():
        given = value.get(key)
        if param.kind == "time" and _bare(given):
            yield f"{path}.{key}", given
        elif param.kind == "times" and isinstance(given, list):
            yield from ((f"{path}.{key}.{i}", x) for i, x in enumerate(given) if _bare(x))


def bare_hours(raw: Mapping[str, Any], model: type[BaseModel] = FleetConfig, prefix: str = ""
               ) -> list[tuple[str, Any]]:  # fmt: skip
    """Every ``(dotted key, number)`` of ``raw`` (a config as written, before validation)
    where a time is a bare non-zero number, so taken as hours, in schema order."""
    found: list[tuple[str, Any]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in raw:
            continue
        value, path = raw[key], f"{prefix}{key}"
        kind = _time_kind(field.annotation, field.metadata)
        if kind == "duration" and _bare(value):
            found.append((path, value))
        elif kind == "distribution":
            found.extend(_in_distribution(path, value))
        for shape, section in _models(field.annotation):
            if shape == "" and isinstance(value, Mapping):
                found.extend(bare_hours(value, section, f"{path}."))
            elif shape == "list" and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, Mapping):
                        found.extend(bare_hours(item, section, f"{path}.{i}."))
            elif shape == "dict" and isinstance(value, Mapping):
                for name_, item in value.items():
                    if isinstance(item, Mapping):
                        found.extend(bare_hours(item, section, f"{path}.{name_}."))
    return found
