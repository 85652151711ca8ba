"""Rare-event acceleration: importance sampling of the faults of shared components.

Whole-rack outages (a top-of-rack switch, a power feed, a datastore) are rare, and they
dominate guest downtime: a handful of plain replications sees a few of them, or none.
With ``rare_events.boost`` (``twin run --rare-events``), each kind of component named
draws its time to fault at ``boost`` times its hazard (proportional hazards: survival
``S(t) ** b``; an exponential's mean divided by ``b``), and every replication carries the
likelihood ratio of what it sampled, the configured law over the boosted one::

    log L = sum over fault clocks of (b - 1) * H(age) - log b * [the clock fired]

where ``H`` is the cumulative hazard of the configured fault distribution and ``age`` how
long the clock ran: to its fault, to an injected outage that stopped it, or to the
horizon. Repairs are not boosted. For every metric X, E_boosted[L X] = E[X]; `estimate`
weighs the replications by L, with L as a control variate of known mean 1 (bias O(1/n);
docs/statistics.md says why this estimator, what it gains and how well it covers).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize

from twin.config import ConfigError, FleetConfig, validate_config
from twin.config.distributions import Distribution
from twin.topology import NodeKind, build_topology

if TYPE_CHECKING:
    from twin.agents.component import Component

BOOSTED_KINDS = (NodeKind.TOR, NodeKind.SPINE, NodeKind.POWER, NodeKind.STORAGE)
"""The components whose faults can be boosted: switches, power feeds and datastores."""
MAX_BOOST = 1e6


class LikelihoodRatio:
    """One replication's likelihood ratio of its component faults, as a log, and the
    boosted fault law each kind of component draws from."""

    def __init__(self, boost: Mapping[str, float]) -> None:
        self.boost = {kind: float(b) for kind, b in boost.items() if b != 1}
        self.log = 0.0
        self._laws: dict[tuple[str, Distribution], Distribution] = {}

    @classmethod
    def of(cls, config: FleetConfig) -> LikelihoodRatio:
        return cls(config.rare_events.boost if config.rare_events else {})

    def fault_law(self, kind: str, fault: Distribution) -> Distribution:
        """What a component of ``kind`` draws its time to fault from: one object per law,
        so that its draws come from one pool (`twin.draws`)."""
        factor = self.boost.get(kind)
        if factor is None:
            return fault
        key = (kind, fault)
        if key not in self._laws:
            self._laws[key] = fault.hazard_scaled(factor)
        return self._laws[key]

    def fired(self, component: Component, age: float) -> None:
        """The component's fault clock went off after ``age`` hours."""
        factor = self.boost.get(component.kind)
        if factor is not None:
            self.log += (factor - 1) * component.fault.cumulative_hazard(age) - math.log(factor)

    def survived(self, component: Component, age: float) -> None:
        """The component's fault clock was stopped, still running, after ``age`` hours."""
        self.log += self.survival_term(component, age)

    def survival_term(self, component: Component, age: float) -> float:
        factor = self.boost.get(component.kind)
        if factor is None:
            return 0.0
        return (factor - 1) * component.fault.cumulative_hazard(age)


# -- choosing the boosts -------------------------------------------------------------------


def component_counts(config: FleetConfig) -> dict[str, int]:
    """How many components of each boostable kind the fleet has (datastores per cluster
    are estimated from the hosts per pod and the cluster size)."""
    topo = build_topology(config.topology, config.hosts.inventory)
    counts = dict.fromkeys(BOOSTED_KINDS, 0)
    for name in [*topo.switches, *topo.feeds]:
        kind = topo.kind(name)
        if kind in counts:
            counts[kind] += 1
    pods = Counter(topo.host_pod)
    if config.storage.scope == "pod":
        counts[NodeKind.STORAGE] = len(pods)
    else:
        mix = [share for share in config.hosts.architecture_mix.values() if share > 0]
        size = config.hosts.cluster_size
        counts[NodeKind.STORAGE] = sum(
            math.ceil(n * share / sum(mix) / size) for n in pods.values() for share in mix
        )
    return {str(kind): n for kind, n in counts.items()}


def expected_faults(
    config: FleetConfig,
    boost: Mapping[str, float] | None = None,
    counts: Mapping[str, int] | None = None,
) -> dict:
    """Faults of each kind expected in one replication (components x horizon / mean time
    to fault), at the configured hazards or at ``boost`` times them; ``counts`` are the
    `component_counts` when already known (they build the topology)."""
    boost = boost or {}
    processes = config.component_processes
    out = {}
    for kind, count in (counts or component_counts(config)).items():
        mean = processes[kind][0].mean
        faults = count * config.horizon / mean if math.isfinite(mean) else 0.0
        out[kind] = faults * boost.get(kind, 1.0)
    return out


