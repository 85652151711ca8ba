"""Fleet operations: HA restart, live migration, services, update campaigns, operators,
and scenario injections."""

from __future__ import annotations

import pytest
from conftest import quiet_config

from twin.agents import HostState
from twin.config.schema import Scenario
from twin.fleet import Fleet

MONOLITHIC_ONLY = {"architecture_mix": {"monolithic": 1.0, "microkernel": 0.0}}
MICROKERNEL_ONLY = {"architecture_mix": {"monolithic": 0.0, "microkernel": 1.0}}
# HA with no admission-control reserve: these tests fill hosts to see where capacity ends
HA_ON = {"ha": {"enabled": True, "restart_delay": "1m", "admission_control": {"policy": "none"}}}
NO_STUN = {"stun_time": 0}  # the stun's cost is tested in test_clusters.py


def injections(*items: dict) -> list:
    return Scenario(name="t", base="x.yaml", injections=list(items)).injections


def update(**fields) -> dict:
    spec = {"name": "patch", "scope": "hypervisor", "every": "1000h", "start": 10,
            "batch": 1, "window": "always", "drain": True}  # fmt: skip
    return spec | fields


# -- HA restart ---------------------------------------------------------------------------


def test_ha_restarts_guests_elsewhere_only_as_far_as_capacity_allows():
    cfg = quiet_config(  # two hosts; 3 guests fit a host, 2 are on each
        hosts={"cpu": 6} | MONOLITHIC_ONLY, guests=HA_ON, topology={"racks_per_pod": 1}
    )
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    down, neighbour = fleet.hosts[0], fleet.hosts[1]  # same pod, same architecture
    down.crash("hypervisor")
    fleet.run_until(10.5)
    assert len(neighbour.guests) == 3 and neighbour.cpu_free == 0
    assert len(down.guests) == 1  # no room left for the second guest: it waits for its host
    moved = [g for g in neighbour.guests if g.name in {"g0", "g1"}]
    assert len(moved) == 1 and moved[0].up
    for host in fleet.hosts:
        assert host.cpu_free >= 0 and sum(g.cpu for g in host.guests) <= host.cpu


def test_ha_restarted_guests_are_down_only_for_restart_delay_plus_boot():
    fleet = Fleet(quiet_config(guests=HA_ON), 1)
    fleet.run_until(10)
    fleet.hosts[0].fail_hardware()  # a 2 h repair, but the guests restart elsewhere
    m = fleet.run()
    assert m["mttr_hours"] == pytest.approx(1 / 60 + 0.1)
    assert m["guest_availability"] == pytest.approx(1 - 2 * (1 / 60 + 0.1) / 800)


def test_guests_restarted_by_ha_are_on_their_new_host_and_boot_there():
    fleet = Fleet(quiet_config(guests=HA_ON), 1)
    fleet.run_until(10)
    down = fleet.hosts[0]
    leaving = down.guests
    down.fail_hardware()
    fleet.run_until(10 + 1 / 60 + 0.05)  # restarted, still booting (6 min)
    assert not down.guests and down.guest_count == 0
    for guest in leaving:
        assert guest.host is not down and guest in guest.host.guests
        assert guest.booting and not guest.up
    fleet.run_until(11)
    assert all(g.up and not g.booting for g in leaving)


@pytest.mark.parametrize("ha", [True, False])
def test_a_host_back_from_a_reboot_serves_at_once_only_when_it_has_no_guests_to_boot(ha):
    fleet = Fleet(quiet_config(guests={"ha": {"enabled": ha, "restart_delay": "1m"}}), 1)
    fleet.run_until(10)
    host = fleet.hosts[0]
    host.crash("hypervisor")
    fleet.run_until(10.1)  # with HA its guests have restarted elsewhere
    assert (host.guest_count == 0) is ha
    host.begin_reboot()  # 15 min, then guests boot for 6 min
    fleet.run_until(10.1 + 0.25 + 0.01)
    assert host.is_up and host.serving is ha and host.accepting is ha
    fleet.run_until(10.1 + 0.25 + 0.11)
    assert host.serving and host.accepting


