"""``twin validate``: the twin against closed forms, end to end and case by case.

Besides the built-in suite, two fleets are built here from scratch, with other parameters than
the suite's, and their closed forms must fall inside the twin's own 95 % intervals.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import quiet_config
from typer.testing import CliRunner

from twin import analytic, validation
from twin.cli import app
from twin.experiments import run_replications

ROOT = Path(__file__).resolve().parents[1]
TWIN = shutil.which("twin", path=str(Path(sys.executable).parent)) or "twin"
SMALL = validation.Mode("test", replications=10, rel_half_width=0.04)


def inside(leaf: dict[str, float], value: float) -> bool:
    return leaf["ci95_low"] <= value <= leaf["ci95_high"]


# -- end to end ---------------------------------------------------------------------------------


def test_validate_quick_passes_and_prints_the_case_table():
    result = subprocess.run(
        [TWIN, "validate", "--quick"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    for column in ("case", "metric", "analytic", "simulated", "95 % CI", "rel. err", "result"):
        assert column in result.stdout
    for case in validation.default_cases():
        assert case.name in result.stdout
    assert "FAIL" not in result.stdout and "ERROR" not in result.stdout


MTTF, DETECTION, REBOOT = 200.0, 0.1, 0.5


def one_cheap_case() -> validation.Case:
    """Eight microkernel hosts, hypervisor and parent-OS crashes each every 400 h."""
    return validation.microkernel_host_case(
        racks=2, hosts_per_rack=4, hypervisor_mttf=2 * MTTF, parent_os_mttf=2 * MTTF,
        detection=DETECTION, reboot_mean=REBOOT,
    )  # fmt: skip


def test_validate_json_reports_every_check_and_exits_1_when_one_fails(monkeypatch):
    """A closed form that forgets crash detection in the repair time must fail."""
    case = one_cheap_case()
    host = case.checks[0]
    right = analytic.alternating_renewal_availability(MTTF, DETECTION + REBOOT)
    assert host.analytic == pytest.approx(right)
    wrong = replace(host, analytic=analytic.alternating_renewal_availability(MTTF, REBOOT))
    monkeypatch.setattr(validation, "default_cases", lambda: (replace(case, checks=(wrong,)),))
    monkeypatch.setattr(validation, "QUICK", SMALL)
    result = CliRunner().invoke(app, ["validate", "--quick", "--json"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["passed"] is False and out["mode"] == "test"
    (check,) = out["cases"][0]["checks"]
    assert check["metric"] == "host_availability"
    assert check["status"] == "FAIL"
    assert not check["ci_low"] <= check["analytic"] <= check["ci_high"]


def test_validate_refuses_a_single_replication():
    result = CliRunner().invoke(app, ["validate", "--replications", "1"])
    assert result.exit_code == 2
    assert "--replications" in result.stderr and "Traceback" not in result.output


# -- the runner's verdicts ----------------------------------------------------------------------


def test_a_run_too_short_for_its_precision_fails_even_if_the_value_is_inside():
    """The CI guard: an interval wider than 5 % of the unavailability cannot pass."""
    case = one_cheap_case()
    suite = validation.run_suite([case], replace(SMALL, rel_half_width=0.4), seed=3)
    availability = suite.checks[0]
    assert availability.precision > validation.MAX_REL_HALF_WIDTH
    assert availability.status is validation.Status.IMPRECISE
    assert not suite.passed


def test_a_case_that_breaks_is_reported_not_raised():
    case = replace(one_cheap_case(), config={"topology": {"sites": 0}})
    suite = validation.run_suite([case], SMALL)
    assert {r.status for r in suite.checks} == {validation.Status.ERROR}
    assert "topology.sites" in (suite.checks[0].error or "")


def test_a_check_on_a_finite_run_adds_what_the_all_up_start_contributes():
    faults = validation.Check("incidents.hardware", 0.05, "λ(N-L)T", per_hour=True, startup=10)
    assert faults.over(1000).analytic == pytest.approx(0.05 * 1000 + 10)
    up = validation.Check("host_availability", 0.1, "1 - L/N", ceiling=1.0, startup=20)
    assert up.over(1000).analytic == pytest.approx(0.1 + 20 / 1000)
    assert up.over(1000).reference == pytest.approx(1 - 0.12)


def test_hosts_up_in_groups_reads_the_event_log():
    """Three hosts, 10 h: h1 down 2-4 h, h2 down 3-6 h: 2 of 3 up except 3-4 h."""
    config = quiet_config(topology={"racks_per_pod": 1, "hosts_per_rack": 3}, horizon=10)
    events = pd.DataFrame(
        [
            (2.0, "h1", "running", "crashed", "hypervisor"),
            (3.0, "h2", "running", "hw_failed", "hardware"),
            (3.5, "h1", "crashed", "rebooting", "hypervisor"),  # still down
            (4.0, "h1", "rebooting", "running", None),
            (5.0, "h2/nic", "up", "driver_reset", "driver"),  # not a host
            (6.0, "h2", "hw_failed", "running", None),
        ],
        columns=["time", "entity", "from_state", "to_state", "cause"],
    )
    got = validation.hosts_up_in_groups(config, events)
    assert got["hosts_up_at_least.3_of_3"] == pytest.approx(1 - 4 / 10)  # someone down 2-6 h
    assert got["hosts_up_at_least.2_of_3"] == pytest.approx(1 - 1 / 10)
    assert got["hosts_up_at_least.1_of_3"] == 1.0


# -- the same closed forms, other fleets --------------------------------------------------------


def test_microkernel_competing_crashes_with_uniform_reboots_match_the_renewal_form():
    """Hypervisor (MTTF 300 h) and parent-OS (MTTF 700 h) crashes, self-reboot after
    detection 0.2 h and a reboot uniform in 0.5-1.5 h: A = 1 / (1 + sum lambda_i MTTR_i),
    and parent-OS incidents = lambda x up-time."""
    detection, reboot = 0.2, {"dist": "uniform", "low": 0.5, "high": 1.5}
    mttr = detection + 1.0
    config = quiet_config(
        horizon=4000,
        topology={"racks_per_pod": 2, "hosts_per_rack": 8},
        hosts={"architecture_mix": {"monolithic": 0, "microkernel": 1}},
        drivers=[],
        architectures={"microkernel": {
            "hypervisor_fault": {"dist": "exponential", "mean": 300},
            "parent_os_fault": {"dist": "exponential", "mean": 700},
            "crash_detection": detection, "reboot_time": reboot, "crash_auto_reboot": True}},
    )  # fmt: skip
    metrics = run_replications(config, 30, seed=11).summary()["metrics"]
    availability = analytic.competing_causes_availability([1 / 300, 1 / 700], [mttr, mttr])
    parent_os = analytic.expected_incidents(1 / 700, 16, 4000, availability)
    assert inside(metrics["host_availability"], availability)
    assert inside(metrics["incidents"]["parent_os"], parent_os)


def test_three_operators_for_six_hosts_match_the_machine_repairman_queue():
    """M/M/3//6: hardware faults (MTTF 30 h) and exponential repairs (10 h) by three
    operators who answer at once; reboot and boot take no time."""
    config = quiet_config(
        horizon=20000,
        topology={"racks_per_pod": 2, "hosts_per_rack": 3},
        drivers=[],
        hardware={"fault": {"dist": "exponential", "mean": 30},
                  "repair": {"dist": "exponential", "mean": 10}},
        architectures={arch: {"reboot_time": 0} for arch in ("monolithic", "microkernel")},
        guests={"boot_time": 0},
        operators={"count": 3, "response_time": 0},
    )  # fmt: skip
    metrics = run_replications(config, 12, seed=12).summary()["metrics"]
    queue = analytic.machine_repairman(6, 3, 1 / 30, 1 / 10)
    assert inside(metrics["host_availability"], queue.host_availability)
    assert inside(metrics["ticket_wait_hours"], queue.mean_wait)
