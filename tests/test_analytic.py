"""The closed forms of `twin.analytic`, checked by hand and at their limits."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin import analytic

rates = st.floats(1e-4, 10.0)
times = st.floats(1e-3, 100.0)
probabilities = st.floats(0.0, 1.0)


# -- single units ------------------------------------------------------------------------------


def test_alternating_renewal_is_mttf_over_mttf_plus_mttr():
    assert analytic.alternating_renewal_availability(99.0, 1.0) == pytest.approx(0.99)
    assert analytic.alternating_renewal_availability(math.inf, 5.0) == 1.0
    assert analytic.alternating_renewal_availability(10.0, 0.0) == 1.0


def test_competing_causes_reduce_to_one_cause_with_the_mixture_repair_time():
    rates_, mttrs = [1 / 500, 1 / 300], [0.6, 2.0]
    mttf = 1 / sum(rates_)
    mttr = analytic.mixture_mttr(rates_, mttrs)
    assert mttr == pytest.approx((0.6 / 500 + 2.0 / 300) / (1 / 500 + 1 / 300))
    assert analytic.competing_causes_availability(rates_, mttrs) == pytest.approx(
        analytic.alternating_renewal_availability(mttf, mttr)
    )
    assert analytic.competing_causes_availability([0.01], [2.0]) == pytest.approx(1 / 1.02)


@given(rates, times, times)
def test_a_warm_up_costs_availability_and_none_costs_nothing(rate, mttr, warmup):
    mttf = 1 / rate
    plain = analytic.alternating_renewal_availability(mttf, mttr)
    assert analytic.warmup_availability(mttf, mttr, 0.0) == pytest.approx(plain)
    assert analytic.warmup_availability(mttf, mttr, warmup) <= plain
    # each cycle loses the warm-up, unless a fault cuts it short: never more than w / cycle
    assert plain - analytic.warmup_availability(mttf, mttr, warmup) <= warmup / (mttf + mttr)


def test_warm_up_by_hand():
    """MTTF 100 h, MTTR 1 h, 6 min boot: 100 e^-0.001 / 101."""
    assert analytic.warmup_availability(100.0, 1.0, 0.1) == pytest.approx(
        100 * math.exp(-0.001) / 101
    )


def test_an_escalation_cycle_splits_time_in_proportion_to_its_phases():
    running, degraded, rebooting = analytic.renewal_phase_fractions(200.0, 0.5, 0.25)
    assert running + degraded + rebooting == pytest.approx(1.0)
    assert degraded == pytest.approx(0.5 / 200.75)
    with pytest.raises(ValueError):
        analytic.renewal_phase_fractions(0.0, 0.0)


def test_one_driver_degrades_its_host_lambda_r_over_one_plus_lambda_r():
    assert analytic.degraded_fraction([0.01], 0.5) == pytest.approx(0.005 / 1.005)


def test_two_drivers_degrade_their_host_while_either_restarts():
    up = (1 / 1.01) * (1 / 1.004)  # neither restarting
    assert analytic.degraded_fraction([0.02, 0.008], 0.5) == pytest.approx(1 - up)
    # first order: the sum of lambda_i r, slightly more than the exact union
    assert analytic.degraded_fraction([0.02, 0.008], 0.5) < 0.014


# -- compositions -----------------------------------------------------------------------------


def test_series_and_parallel_by_hand():
    assert analytic.series_availability(0.99, 0.98, 0.999) == pytest.approx(0.99 * 0.98 * 0.999)
    assert analytic.parallel_availability(0.8, 0.8) == pytest.approx(0.96)
    assert analytic.series_availability() == 1.0
    with pytest.raises(ValueError):
        analytic.series_availability(1.2)


def test_two_of_three_by_hand():
    a = 0.9
    assert analytic.k_of_n_availability(2, 3, a) == pytest.approx(3 * a**2 - 2 * a**3)
    assert analytic.k_of_n_availability(2, 3, 0.5) == pytest.approx(0.5)


@given(st.integers(1, 8), probabilities)
def test_k_of_n_is_series_at_k_n_and_parallel_at_k_1(n, a):
    assert analytic.k_of_n_availability(n, n, a) == pytest.approx(
        analytic.series_availability(*[a] * n)
    )
    assert analytic.k_of_n_availability(1, n, a) == pytest.approx(
        analytic.parallel_availability(*[a] * n)
    )
    assert analytic.k_of_n_availability(0, n, a) == pytest.approx(1.0)


def test_k_of_n_needs_k_between_0_and_n():
    with pytest.raises(ValueError):
        analytic.k_of_n_availability(4, 3, 0.9)


def test_a_single_unit_fails_once_per_cycle():
    """Frequency of failure of one unit: lambda A = 1 / (MTTF + MTTR)."""
    a = analytic.alternating_renewal_availability(60.0, 40.0)
    assert analytic.parallel_failure_frequency([1 / 60], [a]) == pytest.approx(1 / 100)


def test_a_pair_fails_when_its_last_unit_fails():
    a = 0.8
    assert analytic.parallel_failure_frequency([0.01, 0.01], [a, a]) == pytest.approx(
        2 * 0.01 * a * (1 - a)
    )


# -- the machine-repairman queue --------------------------------------------------------------


def test_mm1_2_by_hand():
    """lambda = 1, mu = 2: p = (0.4, 0.4, 0.2), L = 0.8, Lq = 0.2, lambda_eff = 1.2."""
    q = analytic.machine_repairman(hosts=2, operators=1, failure_rate=1.0, repair_rate=2.0)
    assert q.probabilities == pytest.approx((0.4, 0.4, 0.2))
    assert q.mean_failed == pytest.approx(0.8)
    assert q.mean_queue == pytest.approx(0.2)
    assert q.host_availability == pytest.approx(0.6)
    assert q.throughput == pytest.approx(1.2)
    assert q.mean_wait == pytest.approx(1 / 6)
    assert q.mean_time_failed == pytest.approx(2 / 3)
    assert q.operator_utilization == pytest.approx(0.6)
    # a failing host sees the other one failed with probability 0.4 / (0.8 + 0.4)
    assert q.wait_probability == pytest.approx(1 / 3)


def test_mm2_4_by_hand():
    """lambda = 1, mu = 2: p_n proportional to 16, 32, 24, 12, 3 (sum 87)."""
    q = analytic.machine_repairman(hosts=4, operators=2, failure_rate=1.0, repair_rate=2.0)
    expected = [Fraction(w, 87) for w in (16, 32, 24, 12, 3)]
    assert q.probabilities == pytest.approx([float(p) for p in expected])
    assert q.mean_failed == pytest.approx(128 / 87)
    assert q.mean_queue == pytest.approx(18 / 87)
    assert q.throughput == pytest.approx(220 / 87)
    assert q.mean_wait == pytest.approx(9 / 110)
    assert q.mean_time_failed == pytest.approx(32 / 55)


@given(st.integers(1, 12), st.integers(1, 6), rates, rates)
def test_a_ticket_spends_the_wait_plus_one_repair(hosts, operators, failure, repair):
    """Little's law both ways: W = Wq + 1/mu, and the probabilities sum to one."""
    q = analytic.machine_repairman(hosts, operators, failure, repair)
    assert sum(q.probabilities) == pytest.approx(1.0)
    assert q.mean_time_failed == pytest.approx(q.mean_wait + 1 / repair, rel=1e-6)


