"""Cluster realism (issue 16): clusters within product limits, HA admission control, DRS,
datastores, host isolation, live-migration failure and stun, canary rollouts and freezes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import quiet_config
from typer.testing import CliRunner

from twin.agents import HostState
from twin.architectures import BEHAVIOURS, MICROKERNEL, MONOLITHIC
from twin.cli import app
from twin.config import ConfigError, load_config, validate_config
from twin.fleet import Fleet
from twin.placement import form_clusters, ha_reserve

ROOT = Path(__file__).resolve().parents[1]
ONE_ARCH = {"architecture_mix": {MONOLITHIC: 1.0, MICROKERNEL: 0.0}}
NO_RESERVE = {"policy": "none"}


def ha(**fields) -> dict:
    return {"enabled": True, "restart_delay": "1m", "admission_control": NO_RESERVE} | fields


def update(**fields) -> dict:
    spec = {"name": "patch", "scope": "hypervisor", "every": "1000h", "start": 10,
            "batch": 1, "window": "always", "drain": True}  # fmt: skip
    return spec | fields


def loads(fleet: Fleet, hosts) -> list[float]:
    return [1 - h.cpu_free / h.cpu for h in hosts]


# -- clusters -----------------------------------------------------------------------------


def test_a_200_host_monolithic_cluster_is_refused_naming_hosts_cluster_size():
    with pytest.raises(ConfigError, match=r"^hosts\.cluster_size: .*limit of 96"):
        validate_config({"name": "x", "hosts": {"cluster_size": 200} | ONE_ARCH})
    run = CliRunner().invoke(
        app,
        ["check", str(ROOT / "configs/default.yaml"), "--set", "hosts.cluster_size=200",
         "--set", "hosts.architecture_mix.microkernel=0",
         "--set", "hosts.architecture_mix.monolithic=1"],
    )  # fmt: skip
    assert run.exit_code == 2
    assert "hosts.cluster_size" in run.output
    assert len(run.output.strip().splitlines()) == 1


def test_a_microkernel_cluster_above_64_hosts_is_refused_but_96_monolithic_is_not():
    mix = {"architecture_mix": {MONOLITHIC: 0.5, MICROKERNEL: 0.5}}
    with pytest.raises(ConfigError, match=r"hosts\.cluster_size"):
        validate_config({"name": "x", "hosts": {"cluster_size": 65} | mix})
    assert validate_config({"name": "x", "hosts": {"cluster_size": 96} | ONE_ARCH})


def test_default_clusters_are_inside_one_pod_and_architecture_and_at_most_cluster_size():
    fleet = Fleet(load_config(ROOT / "configs/default.yaml"), 1)
    size = fleet.config.hosts.cluster_size
    assert len(fleet.clusters.groups) == 4  # 64 hosts per pod and architecture, by 32
    for name, hosts in fleet.clusters.items():
        assert len(hosts) <= min(size, hosts[0].behaviour.cluster_limit)
        assert len({(h.pod, h.architecture) for h in hosts}) == 1
        assert name == f"{hosts[0].pod}/{hosts[0].architecture}/{name.rsplit('/', 1)[1]}"
        assert len({h.rack for h in hosts}) > 1  # a cluster spans racks
        assert all(h.cluster == name for h in hosts)


def test_clusters_are_dealt_round_robin_into_even_sizes():
    limits = {"a": 48}
    numbers = form_clusters([("p", "a")] * 64 + [("q", "a")] * 10, limits)
    assert [numbers[:64].count(k) for k in (0, 1)] == [32, 32]
    assert set(numbers[64:]) == {0}


def test_ha_restarts_guests_only_inside_their_cluster():
    cfg = quiet_config(hosts={"cluster_size": 2} | ONE_ARCH, guests={"ha": ha()})
    fleet = Fleet(cfg, 1)
    down = fleet.hosts[0]
    mates = [h for h in fleet.clusters.of(down) if h is not down]
    others = [h for h in fleet.hosts if h.cluster != down.cluster]
    assert len(mates) == 1 and len(others) == 2
    fleet.run_until(1)
    down.crash("hypervisor")
    fleet.run_until(1.5)
    assert len(mates[0].guests) == 4 and all(len(h.guests) == 2 for h in others)


def test_an_inventory_gives_each_host_its_cluster(tmp_path):
    rows = ["host,rack,pod,site,architecture,cluster"]
    rows += [f"h{i},r{i // 2},p0,s0,{MONOLITHIC},{'gold' if i < 3 else ''}" for i in range(4)]
    path = tmp_path / "hosts.csv"
    path.write_text("\n".join(rows) + "\n")
    fleet = Fleet(quiet_config(hosts={"inventory": str(path)}), 1)
    assert [h.name for h in fleet.clusters.groups["gold"]] == ["h0", "h1", "h2"]
    assert [h.cluster for h in fleet.hosts][3] == f"p0/{MONOLITHIC}/0"
    rows[4] = f"h3,r9,p1,s0,{MONOLITHIC},gold"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError, match=r"^hosts\.inventory: cluster 'gold' spans"):
        Fleet(quiet_config(hosts={"inventory": str(path)}), 1)


# -- HA admission control -------------------------------------------------------------------


def test_a_placement_into_the_ha_reserve_is_a_config_error():
    full = {"cpu": 4} | ONE_ARCH  # 2 guests x 2 cpu fill every host
    for policy in ({"policy": "host_failures"}, {"policy": "percentage", "cpu_reserved": 0.2}):
        with pytest.raises(ConfigError, match=r"^guests\.ha\.admission_control: cluster"):
            Fleet(quiet_config(hosts=full, guests={"ha": ha(admission_control=policy)}), 1)
    Fleet(quiet_config(hosts=full, guests={"ha": ha()}), 1)  # policy none: accepted
    lone = full | {"cluster_size": 1}  # a lone host has nowhere to fail over: exempt
    Fleet(quiet_config(hosts=lone, guests={"ha": ha(admission_control={})}), 1)


def test_the_reserve_is_the_largest_hosts_or_a_cpu_share():
    assert ha_reserve([64, 32, 128], [512, 256, 256], "host_failures", 2, 0.0) == (192, 768)
    assert ha_reserve([64, 64], [512, 512], "percentage", 1, 0.25) == (32.0, 0.0)
    assert ha_reserve([64], [512], "none", 1, 0.25) == (0.0, 0.0)


def test_with_admission_control_a_host_crash_in_a_default_cluster_restarts_every_guest():
    cfg = load_config(ROOT / "configs/default.yaml")
    assert cfg.guests.ha.admission_control.policy == "host_failures"
    fleet = Fleet(cfg, 3)
    fleet.run_until(1)
    host = next(h for h in fleet.hosts if h.is_up and h.guest_count == 20)
    host.crash("hypervisor")
    fleet.run_until(1 + 2 / 60)
    assert host.guest_count == 0
    assert fleet.metrics()["ha_restart_failures"] == 0


def test_ha_restarts_may_use_the_reserve():
    # 4 hosts of 8 cpu, 2 guests x 2 cpu each: half reserved leaves exactly the placement
    policy = {"policy": "percentage", "cpu_reserved": 0.5}
    cfg = quiet_config(hosts={"cpu": 8} | ONE_ARCH, guests={"ha": ha(admission_control=policy)})
    fleet = Fleet(cfg, 1)
    fleet.run_until(1)
    fleet.hosts[0].crash("hypervisor")
    fleet.run_until(1.5)
    assert fleet.hosts[0].guest_count == 0 and fleet.metrics()["ha_restart_failures"] == 0


def test_guests_ha_cannot_place_are_counted_with_the_time_they_waited():
    cfg = quiet_config(hosts={"cpu": 4} | ONE_ARCH, guests={"ha": ha()})  # no room anywhere
    fleet = Fleet(cfg, 1)
    fleet.run_until(1)
    fleet.hosts[0].crash("hypervisor")
    m = fleet.run()
    assert m["ha_restart_failures"] == 2
    # HA tried after 1 m; the guests were back after detection 15 m + response 30 m +
    # reboot 15 m + boot 6 m
    assert m["ha_restart_wait_hours"] == pytest.approx((66 - 1) / 60)
    assert m["ha_restart_retried"] == 0  # four retries, 30 minutes: no room came free


def _a_full_cluster_whose_crashed_host_is_back_empty(retries: list[str]) -> Fleet:
    """Four hosts of 8 cpu, 3 guests x 2 cpu each (2 cpu free on each). At 1 h host 2
    crashes: HA spreads its 3 guests over the other three, which are full then. At 1.7 h
    host 0 crashes: its 4 guests fit nowhere. Host 2 is back at 2 h (15 m detection, 30 m
    response, 15 m reboot), empty, with room for all of them."""
    cfg = quiet_config(hosts={"cpu": 8} | ONE_ARCH,
                       guests={"per_host": 3, "ha": ha(retries=retries)})  # fmt: skip
    fleet = Fleet(cfg, 1)
    fleet.run_until(1)
    fleet.hosts[2].crash("hypervisor")
    fleet.run_until(1.7)
    assert [h.guest_count for h in fleet.hosts] == [4, 4, 0, 4]
    fleet.hosts[0].crash("hypervisor")
    fleet.run_until(1.7 + 2 / 60)
    assert fleet.hosts[0].guest_count == 4 and fleet.metrics()["ha_restart_failures"] == 4
    return fleet


def test_ha_tries_again_and_places_the_guests_once_room_comes_free():
    # vSphere HA's retries: 2, 6, 14 and 30 minutes after the first attempt (at 1.7 h + 1 m)
    fleet = _a_full_cluster_whose_crashed_host_is_back_empty(["2m", "6m", "14m", "30m"])
    fleet.run_until(2.2)  # host 2 accepts again at 2 h; the 14 m retry (1.95 h) was early
    assert fleet.hosts[0].guest_count == 4
    fleet.run_until(1.7 + 1 / 60 + 31 / 60)  # just after the 30 m retry
    assert fleet.hosts[0].guest_count == 0 and fleet.hosts[2].guest_count == 4
    m = fleet.metrics()
    assert m["ha_restart_failures"] == 0 and m["ha_restart_retried"] == 4


def test_ha_gives_up_after_its_last_retry_and_the_guests_wait_for_their_host():
    fleet = _a_full_cluster_whose_crashed_host_is_back_empty(["2m", "6m", "14m"])
    fleet.run_until(2.4)  # room since 2 h, but the last retry was at 1.95 h
    assert fleet.hosts[0].guest_count == 4
    m = fleet.metrics()
    assert m["ha_restart_failures"] == 4 and m["ha_restart_retried"] == 0


def test_ha_retries_must_increase():
    with pytest.raises(ConfigError, match=r"^guests\.ha\.retries: retries must increase"):
        validate_config({"name": "x", "guests": {"ha": {"retries": ["6m", "2m"]}}})


# -- live migration -------------------------------------------------------------------------


def test_each_completed_migration_costs_its_guest_the_stun_time():
    stun = {"stun_time": "1s"}
    cfg = quiet_config(hosts=ONE_ARCH, guests={"live_migration": stun}, updates=[update()])
    fleet = Fleet(cfg, 1)
    m = fleet.run()
    moved = m["migrations"]
    assert moved >= 8 and m["incidents.update"] == 4
    guest_hours = 8 * fleet.config.horizon
    assert m["guest_availability"] == pytest.approx(1 - moved / 3600 / guest_hours, abs=1e-12)
    assert m["migration_downtime_min_per_year"] == pytest.approx(moved / 60 / (guest_hours / 8760))
    assert m["planned_downtime_min_per_year"] == 0.0


def test_a_failed_migration_leaves_the_guest_on_its_source_and_a_drain_retries_once():
    lm = {"fail_prob": 1.0, "stun_time": 0}
    cfg = quiet_config(hosts=ONE_ARCH, guests={"live_migration": lm},
                       updates=[update(start=10, every="1000h")], horizon=11)  # fmt: skip
    fleet = Fleet(cfg, 1)
    fleet.run_until(10 + 0.5 + 1 / 60)  # the operator answers at 10.5; two short drains
    host = fleet.hosts[0]
    assert host.state in (HostState.MAINTENANCE, HostState.REBOOTING)
    assert host.guest_count == 2  # both tries failed: they go down with the host
    starts = [e for e in fleet.events if e[1] == "g0" and e[3] == "migrating"]
    assert len(starts) == 2
    m = fleet.run()
    assert m["migrations"] == 0 and m["planned_downtime_min_per_year"] > 0


# -- datastores -----------------------------------------------------------------------------


def test_a_failed_datastore_takes_its_guests_but_not_its_hosts():
    storage = {"fault": {"dist": "constant", "value": 10}, "repair": "2h"}
    fleet = Fleet(quiet_config(storage=storage, horizon=14), 1)
    fleet.run_until(11)
    assert all(h.state is HostState.RUNNING for h in fleet.hosts)
    assert not any(g.up for g in fleet.guests)
    assert fleet.snapshot()["datastores_down"] == ["san-s0p0"]
    m = fleet.run()
    assert m["incidents.storage"] == 1 and m["host_availability"] == 1.0
    assert m["blast_radius_max"] == 8
    assert m["guest_availability"] == pytest.approx(1 - 2.5 / 14)  # response 30 m + repair 2 h


def test_a_cluster_datastore_takes_only_its_clusters_guests():
    cfg = quiet_config(hosts={"cluster_size": 2} | ONE_ARCH, storage={"scope": "cluster"})
    fleet = Fleet(cfg, 1)
    name = fleet.hosts[0].cluster
    fleet.components[f"ds-{name}"].fail(repair_hours=1.0)
    assert [g.up for h in fleet.hosts for g in h.guests] == [
        h.cluster != name for h in fleet.hosts for _ in h.guests
    ]
    m = fleet.run()
    assert m["incidents.storage"] == 1 and m["blast_radius_max"] == 4


# -- host isolation -------------------------------------------------------------------------


@pytest.mark.parametrize("response", ["leave_on", "power_off"])
def test_an_isolated_host_powers_guests_off_for_ha_or_leaves_them_waiting(response):
    cfg = quiet_config(hosts={"cpu": 16} | ONE_ARCH,
                       guests={"ha": ha(isolation_response=response)})  # fmt: skip
    fleet = Fleet(cfg, 1)
    fleet.run_until(1)
    fleet.components["tor-r0-0"].fail(repair_hours=5.0)  # hosts h0, h1 cut off
    fleet.run_until(1.5)
    isolated = fleet.hosts[:2]
    assert all(h.state is HostState.RUNNING and not h.reachable for h in isolated)
    if response == "power_off":  # restarted on h2, h3 after 1 m + a 6 m boot
        assert all(h.guest_count == 0 for h in isolated)
        assert all(g.up for g in fleet.guests)
    else:
        assert all(h.guest_count == 2 for h in isolated)
        assert sum(g.up for g in fleet.guests) == 4
    m = fleet.run()
    lost = (1 + 6) / 60 if response == "power_off" else 5.0
    assert m["guest_availability"] == pytest.approx(1 - 4 * lost / (8 * 100))


# -- DRS ------------------------------------------------------------------------------------


def test_drs_brings_guests_back_to_a_host_ha_emptied():
    drs = {"enabled": True, "every": "1h", "imbalance": 0.2}
    cfg = quiet_config(hosts={"cpu": 16} | ONE_ARCH, guests={"ha": ha(), "drs": drs})
    fleet = Fleet(cfg, 1)
    fleet.run_until(1)
    fleet.hosts[0].crash("hypervisor")
    fleet.run_until(1.1)
    assert fleet.hosts[0].guest_count == 0
    fleet.run_until(5)  # back at about 2.1 h; the next DRS pass evens the cluster out
    spread = loads(fleet, fleet.hosts)
    assert max(spread) - min(spread) <= 0.2
    assert fleet.hosts[0].guest_count > 0
    assert fleet.metrics()["migrations"] > 0


def test_drs_leaves_a_balanced_cluster_alone():
    drs = {"enabled": True, "every": "1h", "imbalance": 0.2}
    m = Fleet(quiet_config(hosts=ONE_ARCH, guests={"drs": drs}), 1).run()
    assert m["migrations"] == 0


# -- safer rollouts -------------------------------------------------------------------------


def test_a_failed_canary_halts_the_release():
    bad = update(drain=False, fail_prob=1.0, canary={"hosts": 1, "soak": "2h"})
    fleet = Fleet(quiet_config(hosts=ONE_ARCH, updates=[bad]), 1)
    m = fleet.run()
    assert m["incidents.update"] == 2  # the canary's reboot and its rollback, nothing else
    assert any(e[1] == "campaign/patch" and e[3] == "halted" for e in fleet.events)
    without = Fleet(quiet_config(hosts=ONE_ARCH, updates=[update(drain=False, fail_prob=1.0)]), 1)
    assert without.run()["incidents.update"] == 8


def test_a_good_canary_soaks_then_the_release_goes_on():
    spec = update(drain=False, canary={"hosts": 1, "soak": "20h"})
    fleet = Fleet(quiet_config(hosts=ONE_ARCH, updates=[spec]), 1)
    m = fleet.run()
    assert m["incidents.update"] == 4
    downs = sorted(e[0] for e in fleet.events if e[3] == "maintenance")
    assert downs[1] - downs[0] > 20


def test_no_batch_starts_inside_a_change_freeze():
    freeze = [{"from": "01-01", "to": "01-03"}]  # the first three days of the run
    spec = update(start=0, freeze=freeze)
    fleet = Fleet(quiet_config(start_date="2024-01-01", updates=[spec], horizon=200), 1)
    fleet.run()
    starts = [e[0] for e in fleet.events if e[3] == "maintenance"]
    assert starts and min(starts) >= 72


def test_a_freeze_across_new_year_and_a_bad_day_are_read_from_the_calendar():
    import datetime as dt

    from twin.dates import Freeze, freeze_end

    winter = Freeze((12, 20), (1, 5))
    start = dt.date(2024, 12, 19)
    assert freeze_end(10, [winter], start) == 10
    assert freeze_end(30, [winter], start) == (dt.date(2025, 1, 6) - start).days * 24
    with pytest.raises(ConfigError, match=r"updates\.0\.freeze\.0\.to"):
        validate_config(
            {"name": "x", "updates": [update(freeze=[{"from": "12-20", "to": "13-01"}])]}
        )


def test_windows_are_read_on_the_weekday_of_start_date():
    spec = update(window="Sat 02:00-06:00", start=0)
    fleet = Fleet(quiet_config(start_date="2024-01-06", horizon="2d", updates=[spec]), 1)
    fleet.run()  # 2024-01-06 is a Saturday: the window opens at hour 2
    starts = [e[0] for e in fleet.events if e[3] == "maintenance"]
    assert starts and all(2 <= t < 6 for t in starts)


def test_the_cluster_limits_are_facts_of_the_table():
    assert {BEHAVIOURS[MONOLITHIC].cluster_limit, BEHAVIOURS[MICROKERNEL].cluster_limit} == {96, 64}
