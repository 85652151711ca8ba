"""Time distributions for faults, repairs, detection, reboots and responses, in hours.

Each distribution is a small frozen value: it samples with a ``numpy.random.Generator``, knows
its mean (for the analytic checks) and writes itself back in the YAML form it was read from.
In YAML a distribution is a mapping with a ``dist:`` key, the word ``never`` (the process is
switched off) or a bare duration, which means a constant (``reboot_time: 6m``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import PlainSerializer, PlainValidator

from .durations import invalid, parse_duration

ParamKind = Literal["time", "number", "times"]

DISTRIBUTION_HINT = (
    "expected a distribution ({dist: exponential, mean: 2y}, 'never' or a duration like 6m)"
)


class DistributionError(ValueError):
    """A distribution that cannot exist; ``key`` names the offending parameter, if one does."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.reason = reason
        self.key = key


class Distribution:
    """A distribution of a time in hours; subclasses are frozen dataclasses."""

    __slots__ = ()
    name: ClassVar[str]
    params: ClassVar[dict[str, ParamKind]]
    """Parameter names in YAML order; ``time`` ones take durations and scale with time."""

    def sample(self, rng: np.random.Generator) -> float:
        """One draw, >= 0 (``inf`` for ``never``)."""
        raise NotImplementedError

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws as a float array."""
        raise NotImplementedError

    @property
    def mean(self) -> float:
        """Mean time in hours (``inf`` for ``never``)."""
        raise NotImplementedError

    @property
    def never(self) -> bool:
        """True only for ``never``: the process does not run at all."""
        return False

    def scaled(self, factor: float) -> Distribution:
        """The same distribution with every time multiplied by ``factor``.

        A fault-rate multiplier ``k`` (a driver regression) is ``fault.scaled(1 / k)``.
        """
        if not (factor > 0 and math.isfinite(factor)):
            raise ValueError(f"scale factor must be a positive number (got {factor})")
        changes: dict[str, Any] = {}
        for key, kind in self.params.items():
            if kind == "time":
                changes[key] = getattr(self, key) * factor
            elif kind == "times":
                changes[key] = tuple(x * factor for x in getattr(self, key))
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_yaml(self) -> dict[str, Any] | str:
        """The YAML form, times in hours: ``parse_distribution(d.to_yaml()) == d``."""
        form: dict[str, Any] = {"dist": self.name}
        for key, kind in self.params.items():
            value = getattr(self, key)
            form[key] = list(value) if kind == "times" else value
        return form


def _check(condition: bool, key: str, reason: str) -> None:
    if not condition:
        raise DistributionError(reason, key)


def _float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DistributionError(f"expected a number (got {value!r})", key)
    number = float(value)
    _check(math.isfinite(number), key, f"must be finite (got {value})")
    return number


@dataclass(frozen=True, slots=True)
class Never(Distribution):
    """The process is switched off: it never happens."""

    name: ClassVar[str] = "never"
    params: ClassVar[dict[str, ParamKind]] = {}

    def sample(self, rng: np.random.Generator) -> float:
        return math.inf

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, math.inf)

    @property
    def mean(self) -> float:
        return math.inf

    @property
    def never(self) -> bool:
        return True

    def to_yaml(self) -> str:
        return "never"


@dataclass(frozen=True, slots=True)
class Constant(Distribution):
    """Always ``value`` hours (0 allowed: an instant step)."""

    value: float
    name: ClassVar[str] = "constant"
    params: ClassVar[dict[str, ParamKind]] = {"value": "time"}

    def __post_init__(self) -> None:
        value = _float(self.value, "value")
        _check(value >= 0, "value", f"must be >= 0 (got {value:g})")
        object.__setattr__(self, "value", value)

    def sample(self, rng: np.random.Generator) -> float:
        return self.value

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    @property
    def mean(self) -> float:
        return self.value


@dataclass(frozen=True, slots=True)
class Exponential(Distribution):
    """Memoryless times with the given ``mean`` (the analytic checks assume these)."""

    mean: float
    name: ClassVar[str] = "exponential"
    params: ClassVar[dict[str, ParamKind]] = {"mean": "time"}

    def __post_init__(self) -> None:
        mean = _float(self.mean, "mean")
        _check(mean > 0, "mean", f"must be > 0 (got {mean:g})")
        object.__setattr__(self, "mean", mean)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)


@dataclass(frozen=True, slots=True)
class Weibull(Distribution):
    """Weibull times: ``shape`` < 1 for infant mortality, > 1 for wear-out; ``scale`` in hours."""

    shape: float
    scale: float
    name: ClassVar[str] = "weibull"
    params: ClassVar[dict[str, ParamKind]] = {"shape": "number", "scale": "time"}

    def __post_init__(self) -> None:
        shape, scale = _float(self.shape, "shape"), _float(self.scale, "scale")
        _check(shape > 0, "shape", f"must be > 0 (got {shape:g})")
        _check(scale > 0, "scale", f"must be > 0 (got {scale:g})")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "scale", scale)

    def sample(self, rng: np.random.Generator) -> float:
        return self.scale * float(rng.weibull(self.shape))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.scale * rng.weibull(self.shape, n)

    @property
    def mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)


@dataclass(frozen=True, slots=True)
class Lognormal(Distribution):
    """Lognormal times given by their ``median`` (hours) and log-space ``sigma``."""

    median: float
    sigma: float
    name: ClassVar[str] = "lognormal"
    params: ClassVar[dict[str, ParamKind]] = {"median": "time", "sigma": "number"}

    def __post_init__(self) -> None:
        median, sigma = _float(self.median, "median"), _float(self.sigma, "sigma")
        _check(median > 0, "median", f"must be > 0 (got {median:g})")
        _check(sigma >= 0, "sigma", f"must be >= 0 (got {sigma:g})")
        object.__setattr__(self, "median", median)
        object.__setattr__(self, "sigma", sigma)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.lognormal(math.log(self.median), self.sigma))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.lognormal(math.log(self.median), self.sigma, n)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


@dataclass(frozen=True, slots=True)
class Gamma(Distribution):
    """Gamma times with ``shape`` and ``scale`` (hours); mean = shape x scale."""

    shape: float
    scale: float
    name: ClassVar[str] = "gamma"
    params: ClassVar[dict[str, ParamKind]] = {"shape": "number", "scale": "time"}

    def __post_init__(self) -> None:
        shape, scale = _float(self.shape, "shape"), _float(self.scale, "scale")
        _check(shape > 0, "shape", f"must be > 0 (got {shape:g})")
        _check(scale > 0, "scale", f"must be > 0 (got {scale:g})")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "scale", scale)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.gamma(self.shape, self.scale))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.gamma(self.shape, self.scale, n)

    @property
    def mean(self) -> float:
        return self.shape * self.scale


@dataclass(frozen=True, slots=True)
class Uniform(Distribution):
    """Times spread evenly between ``low`` and ``high`` hours."""

    low: float
    high: float
    name: ClassVar[str] = "uniform"
    params: ClassVar[dict[str, ParamKind]] = {"low": "time", "high": "time"}

    def __post_init__(self) -> None:
        low, high = _float(self.low, "low"), _float(self.high, "high")
        _check(low >= 0, "low", f"must be >= 0 (got {low:g})")
        _check(low <= high, "high", f"must be >= low (got low {low:g}, high {high:g})")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True, slots=True)
class Empirical(Distribution):
    """Draws uniformly among observed ``samples`` (hours), e.g. repair times from a log."""

    samples: tuple[float, ...]
    name: ClassVar[str] = "empirical"
    params: ClassVar[dict[str, ParamKind]] = {"samples": "times"}

    def __post_init__(self) -> None:
        if isinstance(self.samples, str | bytes | Mapping) or not hasattr(self.samples, "__iter__"):
            raise DistributionError(f"expected a list of durations (got {self.samples!r})", "samples")
        samples = tuple(_float(x, f"samples.{i}") for i, x in enumerate(self.samples))
        _check(len(samples) > 0, "samples", "must not be empty")
        for i, x in enumerate(samples):
            _check(x >= 0, f"samples.{i}", f"must be >= 0 (got {x:g})")
        object.__setattr__(self, "samples", samples)

    def sample(self, rng: np.random.Generator) -> float:
        return self.samples[int(rng.integers(len(self.samples)))]

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray(self.samples)[rng.integers(len(self.samples), size=n)]

    @property
    def mean(self) -> float:
        return math.fsum(self.samples) / len(self.samples)


DISTRIBUTIONS: dict[str, type[Distribution]] = {
    cls.name: cls
    for cls in (Never, Constant, Exponential, Weibull, Lognormal, Gamma, Uniform, Empirical)
}
"""Every distribution by its ``dist:`` name."""


def _parameter(kind: ParamKind, value: Any, key: str) -> Any:
    if kind == "number":
        return _float(value, key)
    if kind == "times":
        if not isinstance(value, list | tuple):
            raise DistributionError(f"expected a list of durations (got {value!r})", key)
        return tuple(_parameter("time", x, f"{key}.{i}") for i, x in enumerate(value))
    try:
        return parse_duration(value)
    except ValueError as err:
        raise DistributionError(str(err), key) from None


def parse_distribution(value: Any) -> Distribution:
    """A distribution from its YAML form: a ``{dist: ...}`` mapping, ``never`` or a duration.

    Raises ``DistributionError`` naming the parameter at fault, if any.
    """
    if isinstance(value, Distribution):
        return value
    if isinstance(value, str) and value.strip().lower() == "never":
        return Never()
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return Constant(parse_duration(value))
        except ValueError as err:
            reason = str(err) if str(err).startswith("duration must") else DISTRIBUTION_HINT
            raise DistributionError(reason) from None
    if not isinstance(value, Mapping):
        raise DistributionError(DISTRIBUTION_HINT)
    known = ", ".join(sorted(DISTRIBUTIONS))
    if "dist" not in value:
        raise DistributionError(f"a distribution needs a 'dist:' key (one of {known})")
    cls = DISTRIBUTIONS.get(str(value["dist"]).strip().lower())
    if cls is None:
        raise DistributionError(f"unknown distribution {value['dist']!r} (known: {known})", "dist")
    for key in value:
        if key != "dist" and key not in cls.params:
            expected = ", ".join(cls.params) or "no parameters"
            raise DistributionError(f"unknown parameter for {cls.name} (expected: {expected})", key)
    missing = [key for key in cls.params if key not in value]
    if missing:
        raise DistributionError(f"{cls.name} needs {', '.join(cls.params)} (missing: {', '.join(missing)})")
    kwargs = {key: _parameter(kind, value[key], key) for key, kind in cls.params.items()}
    return cls(**kwargs)


def _validate(value: Any) -> Distribution:
    try:
        return parse_distribution(value)
    except DistributionError as err:
        raise invalid(err.reason, err.key) from None


def _serialize(dist: Distribution) -> dict[str, Any] | str:
    return dist.to_yaml()


Dist = Annotated[
    Distribution,
    PlainValidator(_validate, json_schema_input_type=dict[str, Any] | str | float),
    PlainSerializer(_serialize),
]
"""A schema field holding a distribution written in any of its YAML forms."""