def test_ha_never_breaks_host_anti_affinity():
    cfg = quiet_config(
        hosts=MONOLITHIC_ONLY,
        guests={**HA_ON, "per_host": 0},
        services=[{"name": "db", "replicas": 2, "quorum": 1, "anti_affinity": "host"}],
        topology={"racks_per_pod": 1},
    )
    fleet = Fleet(cfg, 1)
    a, b = (g.host for g in fleet.services["db"].replicas)
    assert a is not b
    fleet.run_until(5)
    a.crash("hypervisor")
    fleet.run_until(6)
    assert [g.host for g in fleet.services["db"].replicas] == [a, b]


def test_placement_keeps_rack_anti_affinity():
    cfg = quiet_config(
        topology={"racks_per_pod": 3},
        services=[{"name": "db", "replicas": 3, "quorum": 2, "anti_affinity": "rack"}],
    )
    fleet = Fleet(cfg, 1)
    assert len({g.host.rack for g in fleet.services["db"].replicas}) == 3


def test_a_two_of_three_service_across_racks_survives_one_rack_power_loss():
    cfg = quiet_config(
        topology={"racks_per_pod": 3},
        services=[{"name": "db", "replicas": 3, "quorum": 2, "anti_affinity": "rack"}],
    )
    fleet = Fleet(cfg, 1, injections=injections({"at": 10, "action": "power_loss", "rack": "r0"}))
    m = fleet.run()
    assert m["incidents.power"] == 1
    assert m["guest_availability"] < 1.0
    assert m["service_availability"] == 1.0


def test_a_two_of_three_service_in_one_rack_goes_down_with_it():
    cfg = quiet_config(
        topology={"racks_per_pod": 3},
        hosts={"cpu": 64},
        guests={"per_host": 0, "placement": "pack"},
        services=[{"name": "db", "replicas": 3, "quorum": 2, "anti_affinity": "none"}],
    )
    fleet = Fleet(cfg, 1, injections=injections({"at": 10, "action": "power_loss", "rack": "r0"}))
    assert {g.host.rack for g in fleet.services["db"].replicas} == {"r0"}
    assert fleet.run()["service_availability"] < 1.0


# -- live migration and escalation ---------------------------------------------------------


def escalating(grace: str, bandwidth: float) -> Fleet:
    cfg = quiet_config(
        hosts=MICROKERNEL_ONLY,
        architectures={"microkernel": {"driver_fault_escalation_prob": 1.0,
                                       "driver_fault_host_crash_prob": 0,
                                       "escalation_grace": grace}},
        guests={"live_migration": {"bandwidth_gbps": bandwidth, "max_concurrent": 1} | NO_STUN},
    )  # fmt: skip
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)
    fleet.hosts[0].drivers[0].fail()
    return fleet


def test_an_escalation_with_enough_grace_live_migrates_every_guest_away():
    fleet = escalating("1h", bandwidth=10.0)  # 16 GB at 10 Gbit/s: 12.8 s per guest
    m = fleet.run()
    assert m["migrations"] == 2
    assert m["guest_availability"] == 1.0
    assert m["incidents.driver"] == 1  # the host still went down


def test_an_evacuation_that_outlasts_the_grace_window_loses_the_remaining_guests():
    fleet = escalating("1m", bandwidth=0.1)  # 21 min per guest: none moves in time
    fleet.run_until(10 + 2 / 60)
    assert fleet.hosts[0].state is HostState.REBOOTING
    assert all(not g.up for g in fleet.hosts[0].guests) and len(fleet.hosts[0].guests) == 2
    m = fleet.run()
    assert m["migrations"] == 0
    assert m["blast_radius_max"] == 2


# -- update campaigns ----------------------------------------------------------------------