@given(st.integers(1, 8), rates, rates)
def test_with_an_operator_per_host_nobody_waits(hosts, failure, repair):
    q = analytic.machine_repairman(hosts, hosts, failure, repair)
    assert q.mean_wait == pytest.approx(0.0, abs=1e-12)
    assert q.wait_probability == pytest.approx(0.0, abs=1e-12)
    assert q.host_availability == pytest.approx(
        analytic.alternating_renewal_availability(1 / failure, 1 / repair)
    )


def test_more_operators_shorten_the_wait():
    waits = [analytic.machine_repairman(12, c, 1 / 25, 1 / 20).mean_wait for c in (1, 2, 4, 12)]
    assert waits == sorted(waits, reverse=True)
    assert waits[-1] == pytest.approx(0.0, abs=1e-12)


def test_time_average_variance_of_a_two_state_unit():
    """Up -> down at lambda, down -> up at mu: sigma^2 = 2 lambda mu / (lambda + mu)^3."""
    lam, mu = 0.3, 2.0
    q = analytic.machine_repairman(1, 1, lam, mu)
    assert q.time_average_variance([0.0, 1.0]) == pytest.approx(2 * lam * mu / (lam + mu) ** 3)


def test_a_unit_started_up_owes_its_steady_state_unavailability_for_one_relaxation():
    """From up: P(down at t) = Q (1 - e^-(lambda+mu) t), so the area is -Q / (lambda + mu)."""
    lam, mu = 0.3, 2.0
    q = analytic.machine_repairman(1, 1, lam, mu)
    unavailability = lam / (lam + mu)
    assert q.startup_area([0.0, 1.0]) == pytest.approx(-unavailability / (lam + mu))


