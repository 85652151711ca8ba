"""Rare-event acceleration (issue 17, item 4): component faults sampled at boosted hazards,
replications weighted by their likelihood ratio, estimates unbiased.

The math first (hazard scaling, the likelihood ratio's mean of 1, the self-normalised
estimator against the plain mean), then the closed-form case plain sampling cannot
resolve, then the CLI: the JSON block, one-line errors, compare's shared boosts and the
site-by-site merge.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from twin import analytic, rare_events
from twin.cli import app
from twin.config import ConfigError, load_config
from twin.config.distributions import Exponential, Gamma, Lognormal, Uniform, Weibull
from twin.experiments.runner import run_replications
from twin.metrics import ci95
from twin.validation import QUICK, Status, rare_power_case, run_suite

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "configs" / "default.yaml"
TWIN = shutil.which("twin", path=str(Path(sys.executable).parent)) or "twin"
SCIPY = {
    "exponential": lambda d: stats.expon(scale=d.mean),
    "weibull": lambda d: stats.weibull_min(d.shape, scale=d.scale),
    "lognormal": lambda d: stats.lognorm(d.sigma, scale=d.median),
    "gamma": lambda d: stats.gamma(d.shape, scale=d.scale),
}
FAMILIES = [Exponential(50.0), Weibull(0.7, 40.0), Lognormal(20.0, 1.1), Gamma(2.5, 8.0)]


# -- the math -----------------------------------------------------------------------------


@pytest.mark.parametrize("dist", FAMILIES, ids=lambda d: d.name)
def test_the_cumulative_hazard_is_minus_the_log_survival(dist):
    law = SCIPY[dist.name](dist)
    for t in (0.5, 10.0, 80.0):
        assert dist.cumulative_hazard(t) == pytest.approx(-law.logsf(t), rel=1e-9)


@pytest.mark.parametrize("dist", FAMILIES, ids=lambda d: d.name)
def test_a_hazard_scaled_law_survives_as_the_survival_to_the_power_of_the_boost(dist):
    boosted = dist.hazard_scaled(5.0)
    draws = boosted.sample_many(np.random.default_rng(3), 40_000)
    law = SCIPY[dist.name](dist)
    # Kolmogorov-Smirnov against S(t)^5, i.e. the CDF 1 - S(t)^5
    result = stats.kstest(draws, lambda t: 1.0 - law.sf(t) ** 5.0)
    assert result.pvalue > 1e-3
    assert boosted.mean == pytest.approx(float(draws.mean()), rel=0.03)


def test_times_without_a_hazard_cannot_be_boosted_and_the_config_says_where():
    with pytest.raises(ValueError, match="no hazard"):
        Uniform(1.0, 6.0).hazard_scaled(2.0)
    with pytest.raises(ConfigError, match=r"rare_events\.boost\.power"):
        load_config(DEFAULT, ["rare_events.boost.power=3", "network.power_fault=6h"])
    with pytest.raises(ConfigError, match=r"rare_events\.boost\.power"):
        rare_events.accelerated(load_config(DEFAULT, ["network.power_fault=6h"]), {"power": 3})


def test_with_equal_weights_the_estimate_is_the_plain_mean_and_its_stderr():
    values = np.random.default_rng(0).normal(5.0, 2.0, 40)
    mean, stderr, dof = rare_events.estimate(values, np.zeros(40))
    plain = ci95(values)
    assert (mean, dof) == (pytest.approx(plain["mean"]), 39)
    assert stderr == pytest.approx(plain["stderr"])
    assert rare_events.estimate([3.0] * 10, np.random.default_rng(1).normal(0, 1, 10))[:2] == (
        pytest.approx(3.0),
        pytest.approx(0.0, abs=1e-12),
    )


def test_a_sample_without_a_double_outage_still_has_an_honest_stderr():
    """Boosted counts of 0 and 1 only: the weights are then an exact linear function of
    the values, and a regression on them would claim a zero standard error."""
    counts = np.array([0] * 150 + [1] * 50)
    log_w = -counts * math.log(150.0) + 149 * 0.001
    mean, stderr, _ = rare_events.estimate(counts, log_w)
    assert stderr > 0.1 * mean


def test_an_availability_and_its_shortfall_are_estimated_alike():
    rng = np.random.default_rng(2)
    counts = rng.poisson(0.8, 300)
    log_w = -counts * math.log(30.0) + 29 * 0.8 / 30
    shortfall = counts * 7.5 / 8760 + rng.exponential(1e-4, 300)
    mean, stderr, dof = rare_events.estimate(shortfall, log_w)
    up, up_stderr, up_dof = rare_events.estimate(1 - shortfall, log_w)
    assert (up, up_stderr, up_dof) == (pytest.approx(1 - mean, abs=1e-12),
                                       pytest.approx(stderr, rel=1e-6), dof)  # fmt: skip


def test_the_weighted_estimate_of_a_poisson_count_is_unbiased():
    """Boosted Poisson counts (mean mu b) with their exact likelihood ratios: over many
    independent batches the estimates of mu average to mu, and the stated standard error
    is the batches' spread."""
    rng = np.random.default_rng(7)
    mu, b, n = 0.02, 40.0, 200
    estimates, errors = [], []
    for _ in range(300):
        counts = rng.poisson(mu * b, n)
        log_w = -counts * math.log(b) + (b - 1) * mu
        mean, stderr, _ = rare_events.estimate(counts, log_w)
        estimates.append(mean)
        errors.append(stderr)
    assert np.mean(estimates) == pytest.approx(mu, rel=0.03)
    assert np.std(estimates) == pytest.approx(np.mean(errors), rel=0.15)


