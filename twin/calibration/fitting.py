"""Fitting fault and repair distributions to incident logs: pure functions.

Times between faults are right-censored: a host's clock for one cause runs from the moment
it is back in service until its next fault of that cause, and is cut short (censored) by a
fault of another cause or by the end of the window. This is the twin's own semantics (a
component's fault clocks stop while it is down and restart when it is back), so a fit made
here means the same thing in a config.

Each family is fitted by maximum likelihood (scipy.stats log-densities and log-survival
functions, maximised with scipy.optimize.minimize). Availability is a rate times a mean
repair, so a fit that loses the sample's mean mispredicts it however well it follows the
curve: the families are ranked by AIC among those that keep it (`Fit.keeps_mean`: the mean
of a repair sample, the fault count of a censored one; the exponential always does: its MLE
mean is the time at risk per event). Rates get exact Poisson (chi-square) confidence
intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from twin.config import Distribution, Exponential, Gamma, Lognormal, Weibull

FAMILIES = ("exponential", "weibull", "lognormal", "gamma")
CENSORED_SHARE = 0.05
"""Above this share of censored times a sample's mean is not seen (see `Fit.keeps_mean`)."""
POOR_FIT_KS = 0.1
"""A fitted survival curve more than ten points of survival away from the Kaplan-Meier
curve anywhere is flagged as a poor fit."""
MIN_HOURS = 1 / 120
"""Shortest time taken from a log unless it says its own clock tick (half a minute, half
LANL's resolution): a zero-length interval would have zero density under every continuous
family."""


@dataclass(frozen=True)
class Sample:
    """Durations in hours with a flag per duration: True if observed, False if censored."""

    times: np.ndarray
    observed: np.ndarray

    @classmethod
    def of(cls, times: Sequence[float], observed: Sequence[bool] | None = None,
           floor: float = MIN_HOURS) -> Sample:  # fmt: skip
        """A sample whose times below ``floor`` (half the log's clock tick: a time recorded
        as zero was shorter than one tick) are raised to it."""
        t = np.maximum(np.asarray(times, dtype=float), floor)
        obs = np.ones(len(t), bool) if observed is None else np.asarray(observed, bool)
        return cls(t, obs)

    @property
    def events(self) -> int:
        return int(self.observed.sum())

    @property
    def censored(self) -> int:
        return int((~self.observed).sum())

    def mean(self) -> tuple[float, float]:
        """The empirical mean time and its standard error. With censoring it is the total
        time at risk over the events (the mean that keeps the rate), its error from both the
        spread of the times and the Poisson count of events; without, the sample mean and
        sd / sqrt(n). Both carry the spread: a heavy tail makes a mean uncertain."""
        n, events, total = len(self.times), self.events, float(self.times.sum())
        if events == 0:
            return math.inf, math.inf
        mean = total / events
        if n < 2:
            return mean, mean
        spread = float(self.times.var(ddof=1))
        if self.censored:
            return mean, mean * math.sqrt(n * spread / total**2 + 1 / events)
        return mean, math.sqrt(spread / n)


@dataclass(frozen=True)
class Fit:
    """One family fitted to a sample: parameters in hours with their standard errors (from
    the observed information), log-likelihood, AIC, the Kolmogorov distance between the
    Kaplan-Meier survival curve and the fitted one, and the sample's empirical mean with
    its standard error (what a mean-preserving fit must reproduce)."""

    family: str
    params: dict[str, float]
    loglik: float
    aic: float
    n: int
    censored: int
    ks_distance: float
    stderr: dict[str, float] = field(default_factory=dict)
    empirical_mean: float = math.nan
    empirical_mean_stderr: float = math.nan
    events: int = 0
    expected_events: float = math.nan
    """The fitted model's expected count of events over the sample's times (the sum of
    their cumulative hazards): what a censored sample's rate is checked against."""

    @property
    def mean(self) -> float:
        """The fitted distribution's mean, hours."""
        return float(self.frozen().mean())

    @property
    def keeps_mean(self) -> bool:
        """True if the fit keeps what availability depends on. A (nearly) uncensored sample,
        such as repair times: the sample's mean is inside the 95 % range a sample mean of
        this size would have if the fit were true (fitted mean +- 1.96 fitted sd / sqrt n;
        the data's own sd would let one huge outage excuse any fit). A censored one, such
        as times between faults, whose mean the window does not show: the expected count
        of faults over the observed time at risk is inside the observed count's 95 % Poisson
        interval (it keeps the rate)."""
        if self.censored > CENSORED_SHARE * self.n:
            return abs(self.expected_events - self.events) <= 1.96 * math.sqrt(self.events)
        spread = float(self.frozen().std()) / math.sqrt(max(self.n, 1))
        return abs(self.mean - self.empirical_mean) <= 1.96 * spread

    def kept(self) -> str:
        """What `keeps_mean` compared, fitted against data, in words."""
        if self.censored > CENSORED_SHARE * self.n:
            return f"{self.expected_events:.0f} events expected / {self.events} seen"
        return f"mean {self.mean:.3g} h / data {self.empirical_mean:.3g} h"

    @property
    def poor(self) -> bool:
        """A poor fit: the fitted survival curve strays more than `POOR_FIT_KS` from the
        Kaplan-Meier curve somewhere, or the mean is lost."""
        return self.ks_distance > POOR_FIT_KS or not self.keeps_mean

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

    def candidate(self) -> dict[str, object]:
        """The fit as one of ``--json``'s ``candidates``."""
        return {"params": dict(self.params), "stderr": dict(self.stderr),
                "loglik": self.loglik, "aic": self.aic, "mean_hours": self.mean,
                "keeps_mean": self.keeps_mean, "ks_distance": self.ks_distance}  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        return {"family": self.family, **self.candidate(), "n": self.n,
                "censored": self.censored, "poor_fit": self.poor,
                "empirical_mean_hours": self.empirical_mean,
                "empirical_mean_stderr": self.empirical_mean_stderr, "events": self.events,
                "expected_events": self.expected_events}  # fmt: skip