def test_state_values_name_the_quantities_of_the_queue():
    q = analytic.machine_repairman(4, 2, 1.0, 2.0)
    assert q.state_values("queue") == [0, 0, 0, 1, 2]
    assert q.state_values("busy") == [0, 0.5, 1, 1, 1]
    assert np.dot(q.probabilities, q.state_values("failed")) == pytest.approx(
        1 - q.host_availability
    )
    with pytest.raises(ValueError):
        q.state_values("idle")


# -- incidents --------------------------------------------------------------------------------


def test_incidents_are_rate_times_up_time():
    assert analytic.expected_incidents(1 / 1000, units=16, horizon=8760, up_fraction=0.99) == (
        pytest.approx(16 * 8.76 * 0.99)
    )


def test_blast_radius_of_host_and_tor_incidents():
    assert analytic.host_incident_blast_radius(20) == 20
    assert analytic.host_incident_blast_radius(20, 0.5) == 10
    assert analytic.rack_incident_blast_radius(16, 20) == 320
    # two hosts of three guests, each serving half the time; an empty rack is no incident
    assert analytic.rack_incident_blast_radius(2, 3, 0.5) == pytest.approx(4.0)
    assert analytic.mean_blast_radius([90, 10], [20, 320]) == pytest.approx(50.0)


# -- sizing the runs --------------------------------------------------------------------------


def test_about_1537_constant_repairs_give_plus_minus_5_percent():
    rate, mttr = 1 / 500, 2.0
    hours = analytic.required_unit_hours(rate, mttr, 0.0, rel_half_width=0.05, quantile=1.96)
    faults = rate * hours * analytic.alternating_renewal_availability(1 / rate, mttr)
    assert faults * (1 + rate * mttr) ** 2 == pytest.approx((1.96 / 0.05) ** 2)
    assert analytic.required_unit_hours(rate, mttr, 1.0) == pytest.approx(2 * hours)
    assert analytic.required_events(0.05) == pytest.approx(1536.64)


def test_the_sizing_formula_predicts_the_spread_of_a_simulated_unavailability():
    """An independent Monte Carlo of an alternating unit (exponential up, exponential down):
    the spread of its unavailability over X unit-hours is what the formula says."""
    rng = np.random.default_rng(7)
    rate, mttr, cycles, runs = 0.01, 5.0, 4000, 400
    up = rng.exponential(1 / rate, (runs, cycles))
    down = rng.exponential(mttr, (runs, cycles))
    unavailability = down.sum(axis=1) / (up + down).sum(axis=1)
    hours = cycles * (1 / rate + mttr)
    predicted = math.sqrt(analytic.required_unit_hours(rate, mttr, 1.0, 1.0, 1.0) / hours)
    observed = unavailability.std(ddof=1) / unavailability.mean()
    assert observed == pytest.approx(predicted, rel=0.1)


# -- issue 15: aging, immediate crashes, hands-on repairs --------------------------------------


def test_hypoexponential_excess_integrates_the_survival_of_two_phases():
    a, b, w = 60.0, 20.0, 3.0
    assert analytic.hypoexponential_excess(a, b, 0.0) == pytest.approx(a + b)
    rng = np.random.default_rng(1)
    u = rng.exponential(a, 400_000) + rng.exponential(b, 400_000)
    assert analytic.hypoexponential_excess(a, b, w) == pytest.approx(
        np.maximum(u - w, 0).mean(), rel=5e-3
    )
    # equal phases: the limit of the general form
    assert analytic.hypoexponential_excess(5.0, 5.0, 2.0) == pytest.approx(
        analytic.hypoexponential_excess(5.0, 5.0 + 1e-6, 2.0), rel=1e-5
    )


def test_aging_is_a_renewal_whose_up_time_is_onset_plus_failure():
    assert analytic.aging_availability(730.0, 168.0, 0.25) == pytest.approx(898 / 898.25)
    assert analytic.aging_availability(60.0, 20.0, 1.0, 0.5) < analytic.aging_availability(
        60.0, 20.0, 1.0
    )


def test_an_immediate_crash_is_a_plain_renewal_of_detection_and_reboot():
    assert analytic.immediate_crash_availability(100.0, 0.5, 1.5) == pytest.approx(100 / 102)
    assert analytic.immediate_crash_availability(
        100.0, 0.5, 1.5, 1.0
    ) == analytic.warmup_availability(100.0, 2.0, 1.0)


def test_hands_on_utilization_counts_only_the_hands_on_part():
    # 16 hosts failing once per 100 h while up (A = 0.9), 0.75 h busy each, 2 operators
    assert analytic.hands_on_utilization(0.01, 16, 0.9, 0.75, 2) == pytest.approx(0.054)
    with pytest.raises(ValueError):
        analytic.hands_on_utilization(0.01, 16, 0.9, 0.75, 0)
