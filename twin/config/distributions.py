"""Time distributions for faults, repairs, detection, reboots and responses, in hours.

Each distribution is a small frozen value: it samples with a ``numpy.random.Generator``, knows
its mean (for the analytic checks) and writes itself back in the YAML form it was read from.
In YAML a distribution is a mapping with a ``dist:`` key, a published fit (``{prefab: g5k06,
family: weibull, part: fault}``, see `PREFAB_FITS`), the word ``never`` (the process is
switched off) or a bare duration, which means a constant (``reboot_time: 6m``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import numpy as np
from pydantic import PlainSerializer, PlainValidator
from scipy import integrate, stats

from .durations import invalid, parse_duration

DISTRIBUTION_HINT = (
    "expected a distribution ({dist: exponential, mean: 2y}, 'never' or a duration like 6m)"
)


class Param(NamedTuple):
    """A distribution parameter: a ``time`` (a duration, scales with time), a plain ``number``,
    or ``times`` (a list of durations); ``zero_ok`` allows 0, else it must be > 0."""

    kind: Literal["time", "number", "times"]
    zero_ok: bool = False


class DistributionError(ValueError):
    """A distribution that cannot exist; ``key`` names the offending parameter, if one does."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.reason = reason
        self.key = key


def _bounded(value: Any, key: str, zero_ok: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DistributionError(f"expected a number (got {value!r})", key)
    number = float(value)
    if not math.isfinite(number):
        raise DistributionError(f"must be finite (got {number})", key)
    if number < 0 or (number == 0 and not zero_ok):
        raise DistributionError(f"must be {'>=' if zero_ok else '>'} 0 (got {number:g})", key)
    return number


class Distribution:
    """A distribution of a time in hours; subclasses are frozen dataclasses whose fields are
    the ``params``, checked and made floats on construction."""

    __slots__ = ()
    name: ClassVar[str]
    params: ClassVar[dict[str, Param]] = {}
    """Parameters in YAML order."""

    def __post_init__(self) -> None:
        for key, param in self.params.items():
            value = getattr(self, key)
            if param.kind != "times":
                checked: Any = _bounded(value, key, param.zero_ok)
            elif isinstance(value, list | tuple) and value:
                checked = tuple(
                    _bounded(x, f"{key}.{i}", param.zero_ok) for i, x in enumerate(value)
                )
            else:
                raise DistributionError(
                    f"expected a non-empty list of durations (got {value!r})", key
                )
            object.__setattr__(self, key, checked)

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
        for key, param in self.params.items():
            if param.kind == "time":
                changes[key] = getattr(self, key) * factor
            elif param.kind == "times":
                changes[key] = tuple(x * factor for x in getattr(self, key))
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def cumulative_hazard(self, t: float) -> float:
        """H(t) = -log P(T > t): the hazard accumulated by age ``t``.

        Defined for the families a fault clock can be boosted in (`hazard_scaled`);
        the others raise `DistributionError`.
        """
        raise DistributionError(f"{self.name} times have no hazard to boost")

    def hazard_scaled(self, factor: float) -> Distribution:
        """The distribution whose hazard is ``factor`` times this one's at every age:
        survival ``S(t) ** factor``, so its events come ``factor`` times as often (the
        proposal of rare-event acceleration, `twin.rare_events`)."""
        raise DistributionError(f"{self.name} times have no hazard to boost")

    def to_yaml(self) -> dict[str, Any] | str:
        """The YAML form, times in hours: ``parse_distribution(d.to_yaml()) == d``."""
        form: dict[str, Any] = {"dist": self.name}
        for key, param in self.params.items():
            value = getattr(self, key)
            form[key] = list(value) if param.kind == "times" else value
        return form


@dataclass(frozen=True, slots=True)
class Never(Distribution):
    """The process is switched off: it never happens."""

    name: ClassVar[str] = "never"

    def sample(self, rng: np.random.Generator) -> float:
        return math.inf

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, math.inf)

    def cumulative_hazard(self, t: float) -> float:
        return 0.0

    def hazard_scaled(self, factor: float) -> Distribution:
        return self

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
    params: ClassVar[dict[str, Param]] = {"value": Param("time", zero_ok=True)}

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
    params: ClassVar[dict[str, Param]] = {"mean": Param("time")}

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)

    def cumulative_hazard(self, t: float) -> float:
        return t / self.mean

    def hazard_scaled(self, factor: float) -> Distribution:
        return Exponential(self.mean / factor)


