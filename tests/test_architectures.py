"""Behaviour of each hypervisor architecture (SPEC 1 and the timelines of SPEC 3)."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import quiet_config

from twin.agents import ComponentState, GuestState, HostState, OperatorState
from twin.architectures import BEHAVIOURS, FaultEffect, driver_fault_effect
from twin.config import ConfigError
from twin.fleet import Fleet


def hosts_of(fleet: Fleet, arch: str):
    return [h for h in fleet.hosts if h.architecture == arch]


def guests_down(fleet: Fleet) -> set[str]:
    return {g.name for g in fleet.guests if g.state is GuestState.DOWN}


def test_behaviour_table_maps_driver_faults_per_architecture():
    mono, micro = BEHAVIOURS["monolithic"], BEHAVIOURS["microkernel"]
    p = {"driver_fault_host_crash_prob": 0.2, "driver_fault_escalation_prob": 0.3}
    assert driver_fault_effect(mono, p, 0.1, 1.0) is FaultEffect.HOST_CRASH
    assert driver_fault_effect(mono, p, 0.3, 1.0) is FaultEffect.DRIVER_RESET
    assert driver_fault_effect(micro, p, 0.1, 1.0) is FaultEffect.HOST_CRASH
    assert driver_fault_effect(micro, p, 0.3, 1.0) is FaultEffect.ESCALATION
    assert driver_fault_effect(micro, p, 0.3, 0.0) is FaultEffect.HOST_CRASH
    assert driver_fault_effect(micro, p, 0.5, 1.0) is FaultEffect.SERVICE_RESTART


@pytest.mark.parametrize(
    ("arch", "sets", "message"),
    [
        ("monolithic", {"driver_fault_escalation_prob": 0.1}, "no such driver-fault outcome"),
        ("kvm", {"driver_fault_escalation_prob": 0.1}, "no such driver-fault outcome"),
        ("microkernel", {"driver_fault_host_crash_prob": 0.6,
                         "driver_fault_escalation_prob": 0.5}, "sum to at most 1"),
    ],
)  # fmt: skip
def test_a_probability_for_an_outcome_the_table_lacks_or_above_1_is_a_config_error(
    arch, sets, message
):
    with pytest.raises(ConfigError) as err:
        quiet_config(architectures={arch: sets})
    assert f"architectures.{arch}.driver_fault_escalation_prob" in str(err.value)
    assert message in str(err.value)


def test_microkernel_immediate_crash_outcome_takes_the_host_down_at_once_despite_grace():
    cfg = quiet_config(architectures={"microkernel": {"driver_fault_host_crash_prob": 1.0}})
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    host = hosts_of(fleet, "microkernel")[0]
    host.drivers[0].fail()
    assert host.state is HostState.CRASHED
    assert guests_down(fleet) == {g.name for g in host.guests}


def test_driver_fault_outcomes_follow_their_probabilities():
    cfg = quiet_config(
        horizon="3y",
        hosts={"architecture_mix": {"monolithic": 0, "microkernel": 1}},
        drivers=[{"name": "nic", "fault": {"dist": "exponential", "mean": "2d"}, "share": 1.0}],
        architectures={"microkernel": {"driver_fault_host_crash_prob": 0.2,
                                       "driver_fault_escalation_prob": 0.3,
                                       "crash_auto_reboot": True}},
    )  # fmt: skip
    fleet = Fleet(cfg, 7, record_events=True)
    fleet.run()
    outcomes = Counter(to for _, entity, _, to, _ in fleet.events if "/nic" in entity)
    total = sum(outcomes.values())
    assert total > 1000
    for effect, p in ((FaultEffect.HOST_CRASH, 0.2), (FaultEffect.ESCALATION, 0.3),
                      (FaultEffect.SERVICE_RESTART, 0.5)):  # fmt: skip
        assert outcomes[effect.value] / total == pytest.approx(p, abs=4 * (p / total) ** 0.5)


def test_monolithic_driver_fault_takes_down_every_guest_on_host_and_no_other():
    cfg = quiet_config(architectures={"monolithic": {"driver_fault_host_crash_prob": 1.0}})
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    host = hosts_of(fleet, "monolithic")[0]
    host.drivers[0].fail()
    assert host.state is HostState.CRASHED
    assert guests_down(fleet) == {g.name for g in host.guests}
    fleet.run_until(100)
    metrics = fleet.metrics()
    assert metrics["incidents.driver"] == 1
    assert metrics["blast_radius_max"] == len(host.guests)
    assert metrics["by_architecture.microkernel.guest_availability"] == 1.0


def test_monolithic_contained_driver_fault_only_resets_the_driver():
    cfg = quiet_config(architectures={"monolithic": {"driver_fault_host_crash_prob": 0.0}})
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    host = hosts_of(fleet, "monolithic")[0]
    host.drivers[0].fail()
    assert host.state is HostState.RUNNING
    fleet.run_until(100)
    assert fleet.metrics()["guest_availability"] == 1.0
    assert fleet.metrics()["degraded_min_per_year"] == 0.0


def test_microkernel_driver_fault_keeps_guests_up_and_degrades_host_for_restart_time():
    cfg = quiet_config(architectures={"microkernel": {"driver_fault_host_crash_prob": 0.0}})
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    host = hosts_of(fleet, "microkernel")[0]
    host.drivers[0].fail()
    assert host.state is HostState.DEGRADED
    assert not guests_down(fleet)
    fleet.run_until(10.49)
    assert host.state is HostState.DEGRADED
    fleet.run_until(10.51)
    assert host.state is HostState.RUNNING
    fleet.run_until(100)
    m = fleet.metrics()
    assert m["guest_availability"] == 1.0
    assert m["incidents.driver"] == 0
    hosts = len(hosts_of(fleet, "microkernel"))
    expected = 0.5 * 60 / (hosts * 100 / 8760)  # 30 min degraded over the arch's host-years
    assert m["by_architecture.microkernel.degraded_min_per_year"] == pytest.approx(expected)


def test_microkernel_escalation_reboots_the_host_by_itself_after_the_grace_window():
    cfg = quiet_config(
        architectures={
            "microkernel": {"driver_fault_escalation_prob": 1.0, "driver_fault_host_crash_prob": 0}
        }
    )
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    host = hosts_of(fleet, "microkernel")[0]
    host.drivers[0].fail()
    assert host.state is HostState.DEGRADED and not guests_down(fleet)
    fleet.run_until(11.01)  # grace 1 h over: forced reboot, no operator, no detection
    assert host.state is HostState.REBOOTING
    assert guests_down(fleet) == {g.name for g in host.guests}
    assert all(op.state is OperatorState.IDLE for op in fleet.operators.operators)
    fleet.run_until(100)
    m = fleet.metrics()
    assert m["incidents.driver"] == 1
    # its guests live-migrated away in the grace window: back when the reboot ends,
    # with no guests to boot
    assert m["mttr_hours"] == pytest.approx(0.25)


def test_microkernel_escalation_with_zero_grace_is_a_crash():
    cfg = quiet_config(
        architectures={
            "microkernel": {
                "driver_fault_escalation_prob": 1.0,
                "driver_fault_host_crash_prob": 0,
                "escalation_grace": 0,
            }
        }
    )
    fleet = Fleet(cfg, 1)
    host = hosts_of(fleet, "microkernel")[0]
    fleet.run_until(5)
    host.drivers[0].fail()
    assert host.state is HostState.CRASHED


def test_tor_fault_makes_every_guest_in_the_rack_unavailable_while_hosts_keep_running():
    fleet = Fleet(quiet_config(), 1)
    fleet.run_until(10)
    tor = fleet.components["tor-r0-0"]
    tor.fail()
    rack_hosts = [h for h in fleet.hosts if h.rack == "r0"]
    assert all(h.state is HostState.RUNNING for h in rack_hosts)
    assert guests_down(fleet) == {g.name for h in rack_hosts for g in h.guests}
    fleet.run_until(10 + 0.5 + 1.0 + 0.01)  # response + repair
    assert tor.state is ComponentState.UP
    assert not guests_down(fleet)
    m = fleet.run()
    assert m["incidents.network"] == 1
    assert m["host_availability"] == 1.0
    assert m["blast_radius_max"] == 4


def test_power_loss_takes_down_the_rack_and_hosts_boot_by_themselves_when_it_returns():
    fleet = Fleet(quiet_config(), 1)
    fleet.run_until(10)
    fleet.components["pdu-r1-0"].fail()
    rack = [h for h in fleet.hosts if h.rack == "r1"]
    assert all(not h.is_up for h in rack)
    fleet.run_until(10 + 0.5 + 3.0 + 0.01)  # power back: the hosts reboot, no ticket
    assert all(h.state is HostState.REBOOTING for h in rack)
    m = fleet.run()
    assert m["incidents.power"] == 1
    assert m["mttr_hours"] == pytest.approx(0.5 + 3.0 + 0.25 + 0.1)


def test_one_operator_serialises_two_repairs():
    fleet = Fleet(quiet_config(), 1)
    fleet.run_until(10)
    a, b = fleet.hosts[0], fleet.hosts[2]
    a.fail_hardware()
    b.fail_hardware()
    fleet.run()
    first, second = fleet.operators.tickets
    assert first.taken == 10 and second.taken == pytest.approx(10 + 0.5 + 2.0)
    assert fleet.metrics()["ticket_wait_hours"] == pytest.approx(2.5 / 2)


def test_more_urgent_tickets_jump_the_queue():
    fleet = Fleet(quiet_config(), 1)
    fleet.run_until(10)
    fleet.hosts[0].fail_hardware()  # takes the only operator
    fleet.hosts[2].fail_hardware()  # waits
    fleet.components["pdu-r1-0"].fail()  # waits, but power outranks hosts
    fleet.run()
    kinds = [(t.kind, t.taken) for t in sorted(fleet.operators.tickets, key=lambda t: t.taken)]
    assert kinds[1][0] == "component_repair"


def test_crash_auto_reboot_needs_no_operator():
    cfg = quiet_config(architectures={"microkernel": {"crash_auto_reboot": True}})
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    host = hosts_of(fleet, "microkernel")[0]
    host.crash("hypervisor")
    fleet.run()
    assert fleet.operators.tickets == []
    assert fleet.metrics()["mttr_hours"] == pytest.approx(0.25 + 0.25 + 0.1)


def test_parent_os_faults_exist_only_on_microkernel_hosts():
    cfg = quiet_config(
        horizon="2y",
        architectures={
            "monolithic": {"parent_os_fault": {"dist": "exponential", "mean": "10d"}},
            "microkernel": {"parent_os_fault": {"dist": "exponential", "mean": "10d"}},
        },
    )
    m = Fleet(cfg, 3).run()
    assert m["by_architecture.microkernel.incidents.parent_os"] > 10
    assert m["by_architecture.monolithic.incidents.parent_os"] == 0