def test_the_likelihood_ratio_of_a_boosted_fleet_has_mean_one():
    """E_boosted[L] = 1: a wrong exposure term (a clock forgotten at the horizon, or
    after an injected outage) shifts it far outside this interval."""
    config = rare_events.accelerated(load_config(DEFAULT, [
        "topology.pods=1", "topology.racks_per_pod=2", "topology.hosts_per_rack=2",
        "guests.per_host=2", "horizon=1y", "sample_every=1y",
        "network.power_fault={dist: exponential, mean: 5y}",
    ]), {"power": 4.0, "tor": 3.0})  # fmt: skip
    result = run_replications(config, 400, seed=5)
    w = np.exp(result.log_weights)
    assert abs(w.mean() - 1.0) < 3 * w.std(ddof=1) / math.sqrt(w.size)
    assert 0 < rare_events.effective_sample_size(result.log_weights) < 400


def test_the_automatic_boost_makes_rare_kinds_common_and_leaves_frequent_ones():
    config = load_config(DEFAULT, ["network.power_fault={dist: exponential, mean: 1000y}",
                                   "network.tor_fault=never"])  # fmt: skip
    boost = rare_events.automatic_boost(config)
    assert "tor" not in boost and "storage" not in boost  # never fails: nothing to boost
    assert boost["power"] >= 30
    expected = rare_events.expected_faults(config, boost)
    assert 0.3 < expected["power"] < 3


# -- the closed form plain sampling cannot resolve --------------------------------------------


def test_a_rare_power_outage_matches_its_closed_form_only_when_accelerated():
    case = rare_power_case()
    accelerated = run_suite([case], QUICK, seed=42)
    assert accelerated.passed, [c.as_dict() for c in accelerated.checks]
    plain = run_suite([replace(case, boost=None)], QUICK, seed=42)
    assert not plain.passed
    assert all(c.status in (Status.IMPRECISE, Status.FAIL) for c in plain.checks)
    power = next(c for c in plain.checks if c.check.metric == "incidents.power")
    assert power.values.sum() <= 3  # plain replications see almost no outage


def test_the_accelerated_estimate_of_a_rare_outage_is_within_its_interval_of_truth():
    case = rare_power_case(replications=400)
    config = rare_events.accelerated(case.fleet_config(8760.0, 9), case.boost)
    summary = run_replications(config, 400, seed=9).summary()
    leaf = summary["metrics"]["host_availability"]
    truth = analytic.warmup_availability(3000 * 8760.0, 6.5, 1.0)
    assert leaf["ci95_low"] <= truth <= leaf["ci95_high"] < 1
    assert summary["rare_events"]["boost"] == {"power": 3000.0}
    assert summary["rare_events"]["effective_sample_size"] < 400


# -- the CLI ---------------------------------------------------------------------------------

SMALL = ["--set", "topology.pods=1", "--set", "topology.racks_per_pod=2", "--set",
         "horizon=0.25y", "--set", "sample_every=1w"]  # fmt: skip


def test_twin_run_rare_events_json_says_what_was_boosted_and_the_effective_sample_size():
    done = CliRunner().invoke(app, ["run", str(DEFAULT), *SMALL, "-r", "4", "--rare-events",
                                    "--json", "--quiet"])  # fmt: skip
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    block = summary["rare_events"]
    assert set(block["boost"]) <= {"tor", "spine", "power", "storage"} and block["boost"]
    for kind, factor in block["boost"].items():
        faults = block["expected_faults"][kind]
        assert faults["boosted"] == pytest.approx(faults["configured"] * factor)
    assert 0 < block["effective_sample_size"] <= 4
    leaf = summary["metrics"]["guest_availability"]
    assert 0 <= leaf["ci95_low"] <= leaf["mean"] <= leaf["ci95_high"] <= 1


def test_a_boost_below_one_is_refused_in_one_line_before_any_work():
    done = CliRunner().invoke(app, ["run", str(DEFAULT), "--set", "rare_events.boost.power=0.5"])
    assert done.exit_code == 2
    assert "rare_events.boost.power" in done.stderr and done.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("command", [["sweep"], ["run", "--replay", "x.csv"]])
def test_commands_that_do_not_weight_refuse_a_boosted_config_in_one_line(command, tmp_path):
    args = [*command[:1], str(DEFAULT), *command[1:], "--set", "rare_events.boost.power=5"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert done.exit_code == 2, done.output
    assert "rare_events" in done.stderr and done.stderr.strip().count("\n") == 0


def test_compare_rare_events_gives_every_arm_the_first_arms_boosts():
    scenario = ROOT / "scenarios" / "rack-power-loss.yaml"
    done = CliRunner().invoke(app, ["compare", str(scenario), "-r", "3", "--rare-events",
                                    "--json", "--quiet", "--set", "horizon=0.1y"])  # fmt: skip
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    boosts = [arm["rare_events"]["boost"] for arm in out["arms"].values()]
    assert boosts[0] and all(b == boosts[0] for b in boosts)
    assert out["verdict_lines"]


def test_sites_run_apart_carry_the_product_of_their_likelihood_ratios():
    sets = ["topology.sites=2", "topology.pods=1", "topology.racks_per_pod=2",
            "topology.hosts_per_rack=4", "operators.per_site=true", "operators.count=2",
            "horizon=0.25y", "sample_every=1w", "rare_events.boost.power=5",
            "rare_events.boost.tor=5"]  # fmt: skip
    serial = run_replications(load_config(DEFAULT, sets), 2, seed=4)
    assert any(w != 0 for w in serial.log_weights)
    args = [arg for kv in sets for arg in ("--set", kv)]
    cmd = [TWIN, "run", str(DEFAULT), *args, "-r", "2", "--seed", "4", "--json", "--workers", "2"]
    pooled = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert pooled.stdout == json.dumps(serial.summary()) + "\n"