@dataclass(frozen=True, slots=True)
class Weibull(Distribution):
    """Weibull times: ``shape`` < 1 for infant mortality, > 1 for wear-out; ``scale`` in hours."""

    shape: float
    scale: float
    name: ClassVar[str] = "weibull"
    params: ClassVar[dict[str, Param]] = {"shape": Param("number"), "scale": Param("time")}

    def sample(self, rng: np.random.Generator) -> float:
        return self.scale * float(rng.weibull(self.shape))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.scale * rng.weibull(self.shape, n)

    def cumulative_hazard(self, t: float) -> float:
        return (t / self.scale) ** self.shape

    def hazard_scaled(self, factor: float) -> Distribution:
        return Weibull(self.shape, self.scale * factor ** (-1 / self.shape))

    @property
    def mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)


@dataclass(frozen=True, slots=True)
class Lognormal(Distribution):
    """Lognormal times given by their ``median`` (hours) and log-space ``sigma``."""

    median: float
    sigma: float
    name: ClassVar[str] = "lognormal"
    params: ClassVar[dict[str, Param]] = {
        "median": Param("time"),
        "sigma": Param("number", zero_ok=True),
    }

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.lognormal(math.log(self.median), self.sigma))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.lognormal(math.log(self.median), self.sigma, n)

    def frozen(self) -> Any:
        """The same distribution as a frozen `scipy.stats` one."""
        return stats.lognorm(self.sigma, scale=self.median)

    def cumulative_hazard(self, t: float) -> float:
        return float(-self.frozen().logsf(t))

    def hazard_scaled(self, factor: float) -> Distribution:
        return HazardScaled(self, factor)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


@dataclass(frozen=True, slots=True)
class Gamma(Distribution):
    """Gamma times with ``shape`` and ``scale`` (hours); mean = shape x scale."""

    shape: float
    scale: float
    name: ClassVar[str] = "gamma"
    params: ClassVar[dict[str, Param]] = {"shape": Param("number"), "scale": Param("time")}

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.gamma(self.shape, self.scale))

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.gamma(self.shape, self.scale, n)

    def frozen(self) -> Any:
        """The same distribution as a frozen `scipy.stats` one."""
        return stats.gamma(self.shape, scale=self.scale)

    def cumulative_hazard(self, t: float) -> float:
        return float(-self.frozen().logsf(t))

    def hazard_scaled(self, factor: float) -> Distribution:
        return HazardScaled(self, factor)

    @property
    def mean(self) -> float:
        return self.shape * self.scale


@dataclass(frozen=True, slots=True)
class Uniform(Distribution):
    """Times spread evenly between ``low`` and ``high`` hours."""

    low: float
    high: float
    name: ClassVar[str] = "uniform"
    params: ClassVar[dict[str, Param]] = {
        "low": Param("time", zero_ok=True),
        "high": Param("time", zero_ok=True),
    }

    def __post_init__(self) -> None:
        Distribution.__post_init__(self)
        if self.low > self.high:
            raise DistributionError(
                f"must be >= low (got low {self.low:g}, high {self.high:g})", "high"
            )

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
    params: ClassVar[dict[str, Param]] = {"samples": Param("times", zero_ok=True)}

    def sample(self, rng: np.random.Generator) -> float:
        return self.samples[int(rng.integers(len(self.samples)))]

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray(self.samples)[rng.integers(len(self.samples), size=n)]

    @property
    def mean(self) -> float:
        return math.fsum(self.samples) / len(self.samples)