def _scipy_form(family: str, p: dict[str, float]) -> tuple[Any, tuple[float, ...], float]:
    """A family's scipy.stats distribution, shape arguments and scale."""
    if family == "exponential":
        return stats.expon, (), p["mean"]
    if family == "weibull":
        return stats.weibull_min, (p["shape"],), p["scale"]
    if family == "lognormal":
        return stats.lognorm, (p["sigma"],), p["median"]
    if family == "gamma":
        return stats.gamma, (p["shape"],), p["scale"]
    raise ValueError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")


def _frozen(family: str, p: dict[str, float]) -> stats.rv_continuous:
    rv, shapes, scale = _scipy_form(family, p)
    return rv(*shapes, scale=scale)


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
    """Right-censored log-likelihood: log f at observed times, log S at censored ones (the
    optimiser calls this thousands of times: scipy's unfrozen calls, freezing is costly)."""
    rv, shapes, scale = _scipy_form(family, params)
    t, obs = sample.times, sample.observed
    with np.errstate(over="ignore"):  # the optimiser's far corners: -inf, rejected there
        return float(rv.logpdf(t[obs], *shapes, scale=scale).sum()
                     + rv.logsf(t[~obs], *shapes, scale=scale).sum())  # fmt: skip


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
    errors = _stderr(_negative_loglik(family, scaled), theta)
    stderr = {key: value * err for (key, value), err in zip(params.items(), errors, strict=True)}
    mean, mean_err = sample.mean()
    frozen = _frozen(family, params)
    expected = float(-frozen.logsf(sample.times).sum())
    return Fit(family, params, loglik, 2 * k - 2 * loglik, len(sample.times), sample.censored,
               ks_distance(sample, frozen), stderr, mean, mean_err, sample.events,
               expected)  # fmt: skip


def _stderr(objective: Callable[[np.ndarray], float], theta: np.ndarray) -> np.ndarray:
    """Standard errors of the log-parameters: the inverse of the observed information (the
    negative log-likelihood's Hessian, by central differences). Every parameter is
    ``exp(theta)`` times a unit, so a parameter's own standard error is it times this."""
    k, h = len(theta), 1e-4
    steps = np.eye(k) * h
    info = np.empty((k, k))
    for i, j in np.ndindex(k, k):
        corners = [objective(theta + a * steps[i] + b * steps[j]) * a * b
                   for a in (1, -1) for b in (1, -1)]  # fmt: skip
        info[i, j] = sum(corners) / (4 * h * h)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full(k, math.nan)
    return np.sqrt(np.clip(np.diag(cov), 0, None))


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
    """Every family fitted, best first: the lowest AIC among the fits that keep the mean,
    then the others by AIC; with fewer than `MIN_EVENTS_FOR_SHAPE` events the exponential
    (when fitted) comes first whatever its AIC."""
    fits = sorted((fit_family(f, sample) for f in families),
                  key=lambda fit: (not fit.keeps_mean, fit.aic))  # fmt: skip
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

    @property
    def reading(self) -> str:
        """The test's result and what it means for a stationary fit, in words."""
        if not math.isfinite(self.statistic):
            return "Laplace trend test: too few events to test for a trend."
        numbers = f"Laplace trend test U = {self.statistic:.2f}, p = {self.p_value:.2g}"
        if not self.significant:
            return f"{numbers}: no significant trend, a stationary fit is consistent with the data."
        if self.statistic < 0:
            return f"{numbers}: the rate fell over the window: a stationary fit over-predicts."
        return f"{numbers}: the rate rose over the window: a stationary fit under-predicts."


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
