"""Fitting fault and repair distributions to incident logs: pure functions.

Times between faults are right-censored: a host's clock for one cause runs from the moment
it is back in service until its next fault of that cause, and is cut short (censored) by a
fault of another cause or by the end of the window. This is the twin's own semantics (a
component's fault clocks stop while it is down and restart when it is back), so a fit made
here means the same thing in a config.

Each family is fitted by maximum likelihood (scipy.stats log-densities and log-survival
functions, maximised with scipy.optimize.minimize) and the families are ranked by AIC.
Rates get exact Poisson (chi-square) confidence intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from twin.config import Distribution, Exponential, Gamma, Lognormal, Weibull

FAMILIES = ("exponential", "weibull", "lognormal", "gamma")
MIN_HOURS = 1 / 120
"""Shortest time taken from a log (half a minute, half LANL's resolution): a zero-length
interval would have zero density under every continuous family."""


@dataclass(frozen=True)
class Sample:
    """Durations in hours with a flag per duration: True if observed, False if censored."""

    times: np.ndarray
    observed: np.ndarray

    @classmethod
    def of(cls, times: Sequence[float], observed: Sequence[bool] | None = None) -> Sample:
        t = np.maximum(np.asarray(times, dtype=float), MIN_HOURS)
        obs = np.ones(len(t), bool) if observed is None else np.asarray(observed, bool)
        return cls(t, obs)

    @property
    def events(self) -> int:
        return int(self.observed.sum())

    @property
    def censored(self) -> int:
        return int((~self.observed).sum())


@dataclass(frozen=True)
class Fit:
    """One family fitted to a sample: parameters in hours, log-likelihood, AIC and the
    Kolmogorov distance between the Kaplan-Meier survival curve and the fitted one."""

    family: str
    params: dict[str, float]
    loglik: float
    aic: float
    n: int
    censored: int
    ks_distance: float

    def frozen(self) -> stats.rv_continuous:
        """The fit as a frozen scipy.stats distribution (hours)."""
        return _frozen(self.family, self.params)

    def distribution(self) -> Distribution:
        """The fit as a twin config distribution."""
        p = self.params
        if self.family == "exponential":
            return Exponential(mean=p["mean"])
        if self.family == "weibull":
            return Weibull(shape=p["shape"], scale=p["scale"])
        if self.family == "lognormal":
            return Lognormal(median=p["median"], sigma=p["sigma"])
        return Gamma(shape=p["shape"], scale=p["scale"])

    def as_dict(self) -> dict[str, object]:
        return {"family": self.family, "params": dict(self.params), "loglik": self.loglik,
                "aic": self.aic, "n": self.n, "censored": self.censored,
                "ks_distance": self.ks_distance, "mean_hours": self.frozen().mean()}  # fmt: skip


def _frozen(family: str, p: dict[str, float]) -> stats.rv_continuous:
    if family == "exponential":
        return stats.expon(scale=p["mean"])
    if family == "weibull":
        return stats.weibull_min(p["shape"], scale=p["scale"])
    if family == "lognormal":
        return stats.lognorm(p["sigma"], scale=p["median"])
    if family == "gamma":
        return stats.gamma(p["shape"], scale=p["scale"])
    raise ValueError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")


def scipy_distribution(dist: Distribution) -> stats.rv_continuous | None:
    """A twin distribution as a frozen scipy.stats one (None for a family scipy is not
    asked to handle here: constant, uniform, empirical, never)."""
    params = dist.to_yaml()
    if isinstance(params, dict) and params.get("dist") in FAMILIES:
        family = params.pop("dist")
        return _frozen(family, params)
    return None


def _params(family: str, theta: np.ndarray, unit: float) -> dict[str, float]:
    """Log-space optimiser coordinates to named parameters in hours."""
    a, b = np.exp(theta[0]), np.exp(theta[-1])
    if family == "exponential":
        return {"mean": a * unit}
    if family == "lognormal":
        return {"median": a * unit, "sigma": b}
    return {"shape": a, "scale": b * unit}


def log_likelihood(family: str, params: dict[str, float], sample: Sample) -> float:
    """Right-censored log-likelihood: log f at observed times, log S at censored ones."""
    dist = _frozen(family, params)
    t, obs = sample.times, sample.observed
    return float(dist.logpdf(t[obs]).sum() + dist.logsf(t[~obs]).sum())


def fit_family(family: str, sample: Sample) -> Fit:
    """Maximum-likelihood fit of one family to a right-censored sample."""
    if sample.events == 0:
        raise ValueError("cannot fit a distribution to a sample with no observed events")
    unit = float(sample.times.sum() / sample.events)  # the exponential MLE of the mean
    scaled = Sample(sample.times / unit, sample.observed)
    if family == "exponential":
        theta = np.array([0.0])
    else:
        logs = np.log(scaled.times[scaled.observed])
        spread = max(float(logs.std()), 0.1) if len(logs) > 1 else 1.0
        start = {"weibull": [0.0, 0.0], "gamma": [0.0, 0.0],
                 "lognormal": [float(logs.mean()), math.log(spread)]}[family]  # fmt: skip
        objective = _negative_loglik(family, scaled)
        options = {"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000}
        best = optimize.minimize(objective, np.array(start), method="Nelder-Mead", options=options)
        theta = best.x
    params = _params(family, theta, unit)
    loglik = log_likelihood(family, params, sample)
    k = 1 if family == "exponential" else 2
    return Fit(family, params, loglik, 2 * k - 2 * loglik, len(sample.times), sample.censored,
               ks_distance(sample, _frozen(family, params)))  # fmt: skip


def _negative_loglik(family: str, sample: Sample) -> Callable[[np.ndarray], float]:
    def objective(theta: np.ndarray) -> float:
        if np.any(np.abs(theta) > 50):
            return math.inf
        value = -log_likelihood(family, _params(family, theta, 1.0), sample)
        return value if math.isfinite(value) else 1e300

    return objective


MIN_EVENTS_FOR_SHAPE = 20
"""Below this many observed events a two-parameter family is not trusted over the
exponential: with heavy censoring a handful of events lets a lognormal or Weibull fit
an arbitrarily long tail (a mean of centuries) that AIC cannot rule out."""


def fit_all(sample: Sample, families: Sequence[str] = FAMILIES) -> list[Fit]:
    """Every family fitted, best (lowest AIC) first; with fewer than `MIN_EVENTS_FOR_SHAPE`
    events the exponential (when fitted) comes first whatever its AIC."""
    fits = sorted((fit_family(f, sample) for f in families), key=lambda fit: fit.aic)
    if sample.events < MIN_EVENTS_FOR_SHAPE:
        fits.sort(key=lambda fit: fit.family != "exponential")
    return fits


def kaplan_meier(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival estimate: event times and S just after each."""
    order = np.argsort(sample.times, kind="stable")
    t, obs = sample.times[order], sample.observed[order]
    at_risk = len(t) - np.arange(len(t))
    frame = pd.DataFrame({"t": t, "d": obs.astype(int), "n": at_risk})
    grouped = frame.groupby("t").agg(d=("d", "sum"), n=("n", "max"))
    grouped = grouped[grouped["d"] > 0]
    surv = np.cumprod(1 - grouped["d"].to_numpy() / grouped["n"].to_numpy())
    return grouped.index.to_numpy(float), surv


def ks_distance(sample: Sample, dist: stats.rv_continuous) -> float:
    """Largest gap between the Kaplan-Meier curve and a fitted survival function (both
    sides of each step): a goodness-of-fit statistic that respects censoring."""
    t, surv = kaplan_meier(sample)
    if len(t) == 0:
        return math.nan
    fitted = dist.sf(t)
    before = np.concatenate([[1.0], surv[:-1]])
    return float(max(np.abs(surv - fitted).max(), np.abs(before - fitted).max()))


@dataclass(frozen=True)
class Rate:
    """Events per host-year with an exact 95 % Poisson confidence interval."""

    mean: float
    ci95_low: float
    ci95_high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci95_low": self.ci95_low, "ci95_high": self.ci95_high}


def poisson_rate(count: int, exposure: float, per: float = 8760.0) -> Rate:
    """``count`` events in ``exposure`` hours as a rate per ``per`` hours (a host-year),
    with the exact (Garwood, chi-square) 95 % interval."""
    if exposure <= 0:
        return Rate(math.nan, math.nan, math.nan)
    low = stats.chi2.ppf(0.025, 2 * count) / 2 if count > 0 else 0.0
    high = stats.chi2.ppf(0.975, 2 * count + 2) / 2
    scale = per / exposure
    return Rate(count * scale, float(low) * scale, float(high) * scale)


@dataclass(frozen=True)
class Trend:
    """Laplace's test for a trend in event times on (0, T]: ``statistic`` is standard normal
    when the rate is constant (positive: the rate grows; negative: it falls)."""

    statistic: float
    p_value: float
    beta: float = field(default=math.nan)
    """Crow-AMSAA (power-law NHPP) shape: 1 constant, > 1 growing, < 1 falling rate."""

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def laplace_trend(times: Sequence[float], horizon: float) -> Trend:
    """Laplace trend test and Crow-AMSAA shape for pooled event times in hours since the
    window start (time-truncated at ``horizon``)."""
    t = np.asarray(times, dtype=float)
    n = len(t)
    if n < 2 or horizon <= 0:
        return Trend(math.nan, math.nan)
    u = (t.mean() - horizon / 2) / (horizon * math.sqrt(1 / (12 * n)))
    p = 2 * stats.norm.sf(abs(u))
    beta = crow_amsaa(t, horizon)[1]
    return Trend(float(u), float(p), float(beta))


def crow_amsaa(times: Sequence[float], horizon: float) -> tuple[float, float]:
    """Power-law NHPP (Crow-AMSAA) fit to pooled event times on (0, ``horizon``]: the
    expected count by time t is ``lam * t ** beta``. Returns ``(lam, beta)`` (nan when
    there are fewer than two events)."""
    t = np.maximum(np.asarray(times, dtype=float), MIN_HOURS)
    t = t[t < horizon]
    if len(t) < 2:
        return math.nan, math.nan
    beta = len(t) / float(np.log(horizon / t).sum())
    return len(t) / horizon**beta, beta