def relative_variance(expected: Sequence[float], boost: Sequence[float]) -> float:
    """The sum over kinds of the relative variance of one replication's importance-sampled
    estimate of that kind's number of faults, for Poisson faults of mean ``expected``
    boosted by ``boost``:

        sum_k (M (1 / (b_k mu_k) + 1 / b_k^2) - 1),  M = exp(sum_j mu_j (b_j - 1)^2 / b_j)

    (M is the weights' second moment E[L^2]; plain sampling, b = 1, gives sum 1 / mu_k)."""
    mu, b = np.asarray(expected, float), np.asarray(boost, float)
    spread = math.exp(min(float(np.sum(mu * (b - 1) ** 2 / b)), 700.0))
    return float(np.sum(spread * (1 / (b * mu) + 1 / b**2) - 1))


def automatic_boost(config: FleetConfig) -> dict[str, float]:
    """The boosts that minimise `relative_variance` for this fleet, rounded to two
    significant figures; kinds that never fail, or whose faults have no hazard, are left
    alone. Every kind of outage counts alike, so a rare kind is boosted to well under one
    fault per replication when there are several, and a common one little or not at all.
    Any boost keeps E[L X] = E[X]: this one makes rare outages common without letting
    the weights spread so far that a few replications carry the estimate."""
    expected = {
        kind: mu
        for kind, mu in expected_faults(config).items()
        if mu > 0 and boostable(config, kind)
    }
    if not expected:
        return {}
    mu = list(expected.values())
    best = optimize.minimize(
        lambda logs: relative_variance(mu, np.exp(logs)),
        x0=np.log(np.clip(1.0 / (len(mu) * np.asarray(mu)), 1.0, MAX_BOOST)),
        bounds=[(0.0, math.log(MAX_BOOST))] * len(mu),
        method="L-BFGS-B",
    )
    boost = {}
    for kind, log_b in zip(expected, best.x, strict=True):
        b = float(f"{math.exp(log_b):.2g}")
        if b > 1:
            boost[kind] = b
    return boost


def boostable(config: FleetConfig, kind: str) -> bool:
    """Whether ``kind``'s fault distribution has a hazard to boost (not a constant,
    uniform or empirical time)."""
    try:
        config.component_processes[kind][0].hazard_scaled(2.0)
    except ValueError:
        return False
    return True


def accelerated(config: FleetConfig, boost: Mapping[str, float] | None = None) -> FleetConfig:
    """``config`` with rare-event acceleration on: ``boost`` if given, else the config's
    own ``rare_events.boost`` if it names any, else `automatic_boost`. Validated as a
    config is, so a boost the config cannot take is a `ConfigError` naming it."""
    if boost is None and config.rare_events is not None and config.rare_events.boost:
        return config
    boost = automatic_boost(config) if boost is None else dict(boost)
    return validate_config(config.model_dump() | {"rare_events": {"boost": boost}})


def require_unweighted(config: FleetConfig, command: str) -> None:
    """Refuse a boosted config where replications are not weighted: ``command``'s means
    would be biased towards the boosted outages (a `ConfigError` naming the block)."""
    if config.rare_events is not None:
        raise ConfigError("rare_events", f"{command} does not weight replications by their "
                          "likelihood ratio: remove the block (twin run and twin compare "
                          "take it, or --rare-events)")  # fmt: skip


# -- estimating from weighted replications ---------------------------------------------------


def weights(log_weights: Sequence[float]) -> np.ndarray:
    return np.exp(np.asarray(log_weights, dtype=float))


MIN_SUPPORT = 10
"""Fewest replications the regression's residual variance must be spread over (Kish's
count of its squared residuals) for its standard error to be trusted; below it,
`estimate` falls back to the self-normalised estimator."""


def _regression(values: Sequence[float], log_weights: Sequence[float]) -> tuple | None:
    """The regression estimate of E[X], its residuals (scaled so that their mean square
    over n - 2 is n times its variance) and degrees of freedom; None when the weights do
    not vary."""
    x = np.asarray(values, dtype=float)
    w = weights(log_weights)
    if x.size < 3 or np.ptp(w) == 0.0:
        return None
    y = w * x
    dw, dy = w - w.mean(), y - y.mean()
    beta = float(np.dot(dw, dy) / np.dot(dw, dw))
    residuals = dy - beta * dw
    scale = math.sqrt((x.size - 1) / (x.size - 2))  # so that `_stderr` divides by n - 2
    return float(y.mean() - beta * (w.mean() - 1.0)), residuals * scale, x.size - 2


