"""The third architecture, kvm (SPEC 1 and 3): Linux is the hypervisor, drivers live in
the kernel, each guest has a device-emulation process of its own, and kernel fixes are
live-patched. Also: the table is the only place an architecture is named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import quiet_config

from twin.agents import GuestState, HostState
from twin.architectures import (
    ARCHITECTURES,
    BEHAVIOURS,
    CRASH_PROB,
    KVM,
    FaultEffect,
    UpdateEffect,
)
from twin.config import ArchitecturesConfig, validate_config
from twin.fleet import Fleet
from twin.processes.guest_processes import ProcessRestart
from twin.processes.migration import movable

ROOT = Path(__file__).resolve().parents[1]
ALL_KVM = {"architecture_mix": {a: float(a == KVM) for a in ARCHITECTURES}}


def kvm_fleet(**overrides) -> Fleet:
    """The quiet 4-host fleet, every host on kvm (2 guests each, detection 15 m, boot 6 m)."""
    overrides["hosts"] = {**ALL_KVM, **overrides.get("hosts", {})}
    return Fleet(quiet_config(**overrides), 1)


def test_a_guest_process_crash_takes_down_that_guest_alone_with_no_operator():
    fleet = kvm_fleet()
    fleet.run_until(10)
    host = fleet.hosts[0]
    victim, neighbour = host.guests
    ProcessRestart(host, victim.index)
    assert victim.state is GuestState.DOWN and neighbour.state is GuestState.UP
    assert host.state is HostState.RUNNING and fleet.operators.tickets == []
    fleet.run_until(10 + 0.25 + 0.1 - 1e-9)  # crash_detection 15 m + boot_time 6 m
    assert victim.state is GuestState.DOWN
    fleet.run_until(100)
    assert victim.state is GuestState.UP
    metrics = fleet.metrics()
    assert metrics["incidents.guest_process"] == 1 and metrics["blast_radius_max"] == 1
    assert metrics["host_availability"] == 1.0
    guest_hours = 100.0 * len(fleet.guests)
    assert metrics["guest_availability"] == pytest.approx(1 - 0.35 / guest_hours, abs=1e-12)
    assert metrics["mttr_hours"] == pytest.approx(0.35)


def test_a_guest_process_clock_runs_only_while_its_guest_is_up():
    """Constant 10 h between process crashes and 21 min to restart: each guest cycles every
    10.35 h, so 9 crashes each in 100 h."""
    fleet = kvm_fleet(architectures={KVM: {"guest_process_fault": 10}})
    metrics = fleet.run()
    assert metrics["incidents.guest_process"] == 9 * len(fleet.guests)
    expected = 1 - (9 * 0.35) / 100.0
    assert metrics["guest_availability"] == pytest.approx(expected, rel=1e-9)


def test_a_host_crash_during_a_process_restart_takes_that_guest_down_with_the_host():
    fleet = kvm_fleet()
    fleet.run_until(10)
    host = fleet.hosts[0]
    ProcessRestart(host, host.guest_ids[0])
    host.crash("hypervisor")
    assert host.restarts == {} and host.booting_guests == 0
    fleet.run_until(100)
    assert all(g.state is GuestState.UP for g in fleet.guests)
    levels = fleet.accounts.ledger
    assert levels.value("guests_up", KVM) == levels.value("guests", KVM) == len(fleet.guests)


def test_a_guest_whose_process_restarts_stays_behind_when_its_host_is_evacuated():
    fleet = kvm_fleet()
    fleet.run_until(10)
    host = fleet.hosts[0]
    restarting, other = host.guest_ids
    ProcessRestart(host, restarting)
    assert list(movable(host)) == [other]
    assert host.guests[0].booting and not host.guests[1].booting


def test_kvm_drivers_live_in_the_kernel_a_severe_fault_crashes_the_host():
    fleet = kvm_fleet(architectures={KVM: {"driver_fault_host_crash_prob": 1.0}})
    fleet.run_until(10)
    host = fleet.hosts[0]
    host.drivers[0].fail()
    assert host.state is HostState.CRASHED
    assert BEHAVIOURS[KVM].driver_fault_outcomes == ((CRASH_PROB, FaultEffect.HOST_CRASH),)


def _campaign(scope: str) -> dict:
    return {"name": "patch", "architecture": KVM, "scope": scope, "every": "4w", "start": 1,
            "batch": 4, "drain": False, "fail_prob": 0.0}  # fmt: skip


def test_a_kvm_kernel_fix_is_live_patched_with_no_reboot_and_no_downtime():
    fleet = kvm_fleet(updates=[_campaign("hypervisor")])
    metrics = fleet.run()
    assert fleet.campaigns["patch"].history  # the release rolled out...
    assert metrics["incidents.update"] == 0  # ...without taking any host down
    assert metrics["guest_availability"] == 1.0 and metrics["degraded_min_per_year"] == 0.0


def test_a_kvm_driver_update_reboots_the_host():
    fleet = kvm_fleet(updates=[_campaign("driver")])
    metrics = fleet.run()
    assert metrics["incidents.update"] == len(fleet.hosts)
    assert metrics["planned_downtime_min_per_year"] > 0


def test_config_may_override_a_fact_of_the_table():
    cfg = quiet_config(hosts=ALL_KVM, architectures={KVM: {
        "update_requires_reboot": {"hypervisor": True}}})  # fmt: skip
    assert cfg.architectures.get(KVM).update_requires_reboot.hypervisor
    default = validate_config({"name": "x"}).architectures.get(KVM)
    assert not default.update_requires_reboot.hypervisor
    reboots = {KVM: {"update_requires_reboot": {"hypervisor": True}}}
    fleet = kvm_fleet(updates=[_campaign("hypervisor")], architectures=reboots)
    assert fleet.run()["incidents.update"] == len(fleet.hosts)
    assert BEHAVIOURS[KVM].update_in_place is UpdateEffect.LIVE_PATCH


def test_every_row_of_the_table_has_a_config_block_and_back():
    assert set(ArchitecturesConfig.model_fields) == set(BEHAVIOURS) == set(ARCHITECTURES)
    defaults = validate_config({"name": "x"})
    for name, behaviour in BEHAVIOURS.items():
        block = defaults.architectures.get(name)
        assert block.crash_auto_reboot is behaviour.crash_auto_reboot
        assert behaviour.cluster_limit > 0


LITERAL = re.compile(r"""["']({})["']""".format("|".join(ARCHITECTURES)))


@pytest.mark.parametrize("package", ["twin", "dashboard"])
def test_no_module_outside_the_table_and_config_names_an_architecture(package):
    allowed = {ROOT / "twin" / "architectures.py"}
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if path not in allowed and "config" not in path.relative_to(ROOT).parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if LITERAL.search(line)
    ]
    assert offenders == []
