"""Closed-form availability models that the twin must reproduce.

Pure functions of rates (per hour) and mean times (hours); no simulation here. Each one
states its formula and a textbook source, so a mismatch between the twin and one of
these is a finding about the twin, not a matter of opinion. `twin.validation` builds
fleets in which these models hold exactly and compares.

Sources:

* Trivedi, *Probability and Statistics with Reliability, Queuing and Computer Science
  Applications*, 2nd ed., Wiley 2002 ("Trivedi"): ch. 3 (series, parallel and k-out-of-n
  systems), ch. 6 (renewal processes, availability of an alternating up/down unit), ch. 8
  (birth-death processes; the finite-population queue; availability models).
* Barlow & Proschan, *Statistical Theory of Reliability and Life Testing*, Holt, Rinehart and
  Winston 1975 ("Barlow & Proschan"): coherent structures (series, parallel, k-out-of-n)
  and the availability of repairable systems.
* Gross, Shortle, Thompson & Harris, *Fundamentals of Queueing Theory*, 4th ed., Wiley 2008
  ("Gross & Harris"): finite-source queues, the machine-repair problem M/M/c//N (sec. 2.7).
* Ross, *Introduction to Probability Models*, 11th ed., Academic Press 2014 ("Ross"):
  ch. 5 (the Poisson process), ch. 7 (renewal-reward and alternating renewal processes).
* Billinton & Allan, *Reliability Evaluation of Engineering Systems*, 2nd ed., Plenum 1992:
  the frequency-duration method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin.metrics import MINUTES_PER_YEAR as MINUTES_PER_YEAR  # degraded min per host-year

# -- single units: alternating renewal -------------------------------------------------------


def alternating_renewal_availability(mttf: float, mttr: float) -> float:
    """Long-run fraction of time a unit is up when it alternates up / down periods.

    ``A = MTTF / (MTTF + MTTR)``, for *any* distributions of the up and down times
    (renewal-reward theorem: Trivedi ch. 6, Ross ch. 7, Barlow & Proschan). A unit that
    never fails (``mttf = inf``) is always up.
    """
    if mttf < 0 or mttr < 0:
        raise ValueError("mean times must be >= 0")
    if math.isinf(mttf):
        return 1.0
    return mttf / (mttf + mttr) if mttf + mttr > 0 else 1.0


def competing_causes_availability(rates: Sequence[float], mttrs: Sequence[float]) -> float:
    """Availability of a unit with independent exponential fault causes that stop while down.

    Cause ``i`` strikes at rate ``lambda_i`` while the unit is up and costs a down time of
    mean ``MTTR_i``. The up time is the minimum of the exponential clocks, exponential with
    rate ``sum lambda_i``, and ends in cause ``i`` with probability ``lambda_i / sum``; the
    alternating renewal form then gives

        ``A = 1 / (1 + sum_i lambda_i * MTTR_i)``

    (the alternating renewal form with a mixture down time: Trivedi ch. 6 and 8).
    """
    _same_length(rates, mttrs)
    return 1.0 / (1.0 + math.fsum(r * m for r, m in zip(rates, mttrs, strict=True)))


def mixture_mttr(rates: Sequence[float], mttrs: Sequence[float]) -> float:
    """Mean down time of a unit with competing exponential causes: ``sum lambda_i MTTR_i /
    sum lambda_i`` (each down period is of cause ``i`` with probability ``lambda_i / sum``)."""
    _same_length(rates, mttrs)
    total = math.fsum(rates)
    return math.fsum(r * m for r, m in zip(rates, mttrs, strict=True)) / total if total else 0.0


def warmup_availability(mttf: float, mttr: float, warmup: float) -> float:
    """Fraction of time a unit is up *and* past a warm-up of ``warmup`` hours after each repair.

    The unit's up times are exponential (mean ``MTTF``) and its faults keep running during
    the warm-up, so a fault may cut the warm-up short. Per cycle the useful time is
    ``max(U - w, 0)`` with ``E[max(U - w, 0)] = MTTF * exp(-w / MTTF)`` (memorylessness), hence

        ``A_w = MTTF * exp(-w / MTTF) / (MTTF + MTTR)``

    (renewal-reward, Ross ch. 7). For guests, ``w`` is the guest boot time after their host
    is back; for a host fed by a failing power feed, the host reboot after power returns.
    """
    if math.isinf(mttf):
        return 1.0
    return mttf * math.exp(-warmup / mttf) / (mttf + mttr)


def hypoexponential_excess(mean_a: float, mean_b: float, warmup: float) -> float:
    """``E[max(X + Y - w, 0)]`` for independent exponential ``X`` (mean ``a``) and ``Y``
    (mean ``b``): the up time past a warm-up ``w`` of a unit whose up time is two
    exponential phases in a row (hypoexponential: Trivedi ch. 3). Integrating its survival
    function ``P(X + Y > t) = (a e^(-t/a) - b e^(-t/b)) / (a - b)`` from ``w``:

        ``(a^2 e^(-w/a) - b^2 e^(-w/b)) / (a - b)``,  or ``e^(-w/a) (2a + w)`` when a = b

    (``a + b`` at ``w = 0``). Software aging (onset, then failure) is such an up time.
    """
    if mean_a <= 0 or mean_b <= 0 or warmup < 0:
        raise ValueError("need positive means and warmup >= 0")
    a, b, w = mean_a, mean_b, warmup
    if math.isclose(a, b, rel_tol=1e-9):
        return math.exp(-w / a) * (2 * a + w)
    return (a * a * math.exp(-w / a) - b * b * math.exp(-w / b)) / (a - b)


def aging_availability(onset: float, failure: float, mttr: float, warmup: float = 0.0) -> float:
    """Availability of a unit that crashes only of software aging and is renewed by each
    repair: every boot starts an exponential onset (mean ``onset``) then an exponential
    failure phase (mean ``failure``), and each crash costs ``mttr`` (detection + reboot). An
    alternating renewal process whose up time is onset + failure (renewal-reward, Ross
    ch. 7); with a warm-up (guests booting after their host) the useful part of each up
    time is `hypoexponential_excess`:

        ``A_w = E[max(onset + failure - w, 0)] / (onset + failure + MTTR)``
    """
    return hypoexponential_excess(onset, failure, warmup) / (onset + failure + mttr)


def immediate_crash_availability(
    mttf: float, detection: float, reboot: float, boot: float = 0.0
) -> float:
    """Guest availability on a host whose driver faults (exponential, mean ``mttf``) all
    crash it at once and that reboots by itself: down for detection + reboot, guests back
    ``boot`` later (`warmup_availability`). No grace window enters: an immediate crash
    gives guests no time to leave, whatever ``escalation_grace`` is (SPEC 3)."""
    return warmup_availability(mttf, detection + reboot, boot)


def hands_on_utilization(
    fault_rate: float, hosts: int, availability: float, busy_per_ticket: float, operators: int
) -> float:
    """Operator utilization when each hardware fault holds an operator only for its
    ``busy_per_ticket`` (response + hands-on part), not for the repair: faults arrive at
    ``lambda N A`` (clocks run only while up) and each keeps one of ``c`` operators busy,

        ``U = lambda N A (response + hands_on) / c``

    (Little's law on the busy operators; Gross & Harris sec. 2.7). The host's down time is
    response + repair + reboot plus its ticket's wait, which vanishes while U is small."""
    if operators < 1:
        raise ValueError("need at least one operator")
    return fault_rate * hosts * _probability(availability) * busy_per_ticket / operators


def renewal_phase_fractions(*mean_durations: float) -> tuple[float, ...]:
    """Long-run fraction of time in each phase of a cycle that repeats phases in order.

    ``p_i = E[D_i] / sum_j E[D_j]`` for any distributions (renewal-reward, Ross ch. 7). An
    escalated driver fault on a microkernel host is the cycle (running, degraded for the
    grace window, rebooting): ``renewal_phase_fractions(MTTF, grace, reboot)``.
    """
    total = math.fsum(mean_durations)
    if total <= 0 or any(d < 0 for d in mean_durations):
        raise ValueError("phase durations must be >= 0 with a positive total")
    return tuple(d / total for d in mean_durations)


def degraded_fraction(driver_rates: Sequence[float], restart_time: float) -> float:
    """Fraction of time a microkernel host is degraded by contained driver faults.

    Each driver alternates an exponential running time (rate ``lambda_i``) with a restart of
    ``r`` hours during which its own fault clock is stopped: an alternating renewal process,
    restarting a fraction ``lambda_i r / (1 + lambda_i r)`` of the time (not ``lambda_i r``,
    which is its first-order approximation). The host is degraded while *any* driver
    restarts, and the drivers are independent, so

        ``D = 1 - prod_i 1 / (1 + lambda_i * r)``

    (a series system of the drivers' "not restarting" states: Trivedi ch. 3 and 6).
    """
    return 1.0 - series_availability(
        *(alternating_renewal_availability(1.0 / rate, restart_time) for rate in driver_rates)
    )


# -- compositions of independent components --------------------------------------------------


def series_availability(*availabilities: float) -> float:
    """A system that needs every component up: ``A = prod A_i`` (independent components;
    Trivedi ch. 3, Barlow & Proschan). A guest needs its host, its ToR and its power feed."""
    return math.prod(_probability(a) for a in availabilities)


def parallel_availability(*availabilities: float) -> float:
    """A system that needs one component up: ``A = 1 - prod (1 - A_i)`` (independent
    components; Trivedi ch. 3, Barlow & Proschan). A rack with two ToRs is reachable while
    either is up."""
    return 1.0 - math.prod(1.0 - _probability(a) for a in availabilities)


def parallel_failure_frequency(rates: Sequence[float], availabilities: Sequence[float]) -> float:
    """How often a parallel system of independent components goes down: the rate at which
    its last up component fails,

        ``f = sum_i lambda_i A_i prod_{j != i} (1 - A_j)``

    for exponential times to failure and any repair law (the frequency-duration method:
    Billinton & Allan). For a rack behind two ToRs, the rate of network incidents.
    """
    _same_length(rates, availabilities)
    total = 0.0
    for i, (rate, a) in enumerate(zip(rates, availabilities, strict=True)):
        others = math.prod(1.0 - _probability(b) for j, b in enumerate(availabilities) if j != i)
        total += rate * _probability(a) * others
    return total


def k_of_n_availability(k: int, n: int, availability: float) -> float:
    """At least ``k`` of ``n`` independent, identical replicas up:

        ``A = sum_{j=k}^{n} C(n, j) a^j (1 - a)^(n - j)``

    (Trivedi ch. 3, Barlow & Proschan). ``k = n`` is a series system, ``k = 1`` a parallel
    one; a 2-of-3 quorum service is ``k_of_n_availability(2, 3, a)``.
    """
    a = _probability(availability)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n (got k={k}, n={n})")
    return math.fsum(math.comb(n, j) * a**j * (1.0 - a) ** (n - j) for j in range(k, n + 1))


# -- the operator queue: finite-source M/M/c//N ------------------------------------------------


@dataclass(frozen=True)
class MachineRepairman:
    """Steady state of the machine-repairman queue M/M/c//N.

    ``probabilities[n]`` is the long-run probability that ``n`` of the ``N`` hosts are
    failed (waiting for or under repair). Times are in the unit of the rates (hours).
    """

    hosts: int
    operators: int
    failure_rate: float
    repair_rate: float
    probabilities: tuple[float, ...]

    @property
    def mean_failed(self) -> float:
        """``L = sum n p_n``: hosts failed on average."""
        return math.fsum(n * p for n, p in enumerate(self.probabilities))

    @property
    def mean_queue(self) -> float:
        """``L_q = sum (n - c)^+ p_n``: failed hosts whose ticket waits for an operator."""
        c = self.operators
        return math.fsum(max(n - c, 0) * p for n, p in enumerate(self.probabilities))

    @property
    def host_availability(self) -> float:
        """``1 - L / N``: the fraction of host-hours up."""
        return 1.0 - self.mean_failed / self.hosts

    @property
    def throughput(self) -> float:
        """``lambda_eff = lambda (N - L)``: faults (= tickets) per hour."""
        return self.failure_rate * (self.hosts - self.mean_failed)

    @property
    def wait_probability(self) -> float:
        """Probability that a new ticket finds every operator busy. A failing host sees the
        other hosts as a fleet of ``N - 1`` in steady state (the arrival theorem), i.e. the
        states weighted by the ``N - n`` hosts that can fail: ``sum_{n>=c} (N-n) p_n /
        sum_n (N-n) p_n``."""
        weights = [(self.hosts - n) * p for n, p in enumerate(self.probabilities)]
        return math.fsum(weights[self.operators :]) / math.fsum(weights)

    @property
    def mean_wait(self) -> float:
        """``W_q = L_q / lambda_eff`` (Little's law on the queue): hours a ticket waits for a
        free operator."""
        return self.mean_queue / self.throughput if self.throughput > 0 else 0.0

    @property
    def mean_time_failed(self) -> float:
        """``W = L / lambda_eff = W_q + 1 / mu``: hours from a fault to the host being back."""
        return self.mean_failed / self.throughput if self.throughput > 0 else 0.0

    @property
    def operator_utilization(self) -> float:
        """``(L - L_q) / c``: busy operators over operators."""
        return (self.mean_failed - self.mean_queue) / self.operators

    def startup_area(self, values: Sequence[float]) -> float:
        """``int_0^inf (E_0[f(X_t)] - pi f) dt``: how much a run that starts with every host up
        (state 0) accumulates of ``values[n]`` beyond the steady state, so that its time
        average over ``T`` hours is ``pi f + startup_area / T`` for long ``T``. It is ``h_0``
        of `time_average_variance`'s ``h`` (the deviation matrix applied to ``f~``)."""
        return float(self._deviation(values)[0])

    def time_average_variance(self, values: Sequence[float]) -> float:
        """Asymptotic variance constant ``sigma^2`` of the time average of ``values[n]`` (a
        function of the number failed): ``Var(1/T int_0^T f(X_t) dt) ~ sigma^2 / T``.

        Markov-chain central limit theorem: ``sigma^2 = 2 sum_i pi_i f~_i h_i`` with
        ``f~ = f - pi f`` and ``h = Z f~``, ``Z = (1 pi^T - Q)^(-1)`` the fundamental matrix of
        the generator ``Q`` (Kemeny & Snell, *Finite Markov Chains*, 1960; Whitt, "Asymptotic
        formulas for Markov processes with applications to simulation", Operations Research
        40(2), 1992). Used to size the runs that check this queue.
        """
        pi = np.array(self.probabilities)
        f = np.asarray(values, dtype=float)
        return float(2.0 * np.sum(pi * (f - pi @ f) * self._deviation(values)))

    def _deviation(self, values: Sequence[float]) -> np.ndarray:
        """``h = (1 pi^T - Q)^(-1) (f - pi f)`` for the birth-death generator ``Q``."""
        n_states = self.hosts + 1
        if len(values) != n_states:
            raise ValueError(f"need one value per state 0..{self.hosts}")
        pi = np.array(self.probabilities)
        generator = np.zeros((n_states, n_states))
        for n in range(n_states):
            if n < self.hosts:
                generator[n, n + 1] = (self.hosts - n) * self.failure_rate
            if n > 0:
                generator[n, n - 1] = min(n, self.operators) * self.repair_rate
            generator[n, n] = -generator[n].sum()
        f = np.asarray(values, dtype=float)
        return np.linalg.solve(np.outer(np.ones(n_states), pi) - generator, f - pi @ f)

    def state_values(self, quantity: str) -> list[float]:
        """A quantity as a function of the number ``n`` of failed hosts: ``failed`` (n / N,
        the unavailability), ``queue`` ((n - c)^+, tickets waiting) or ``busy`` (min(n, c) / c,
        the operator utilization)."""
        n_range = range(self.hosts + 1)
        c = self.operators
        if quantity == "failed":
            return [n / self.hosts for n in n_range]
        if quantity == "queue":
            return [float(max(n - c, 0)) for n in n_range]
        if quantity == "busy":
            return [min(n, c) / c for n in n_range]
        raise ValueError(f"unknown quantity {quantity!r} (failed, queue, busy)")


def machine_repairman(
    hosts: int, operators: int, failure_rate: float, repair_rate: float
) -> MachineRepairman:
    """The finite-source queue M/M/c//N: ``N`` hosts each failing at rate ``lambda`` while up,
    ``c`` operators each repairing at rate ``mu``, one operator per failed host, FIFO.

    Birth-death balance (Gross & Harris sec. 2.7; Trivedi ch. 8) with ``rho = lambda / mu``:

        ``p_n = p_0 C(N, n) rho^n``                          for 0 <= n <= c
        ``p_n = p_0 C(N, n) n! / (c! c^(n-c)) rho^n``        for c < n <= N

    computed here by the equivalent ratio ``p_n / p_(n-1) = (N - n + 1) lambda /
    (min(n, c) mu)``, normalised to sum to 1.
    """
    if hosts < 1 or operators < 1:
        raise ValueError("need at least one host and one operator")
    if failure_rate < 0 or repair_rate <= 0:
        raise ValueError("need failure_rate >= 0 and repair_rate > 0")
    weights = [1.0]
    for n in range(1, hosts + 1):
        ratio = (hosts - n + 1) * failure_rate / (min(n, operators) * repair_rate)
        weights.append(weights[-1] * ratio)
    total = math.fsum(weights)
    return MachineRepairman(
        hosts=hosts,
        operators=operators,
        failure_rate=failure_rate,
        repair_rate=repair_rate,
        probabilities=tuple(w / total for w in weights),
    )


# -- incidents ----------------------------------------------------------------------------------


def expected_incidents(rate: float, units: int, horizon: float, up_fraction: float = 1.0) -> float:
    """Expected count of a Poisson fault process whose clock runs only while its unit is up:
    ``E[N] = lambda * exposure``, ``exposure = units * horizon * up_fraction`` (Ross ch. 5;
    the fault clocks of SPEC 3 stop while the unit is down)."""
    return rate * units * horizon * up_fraction


def host_incident_blast_radius(guests_per_host: int, serving_probability: float = 1.0) -> float:
    """Expected guests lost by one host incident: the host's guests, if they were serving.

    ``g * P(serving at the fault)``. Faults are Poisson during up time, so the probability is
    a time fraction of the up time (PASTA: Wolff, Operations Research 30(2), 1982):
    ``exp(-Lambda * boot)`` that the guests had finished booting, times the availability of
    the host's network path.
    """
    return guests_per_host * _probability(serving_probability)


def rack_incident_blast_radius(
    hosts_per_rack: int, guests_per_host: int, serving_probability: float = 1.0
) -> float:
    """Expected guests lost by one rack-wide incident (its ToR switch or its only power feed
    fails): every serving guest of the rack.

    Each of the ``h`` hosts serves its ``g`` guests independently with probability ``p``;
    a fault that finds no guest serving is no incident (it loses nothing), so the mean is
    conditioned on at least one: ``h g p / (1 - (1 - p)^h)``.
    """
    p = _probability(serving_probability)
    if p == 0:
        return 0.0
    return hosts_per_rack * guests_per_host * p / (1.0 - (1.0 - p) ** hosts_per_rack)


def mean_blast_radius(incident_counts: Sequence[float], blast_radii: Sequence[float]) -> float:
    """Mean blast radius over a mix of incident kinds: ``sum N_i b_i / sum N_i`` (a ratio of
    expectations: the per-replication mean is biased by O(1 / incidents))."""
    _same_length(incident_counts, blast_radii)
    total = math.fsum(incident_counts)
    return (
        math.fsum(n * b for n, b in zip(incident_counts, blast_radii, strict=True)) / total
        if total
        else 0.0
    )


# -- how much simulation a check needs --------------------------------------------------------


def required_unit_hours(
    rate: float,
    mttr: float,
    mttr_cv2: float = 0.0,
    rel_half_width: float = 0.05,
    quantile: float = 1.96,
) -> float:
    """Unit-hours (e.g. host-hours) of simulation for the confidence interval of an
    *unavailability* to have half-width ``rel_half_width`` times its value.

    For exponential up times (rate ``lambda``) and down times of mean ``m`` and squared
    coefficient of variation ``c^2``, the renewal-reward central limit theorem (Ross ch. 7)
    gives the estimate of ``Q = lambda m / (1 + lambda m)`` from ``X`` unit-hours of
    independent units a variance ``Var(D - Q C) / (E[C] X)`` with ``C`` the cycle; worked
    out, the relative variance is ``(1 + c^2) / (lambda (1 + lambda m) X)``, so

        ``X = (z / eps)^2 (1 + c^2) / (lambda (1 + lambda m))``

    i.e. about ``(z / eps)^2 (1 + c^2)`` faults: 1537 faults for +-5 % at z = 1.96 with
    constant repairs, twice that with exponential ones.
    """
    if rate <= 0 or rel_half_width <= 0:
        raise ValueError("need rate > 0 and rel_half_width > 0")
    return (quantile / rel_half_width) ** 2 * (1.0 + mttr_cv2) / (rate * (1.0 + rate * mttr))


def required_events(rel_half_width: float = 0.05, quantile: float = 1.96) -> float:
    """Poisson events needed for a count's interval to have half-width ``rel_half_width``
    times its mean: ``n = (z / eps)^2`` (the count's variance equals its mean)."""
    return (quantile / rel_half_width) ** 2


# -- helpers -------------------------------------------------------------------------------------


def _probability(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"an availability is a probability in [0, 1] (got {value})")
    return value


def _same_length(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b):
        raise ValueError(f"need one value per cause (got {len(a)} and {len(b)})")