def test_a_drained_update_loses_no_guest_time_when_capacity_suffices():
    cfg = quiet_config(
        hosts=MONOLITHIC_ONLY, guests={"live_migration": NO_STUN}, updates=[update(drain=True)]
    )
    fleet = Fleet(cfg, 1)
    m = fleet.run()
    assert m["migrations"] > 0
    assert m["guest_availability"] == 1.0
    assert m["planned_downtime_min_per_year"] == 0.0
    assert m["incidents.update"] == 4  # each host went down for its reboot
    assert all(d.version == 1 for h in fleet.hosts for d in h.drivers)  # image ships drivers


def test_an_undrained_update_shuts_guests_down_as_planned_downtime():
    cfg = quiet_config(hosts=MONOLITHIC_ONLY, updates=[update(drain=False)])
    m = Fleet(cfg, 1).run()
    assert m["migrations"] == 0
    assert m["guest_availability"] < 1.0
    assert m["planned_downtime_min_per_year"] == pytest.approx(m["guest_downtime_min_per_year"])
    assert m["blast_radius_max"] == 2


def test_a_driver_update_restarts_a_service_on_microkernel_but_reboots_monolithic():
    spec = update(scope="driver", drain=False)
    micro = Fleet(quiet_config(hosts=MICROKERNEL_ONLY, updates=[spec]), 1).run()
    assert micro["incidents.update"] == 0 and micro["guest_availability"] == 1.0
    assert micro["degraded_min_per_year"] > 0
    mono = Fleet(quiet_config(hosts=MONOLITHIC_ONLY, updates=[spec]), 1).run()
    assert mono["incidents.update"] == 4 and mono["guest_availability"] < 1.0


@pytest.mark.parametrize("scope", ["hypervisor", "parent_os"])
def test_hypervisor_and_parent_os_updates_reboot_microkernel_hosts(scope):
    m = Fleet(quiet_config(hosts=MICROKERNEL_ONLY, updates=[update(scope=scope)]), 1).run()
    assert m["incidents.update"] == 4


def test_a_failed_update_rolls_back_with_a_second_reboot():
    spec = update(drain=False, fail_prob=1.0, architecture="monolithic")
    fleet = Fleet(quiet_config(hosts=MONOLITHIC_ONLY, updates=[spec]), 1)
    fleet.run()
    reboots = [e for e in fleet.events if e[1] == "h0" and e[3] == "rebooting"]
    assert len(reboots) == 2
    assert all(d.version == 0 for d in fleet.hosts[0].drivers)  # rolled back


def test_a_regressed_release_multiplies_driver_fault_rates_until_the_next_update():
    spec = update(scope="driver", regression_prob=1.0, regression_fault_multiplier=7)
    fleet = Fleet(quiet_config(updates=[spec]), 1)
    fleet.run()
    assert {d.fault_multiplier for h in fleet.hosts for d in h.drivers} == {7.0}


def test_batches_start_only_inside_the_window():
    spec = update(window="Sat 02:00-06:00", start=0)
    fleet = Fleet(quiet_config(horizon="2w", updates=[spec]), 1)
    fleet.run()
    starts = [e[0] for e in fleet.events if e[3] == "maintenance"]
    saturday_2am = 5 * 24 + 2
    assert starts and all(saturday_2am <= t % 168 < saturday_2am + 4 for t in starts)


def test_a_short_staffed_team_slows_a_campaign():
    def campaign_length(operators: int) -> float:
        cfg = quiet_config(
            operators={"count": operators},
            updates=[update(name="a", architecture="monolithic"),
                     update(name="b", architecture="microkernel")],
        )  # fmt: skip
        fleet = Fleet(cfg, 1)
        fleet.run()
        return max(end for c in fleet.campaigns.values() for _, end in c.history) - 10

    assert campaign_length(1) > 1.5 * campaign_length(2)


# -- operators -----------------------------------------------------------------------------


