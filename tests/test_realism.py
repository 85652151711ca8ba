"""Fault and repair realism (issue 15): hands-on repairs, software aging and rejuvenation,
patch compliance and missed updates, saturation warnings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import quiet_config
from test_cli import TWIN

from twin.agents import HostState, OperatorState
from twin.experiments.saturation import saturation_warnings
from twin.fleet import Fleet
from twin.metrics import summarise

ROOT = Path(__file__).resolve().parents[1]
MONOLITHIC_ONLY = {"architecture_mix": {"monolithic": 1, "microkernel": 0}}
MICROKERNEL_ONLY = {"architecture_mix": {"monolithic": 0, "microkernel": 1}}


def update(**fields) -> dict:
    spec = {"name": "patch", "scope": "hypervisor", "every": "1000h", "start": 10,
            "batch": 1, "window": "always", "drain": False}  # fmt: skip
    return spec | fields


# -- hands-on time ---------------------------------------------------------------------------


def test_an_operator_is_busy_only_for_the_hands_on_part_and_the_host_waits_for_parts():
    cfg = quiet_config(hardware={"repair": "10h", "hands_on": "1h"})
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    host = fleet.hosts[0]
    host.fail_hardware()
    fleet.run_until(10 + 0.5 + 1.01)  # response + hands-on: the operator is free again
    assert fleet.operators.operators[0].state is OperatorState.IDLE
    assert host.state is HostState.HW_FAILED
    fleet.run_until(10 + 0.5 + 10.01)  # the repair is over: the host boots by itself
    assert host.state is HostState.REBOOTING
    m = fleet.run()
    assert m["operator_utilization"] == pytest.approx(1.5 / 100)
    assert m["mttr_hours"] == pytest.approx(0.5 + 10 + 0.25 + 0.1)


def one_repair(repair: str, hands_on: str) -> dict[str, float]:
    """The metrics of the quiet fleet after one hardware fault at hour 10."""
    fleet = Fleet(quiet_config(hardware={"repair": repair, "hands_on": hands_on}), 1)
    fleet.run_until(10)
    fleet.hosts[0].fail_hardware()
    return fleet.run()


def test_hands_on_repair_holds_the_operator_for_the_whole_repair():
    assert one_repair("10h", "repair")["operator_utilization"] == pytest.approx(10.5 / 100)


def test_hands_on_is_capped_at_the_repair():
    m = one_repair("1h", "5h")
    assert m["operator_utilization"] == pytest.approx(1.5 / 100)
    assert m["mttr_hours"] == pytest.approx(0.5 + 1 + 0.25 + 0.1)


def test_a_second_repair_waits_only_for_the_first_ones_hands_on_part():
    fleet = Fleet(quiet_config(hardware={"repair": "10h", "hands_on": "1h"}), 1)
    fleet.run_until(10)
    fleet.hosts[0].fail_hardware()
    fleet.hosts[2].fail_hardware()
    fleet.run()
    first, second = fleet.operators.tickets
    assert second.taken == pytest.approx(first.taken + 0.5 + 1.0)


# -- software aging and rejuvenation -------------------------------------------------------------

AGING = {"aging": {"onset": "10h", "failure": "5h"}, "crash_auto_reboot": True}


def test_an_aged_host_crashes_of_aging_after_onset_plus_failure():
    fleet = Fleet(quiet_config(architectures={"microkernel": AGING}), 1)
    host = next(h for h in fleet.hosts if h.architecture == "microkernel")
    fleet.run_until(14.99)
    assert host.state is HostState.RUNNING
    fleet.run_until(15.01)
    assert host.state is HostState.CRASHED and host.cause == "aging"
    m = fleet.run()
    # every cycle: 15 h up, 15 min detection + 15 min reboot (and the guests' 6 min boot)
    assert m["by_architecture.microkernel.incidents.aging"] == 2 * int(100 // 15.5)
    assert m["by_architecture.monolithic.incidents.aging"] == 0


def test_any_reboot_resets_aging():
    fleet = Fleet(quiet_config(architectures={"microkernel": AGING}), 1)
    host = next(h for h in fleet.hosts if h.architecture == "microkernel")
    fleet.run_until(12)  # aged since hour 10
    host.crash("hypervisor")  # an unrelated crash: rebooted at 12.5, fresh again
    fleet.run_until(12.5 + 14.9)
    assert host.state is HostState.RUNNING
    fleet.run_until(12.5 + 15.1)
    assert host.cause == "aging"


def test_aging_never_switches_it_off():
    cfg = quiet_config(horizon="1y", architectures={"microkernel": {"aging": "never"}})
    assert Fleet(cfg, 1).run()["incidents.aging"] == 0


def test_a_reboot_campaign_rejuvenates_hosts_before_they_crash_of_aging():
    spec = update(name="rejuvenate", architecture="microkernel", scope="reboot", every="12h",
                  start=6, batch=2)  # fmt: skip
    cfg = quiet_config(hosts=MICROKERNEL_ONLY, architectures={"microkernel": AGING},
                       operators={"count": 2}, updates=[spec])  # fmt: skip
    m = Fleet(cfg, 1).run()
    assert m["incidents.aging"] == 0
    assert m["incidents.update"] > 0
    without = Fleet(quiet_config(hosts=MICROKERNEL_ONLY, architectures={"microkernel": AGING}), 1)
    assert without.run()["incidents.aging"] > 0


# -- patch compliance --------------------------------------------------------------------------


def test_compliance_is_one_without_campaigns_and_falls_while_a_release_rolls():
    assert Fleet(quiet_config(), 1).run()["patch_compliance"] == 1.0
    cfg = quiet_config(hosts=MONOLITHIC_ONLY, updates=[update(start=50)])
    m = Fleet(cfg, 1).run()
    assert 0.5 < m["patch_compliance"] < 1.0
    assert m["updates_missed"] == 0


def test_a_host_down_at_its_turn_misses_the_release():
    cfg = quiet_config(
        hosts=MONOLITHIC_ONLY,
        hardware={"repair": "30h", "hands_on": "1h"},
        updates=[update(start=50)],
    )
    fleet = Fleet(cfg, 1)
    fleet.run_until(49)
    fleet.hosts[-1].fail_hardware()  # down for the whole campaign
    m = fleet.run()
    assert m["updates_missed"] == 1
    assert m["by_architecture.monolithic.updates_missed"] == 1


def test_a_release_that_cannot_finish_before_the_next_is_counted_not_dropped():
    # one host at a time, a window of one hour a day, a release every day: never finishes
    spec = update(every="24h", start=0, window="daily 01:00-02:00")
    m = Fleet(quiet_config(hosts=MONOLITHIC_ONLY, updates=[spec]), 1).run()
    assert m["releases_superseded"] >= 3
    assert m["updates_missed"] >= 3
    assert m["patch_compliance"] < 0.5


# -- saturation warnings ---------------------------------------------------------------------------


def leaf(value: float) -> dict[str, float]:
    return {"mean": value, "ci95_low": value, "ci95_high": value}


def test_a_saturated_team_and_a_late_campaign_each_give_one_warning():
    metrics = {"operator_utilization": leaf(0.95), "ticket_wait_hours": leaf(30.0),
               "releases_superseded": leaf(2.0), "updates_missed": leaf(40.0)}  # fmt: skip
    warnings = saturation_warnings(metrics)
    assert len(warnings) == 3
    assert "operator utilisation 0.95" in warnings[0]
    assert "30" in warnings[1] and "campaign" in warnings[2]


def test_a_healthy_run_gives_no_warning():
    metrics = summarise([Fleet(quiet_config(), 1).run()])
    assert saturation_warnings(metrics) == []


def test_twin_run_and_compare_say_saturation_on_stderr_and_in_the_json():
    swamped = ["--set", "hardware.hands_on=repair", "--set", "operators.count=1",
               "--set", "hardware.fault={dist: exponential, mean: 5d}",
               "--set", "topology.racks_per_pod=1", "--set", "updates=[]"]  # fmt: skip
    for command in (["run", "--horizon", "20d"], ["compare", "--set", "horizon=20d"]):
        out = subprocess.run(
            [TWIN, *command, str(ROOT / "configs" / "default.yaml"), *swamped, "-r", "1", "--json"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        warnings = json.loads(out.stdout)["warnings"]  # stdout is the JSON alone
        assert any("operators saturated" in w for w in warnings)
        lines = out.stderr.splitlines()
        assert len(lines) == len(warnings) and all(x.startswith("warning: ") for x in lines)