def _self_normalised(values: Sequence[float], log_weights: Sequence[float]) -> tuple:
    """The self-normalised estimate of E[X], each replication's influence on it
    (``n w (x - mean) / sum w``) and the degrees of freedom (Kish's effective sample size
    less one)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return 0.0, x, 0
    w = weights(log_weights)
    total = float(w.sum())
    mean = float(np.dot(w, x) / total)
    ess = total**2 / float(np.dot(w, w))
    return mean, x.size * w * (x - mean) / total, max(math.floor(ess + 1e-9) - 1, 0)


def support(residuals: np.ndarray, spread: float) -> float:
    """Over how many replications a residual variance is spread: (sum r^2)^2 / sum r^4,
    0 when the residuals vanish against the ``spread`` they were fitted to (a sample
    that the weights explain exactly, e.g. one without a replication of two outages)."""
    squares = residuals * residuals
    total = float(squares.sum())
    if total <= 1e-9 * spread:
        return 0.0
    return total * total / float(np.dot(squares, squares))


def _stderr(influence: np.ndarray, dof: int) -> float:
    n = influence.size
    return math.sqrt(float(np.dot(influence, influence)) / (n * (n - 1))) if dof else 0.0


def _squares(influence: np.ndarray) -> float:
    return float(np.dot(influence, influence))


def regression_estimate(
    values: Sequence[float], log_weights: Sequence[float]
) -> tuple[float, float, int]:
    """The regression estimator alone (plain when the weights do not vary)."""
    fit = _regression(values, log_weights) or _self_normalised(values, log_weights)
    return fit[0], _stderr(fit[1], fit[2]), fit[2]


def self_normalised_estimate(
    values: Sequence[float], log_weights: Sequence[float]
) -> tuple[float, float, int]:
    """The self-normalised estimator alone."""
    mean, influence, dof = _self_normalised(values, log_weights)
    return mean, _stderr(influence, dof), dof


def estimate(values: Sequence[float], log_weights: Sequence[float]) -> tuple[float, float, int]:
    """Mean, standard error and degrees of freedom of E[X] from replications drawn at the
    boosted rates, each with its likelihood ratio L (as ``log_weights``).

    The regression estimator mean(L X) - beta (mean(L) - 1), beta the least-squares slope
    of L X on L: L has mean 1, so subtracting beta (L - 1) removes what the spread of the
    weights adds to every metric, and what the boost makes too frequent. Its standard
    error comes from its residuals, and is trusted only when they are spread over at
    least `MIN_SUPPORT` replications; otherwise (few replications with two outages, say)
    the self-normalised sum(L X) / sum(L) with its delta-method standard error, which
    is wider but honest. Both have a bias of O(1/n), far inside their interval
    (docs/statistics.md measures their coverage). With equal weights (nothing boosted),
    the plain mean and standard error. The residuals are measured against the weighted
    spread of the values about their mean, sum (L (x - mean))^2, which like them does
    not change when a constant is added to every value (an availability and its
    shortfall are estimated alike).
    """
    fit = _regression(values, log_weights)
    plain = _self_normalised(values, log_weights)
    if fit is not None and support(fit[1], _squares(plain[1])) >= MIN_SUPPORT:
        mean, residuals, dof = fit
    else:
        mean, residuals, dof = plain
    return mean, _stderr(residuals, dof), dof


def paired_estimate(
    values: Sequence[float],
    log_weights: Sequence[float],
    controls: Sequence[float],
    control_log_weights: Sequence[float],
) -> tuple[float, float, int]:
    """`estimate` of E[X] - E[Y] from paired replications (the same seeds) of two arms,
    each with its own likelihood ratios: the difference of the two estimates, with the
    standard error of the paired difference of their residuals (regression when the
    difference's residuals have the support, else self-normalised for both)."""
    ours, theirs = _regression(values, log_weights), _regression(controls, control_log_weights)
    mean, influence, dof = _self_normalised(values, log_weights)
    control, control_influence, control_dof = _self_normalised(controls, control_log_weights)
    if ours is not None and theirs is not None:
        residuals = ours[1] - theirs[1]
        spread = _squares(influence) + _squares(control_influence)
        if support(residuals, spread) >= MIN_SUPPORT:
            return ours[0] - theirs[0], _stderr(residuals, ours[2]), ours[2]
    dof = min(dof, control_dof)
    return mean - control, _stderr(influence - control_influence, dof), dof


def effective_sample_size(log_weights: Sequence[float]) -> float:
    """Kish's effective sample size of weighted replications, (sum L)^2 / sum L^2."""
    w = weights(log_weights)
    return float(w.sum() ** 2 / np.dot(w, w)) if w.size else 0.0


def report(config: FleetConfig, log_weights: Sequence[float]) -> dict[str, Any]:
    """The ``rare_events`` block of the JSON: what was boosted, by how much, the faults
    expected per replication before and after, and the effective sample size."""
    boost = dict(config.rare_events.boost) if config.rare_events else {}
    counts = component_counts(config)
    plain, boosted = expected_faults(config, counts=counts), expected_faults(config, boost, counts)
    w = weights(log_weights)
    return {
        "boost": boost,
        "expected_faults": {
            kind: {"configured": plain[kind], "boosted": boosted[kind]} for kind in plain
        },
        "replications": int(w.size),
        "effective_sample_size": effective_sample_size(log_weights),
        "mean_likelihood_ratio": float(w.mean()) if w.size else 1.0,
        "estimator": "regression on the likelihood ratio (mean 1); self-normalised where "
        f"its residuals rest on fewer than {MIN_SUPPORT} replications",
    }


def describe(block: Mapping[str, Any]) -> str:
    """One line for the table output: what was boosted and the effective sample size."""
    boost = block["boost"]
    if not boost:
        return "rare events: nothing boosted (no component fault is rare in this fleet)"
    factors = ", ".join(f"{kind} x{factor:g}" for kind, factor in boost.items())
    return (
        f"rare events: faults boosted {factors}; effective sample size "
        f"{block['effective_sample_size']:.1f} of {block['replications']} replications"
    )