@dataclass(frozen=True, slots=True)
class HazardScaled(Distribution):
    """``base`` with its hazard multiplied by ``factor`` (survival ``S(t) ** factor``), for
    the families with no closed form under that change: drawn by inverting the survival,
    ``t = S^-1(U ** (1 / factor))``. Built by `hazard_scaled`, never read from YAML."""

    base: Lognormal | Gamma
    factor: float
    name: ClassVar[str] = "hazard_scaled"

    def __post_init__(self) -> None:
        if not (self.factor > 0 and math.isfinite(self.factor)):
            raise DistributionError(f"must be a positive number (got {self.factor})", "factor")

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.sample_many(rng, 1)[0])

    def sample_many(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray(self.base.frozen().isf(rng.random(n) ** (1 / self.factor)), float)

    @property
    def mean(self) -> float:
        """The integral of the survival ``S(t) ** factor`` (numerically)."""
        base = self.base.frozen()
        return float(integrate.quad(lambda t: base.sf(t) ** self.factor, 0, math.inf)[0])

    def cumulative_hazard(self, t: float) -> float:
        return self.factor * self.base.cumulative_hazard(t)

    def hazard_scaled(self, factor: float) -> Distribution:
        return HazardScaled(self.base, self.factor * factor)


DISTRIBUTIONS: dict[str, type[Distribution]] = {
    cls.name: cls
    for cls in (Never, Constant, Exponential, Weibull, Lognormal, Gamma, Uniform, Empirical)
}
"""Every distribution by its ``dist:`` name."""


PREFAB_FAMILIES = ("exponential", "weibull", "lognormal", "gamma")
PREFAB_FITS: dict[str, tuple[tuple[float, ...], ...]] = {
    # one column per family of PREFAB_FAMILIES: the time between failures' parameters, then
    # the unavailability duration's, in hours (lognormal: mu, sigma of ln(hours))
    "g5k06": ((32.41, 7.41), (0.48, 14.37, 0.35, 0.47), (1.51, 2.42, -2.0, 2.2),
              (0.34, 94.35, 0.19, 39.92)),
    "lanl05": ((1779.99, 5.92), (0.48, 816.60, 0.58, 2.18), (5.56, 2.39, 0.05, 1.42),
               (0.35, 5102.71, 0.38, 15.44)),
    "ldns04": ((141.06, 8.61), (0.51, 79.30, 0.63, 5.62), (3.25, 2.33, 0.91, 1.64),
               (0.39, 362.43, 0.51, 16.87)),
    "microsoft99": ((67.01, 16.49), (0.55, 35.30, 0.60, 9.34), (2.62, 1.84, 1.42, 1.54),
                    (0.41, 162.19, 0.46, 35.52)),
    "nd07cpu": ((13.73, 4.25), (0.45, 4.16, 0.51, 0.74), (0.30, 2.20, -1.02, 1.27),
                (0.30, 46.16, 0.28, 15.07)),
    "overnet03": ((2.29, 12.00), (0.85, 2.04, 0.44, 2.98), (0.19, 0.98, 0.08, 1.80),
                  (0.91, 2.53, 0.29, 41.64)),
    "pl05": ((159.49, 49.61), (0.33, 19.35, 0.36, 5.59), (1.44, 2.86, 0.40, 2.45),
             (0.20, 788.03, 0.21, 237.65)),
    "skype06": ((16.27, 14.31), (0.64, 10.86, 0.63, 9.48), (1.60, 1.57, 1.40, 1.73),
                (0.53, 30.79, 0.50, 28.53)),
    "websites02": ((11.85, 1.18), (0.46, 3.68, 0.65, 0.61), (0.23, 2.02, -1.12, 1.13),
                   (0.31, 38.67, 0.50, 2.37)),
}  # fmt: skip
"""Per-node fits of the Failure Trace Archive datasets (Javadi, Kondo, Iosup, Epema, "The
Failure Trace Archive", JPDC 73(8), 2013), the numbers OpenDC ships as its prefab failure
models: ``{prefab: g5k06, family: weibull, part: fault}`` names one of them."""

PREFAB_PARTS = ("fault", "repair")


def prefab_distribution(value: Mapping[str, Any]) -> Distribution:
    """A published Failure Trace Archive fit: ``{prefab, family, part}`` where ``part`` is
    ``fault`` (time between failures) or ``repair`` (unavailability duration)."""
    unknown = sorted(set(value) - {"prefab", "family", "part"})
    if unknown:
        raise DistributionError("unknown parameter for a prefab (expected: prefab, family, part)",
                                str(unknown[0]))  # fmt: skip
    dataset = str(value["prefab"]).strip().lower()
    if dataset not in PREFAB_FITS:
        raise DistributionError(f"unknown prefab {value['prefab']!r} "
                                f"(known: {', '.join(PREFAB_FITS)})", "prefab")  # fmt: skip
    family = str(value.get("family", "")).strip().lower()
    if family not in PREFAB_FAMILIES:
        raise DistributionError(f"expected one of {', '.join(PREFAB_FAMILIES)} "
                                f"(got {value.get('family')!r})", "family")  # fmt: skip
    part = str(value.get("part", "")).strip().lower()
    if part not in PREFAB_PARTS:
        raise DistributionError(f"expected fault or repair (got {value.get('part')!r})", "part")
    column = PREFAB_FITS[dataset][PREFAB_FAMILIES.index(family)]
    size = len(column) // 2
    params = column[size * PREFAB_PARTS.index(part) :][:size]
    if family == "exponential":
        return Exponential(params[0])
    if family == "weibull":
        return Weibull(*params)
    if family == "lognormal":
        return Lognormal(math.exp(params[0]), params[1])
    return Gamma(*params)


def _hours(value: Any, key: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise DistributionError(str(err), key) from None


def _from_yaml(param: Param, value: Any, key: str) -> Any:
    """A parameter as written, durations turned into hours; the constructor checks the rest."""
    if param.kind == "time":
        return _hours(value, key)
    if param.kind == "times" and isinstance(value, list | tuple):
        return [_hours(x, f"{key}.{i}") for i, x in enumerate(value)]
    return value


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
    if "prefab" in value:
        return prefab_distribution(value)
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
        raise DistributionError(
            f"{cls.name} needs {', '.join(cls.params)} (missing: {', '.join(missing)})"
        )
    kwargs = {key: _from_yaml(param, value[key], key) for key, param in cls.params.items()}
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