def test_operator_errors_reboot_the_wrong_host():
    fleet = Fleet(quiet_config(operators={"error_prob": 1.0}), 1)
    fleet.run_until(10)
    fleet.hosts[0].fail_hardware()
    m = fleet.run()
    assert m["incidents.operator_error"] == 1
    wrong = [e for e in fleet.events if e[4] == "operator_error" and e[3] == "rebooting"]
    assert wrong and wrong[0][1] == "h1"  # the other host of the same rack


def test_outside_business_hours_the_on_call_engineer_answers_slower():
    cfg = quiet_config(horizon="1w", operators={"shift": "business_hours", "response_time": "10m",
                                                "oncall_response_time": "2h"})  # fmt: skip
    fleet = Fleet(cfg, 1)
    fleet.run_until(24 * 2 + 10)  # Wednesday 10:00
    fleet.hosts[0].fail_hardware()
    fleet.run_until(24 * 5 + 20)  # Saturday 20:00
    fleet.hosts[2].fail_hardware()
    fleet.run()
    waits = [e[0] for e in fleet.events if e[1] == "op0" and e[3] == "working"]
    assert waits[0] == pytest.approx(24 * 2 + 10 + 1 / 6)
    assert waits[1] == pytest.approx(24 * 5 + 20 + 2)


def test_business_hours_follow_the_weekday_of_the_start_date():
    """Hour 0 on a Saturday (2024-01-06): hour 58 is Monday 10:00, in business hours,
    and hour 10 is Saturday 10:00, out of them."""
    cfg = quiet_config(horizon="1w", start_date="2024-01-06",
                       operators={"shift": "business_hours", "response_time": "10m",
                                  "oncall_response_time": "2h"})  # fmt: skip
    fleet = Fleet(cfg, 1)
    fleet.run_until(10)  # Saturday 10:00
    fleet.hosts[0].fail_hardware()
    fleet.run_until(58)  # Monday 10:00
    fleet.hosts[2].fail_hardware()
    fleet.run()
    waits = [e[0] for e in fleet.events if e[1] == "op0" and e[3] == "working"]
    assert waits[0] == pytest.approx(10 + 2)
    assert waits[1] == pytest.approx(58 + 1 / 6)


# -- injections ----------------------------------------------------------------------------


def test_a_buggy_driver_release_reaches_the_given_share_of_hosts():
    cfg = quiet_config(topology={"racks_per_pod": 5})
    items = injections({"at": 5, "action": "driver_regression", "driver": "nic", "share": 0.3,
                        "fault_multiplier": 20})  # fmt: skip
    fleet = Fleet(cfg, 1, injections=items)
    fleet.run_until(6)
    assert sum(d.fault_multiplier == 20 for h in fleet.hosts for d in h.drivers) == 3


def test_converting_a_share_of_hosts_changes_their_architecture_with_a_planned_reboot():
    items = injections({"at": 5, "action": "convert_architecture", "share": 1.0,
                        "to": "microkernel"})  # fmt: skip
    fleet = Fleet(quiet_config(), 1, injections=items)
    m = fleet.run()
    assert {h.architecture for h in fleet.hosts} == {"microkernel"}
    assert m["incidents.update"] == 2
    assert m["by_architecture.microkernel.host_availability"] < 1.0


def test_an_injected_host_crash_and_tor_fault_with_a_known_duration():
    items = injections(
        {"at": 5, "action": "host_crash", "host": "h3", "cause": "parent_os"},
        {"at": 20, "action": "tor_fault", "rack": "r0", "duration": "2h"},
    )
    fleet = Fleet(quiet_config(), 1, injections=items)
    m = fleet.run()
    assert m["incidents.parent_os"] == 1 and m["incidents.network"] == 1
    assert fleet.operators.tickets[-1].kind == "reboot"  # the ToR came back by itself


def test_an_injection_naming_an_unknown_rack_is_a_config_error():
    from twin.config import ConfigError

    items = injections({"at": 5, "action": "power_loss", "rack": "r99"})
    with pytest.raises(ConfigError, match=r"injections\.0\.rack"):
        Fleet(quiet_config(), 1, injections=items)
