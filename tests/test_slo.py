"""Per-guest downtime, SLOs per calendar period, error budgets and costs (issue 19)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from conftest import QUIET, quiet_config

from twin.architectures import ARCHITECTURES, KVM, MICROKERNEL, MONOLITHIC
from twin.config import ConfigError, validate_config
from twin.engine import Calendar
from twin.fleet import Fleet
from twin.periods import boundaries, next_boundary
from twin.slo import breach_probability, downtime_per_year, downtime_percentiles


class PlainGuestClock:
    """The plain reference: before every timer fires, read every guest's ``up`` (from
    its host's state and its own restart or HA boot) and integrate its downtime."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fleet: Fleet | None = None
        self.last = 0.0
        self.down: np.ndarray | None = None
        schedule = Calendar.schedule

        def probed(calendar: Calendar, time: float, fn: Any) -> Any:
            def fire() -> None:
                self.probe()
                fn()

            return schedule(calendar, time, fire)

        monkeypatch.setattr(Calendar, "schedule", probed)

    def probe(self) -> None:
        fleet = self.fleet
        if fleet is None:
            return
        if self.down is None:
            self.down = np.zeros(len(fleet.guests))
        now = fleet.time
        for guest in fleet.guests:
            if not guest.up:
                self.down[guest.index] += now - self.last
        self.last = now


def _random_fleet(seed: int, stun: Any = 0) -> dict[str, Any]:
    """A small mixed fleet with every kind of outage; ``stun`` is the live-migration stun
    (0 for the plain reference, which reads guests' states between events and so cannot
    see a stun)."""
    rng = np.random.default_rng(seed)
    mean = float(rng.uniform(30, 120))
    return {
        "horizon": float(rng.uniform(200, 600)),
        "topology": {"racks_per_pod": 3, "hosts_per_rack": 3},
        "hosts": {"architecture_mix": {MONOLITHIC: 0.4, MICROKERNEL: 0.3, KVM: 0.3},
                  "assign": "random"},
        "architectures": {
            arch: {"hypervisor_fault": {"dist": "exponential", "mean": mean * 2},
                   "crash_auto_reboot": bool(i % 2)}
            for i, arch in enumerate(ARCHITECTURES)
        } | {KVM: {"guest_process_fault": {"dist": "exponential", "mean": mean},
                   "hypervisor_fault": {"dist": "exponential", "mean": mean * 3}}},
        "drivers": [{"name": "nic", "fault": {"dist": "exponential", "mean": mean}, "share": 1}],
        "hardware": {"fault": {"dist": "exponential", "mean": mean * 4}, "repair": "3h"},
        "network": {"tor_fault": {"dist": "exponential", "mean": mean * 3}},
        "guests": {"per_host": 3, "ha": {"enabled": True, "restart_delay": "5m"},
                   "live_migration": {"stun_time": stun}},
        "updates": [{"name": "u", "architecture": "all", "scope": "hypervisor",
                     "every": "3d", "batch": 2, "drain": True}],
        "operators": {"count": 2},
    }  # fmt: skip


def test_live_migration_stuns_count_in_each_guests_own_downtime():
    """With a stun on every completed migration, the guests' own downtimes still add up to
    the fleet's unavailable guest-hours (the stuns are in both)."""
    config = quiet_config(**_random_fleet(1, stun="1m"))
    fleet = Fleet(config, 1, record_events=False)
    fleet.run_until(config.horizon)
    assert fleet.accounts.migrations.get("*", 0) > 0
    ledger, now = fleet.accounts.ledger, fleet.time
    unavailable = ledger.integral("guests", "*", now) - ledger.integral("guests_up", "*", now)
    assert fleet.guest_downtime_hours().sum() == pytest.approx(unavailable, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_each_guests_downtime_equals_a_plain_per_guest_reference(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    config = quiet_config(**_random_fleet(seed))
    reference = PlainGuestClock(monkeypatch)
    fleet = Fleet(config, seed, record_events=False)
    reference.fleet = fleet
    fleet.run_until(config.horizon)
    reference.probe()
    exact = fleet.guest_downtime_hours().sum(axis=0)
    assert reference.down is not None and reference.down.sum() > 0
    np.testing.assert_allclose(exact, reference.down, atol=1e-9)
    ledger, now = fleet.accounts.ledger, fleet.time
    unavailable = ledger.integral("guests", "*", now) - ledger.integral("guests_up", "*", now)
    assert exact.sum() == pytest.approx(unavailable, abs=1e-6)
    presence = fleet.accounts.guest_time.presence()
    assert presence.sum(axis=0) == pytest.approx(np.full(len(fleet.guests), now))


def test_a_converted_host_books_its_guests_downtime_under_each_architecture() -> None:
    from twin.processes.injections import convert

    config = quiet_config(horizon=100)
    fleet = Fleet(config, 0, record_events=False)
    fleet.run_until(10)
    host = fleet.hosts[0]
    ids = list(host.guest_ids)
    convert(fleet, host, MICROKERNEL)
    fleet.run_until(100)
    presence = fleet.accounts.guest_time.presence()
    mono, micro = ARCHITECTURES.index(MONOLITHIC), ARCHITECTURES.index(MICROKERNEL)
    assert presence[mono, ids] == pytest.approx([10.0] * len(ids))
    assert presence[micro, ids] == pytest.approx([90.0] * len(ids))
    down = fleet.guest_downtime_hours()
    assert down[micro, ids].sum() > 0  # the reinstall's reboot and boot


def test_downtime_percentiles_of_guests_merge_by_concatenation() -> None:
    rng = np.random.default_rng(0)
    down, presence = rng.exponential(1.0, 200), np.full(200, 8760.0)
    whole = downtime_percentiles(downtime_per_year(down, presence))
    parts = np.concatenate(
        [downtime_per_year(down[:80], presence[:80]), downtime_per_year(down[80:], presence[80:])]
    )
    assert downtime_percentiles(parts) == whole
    assert whole["guest_downtime_p50_min_per_year"] == pytest.approx(np.median(down) * 60)


def test_months_follow_the_calendar_of_start_date() -> None:
    assert boundaries(dt.date(2024, 1, 1), "month", 24 * 61) == [0.0, 31 * 24.0, 60 * 24.0]
    assert next_boundary(dt.date(2024, 1, 15), "month", 0.0) == 17 * 24.0
    assert boundaries(dt.date(2023, 11, 20), "quarter", 24 * 200)[0] == (31 + 11) * 24.0
    assert dt.date(2024, 1, 1).weekday() == 0  # the default start is a Monday


def test_a_run_without_a_complete_period_has_no_slo_breach_metric() -> None:
    config = quiet_config(horizon="20d", slo={"target": 0.999, "period": "month"})
    metrics = Fleet(config, 0, record_events=False).run()
    assert "slo_breach_probability" not in metrics
    assert metrics["error_budget_used"] == 0.0  # nothing happens in a quiet fleet


def test_a_guest_period_breaches_when_its_downtime_exceeds_what_the_target_allows() -> None:
    hours = np.array([720.0, 744.0])
    allowed = (1 - 0.999) * hours
    down = np.array([[allowed[0], allowed[0] + 0.01], [0.0, allowed[1] * 2]])
    assert breach_probability(down, hours, 0.999) == 0.5


def _crash_fleet(target: float, mttf: float, down: float, **extra: Any) -> dict[str, Any]:
    """kvm guests whose own processes crash (exponential, only while up) and stay down a
    constant ``down``; nothing else happens."""
    return {
        "horizon": 24 * 366, "sample_every": "30d",
        "topology": {"racks_per_pod": 4, "hosts_per_rack": 4},
        "hosts": {"architecture_mix": {MONOLITHIC: 0, MICROKERNEL: 0, KVM: 1}},
        "architectures": {KVM: {"guest_process_fault": {"dist": "exponential", "mean": mttf},
                                "crash_detection": 0.0}},
        "guests": {"per_host": 4, "boot_time": down},
        "slo": {"target": target, "period": "month"},
        **extra,
    }  # fmt: skip


def test_breach_probability_matches_its_closed_form_when_any_downtime_breaches() -> None:
    """Target 1: a guest-month breaches iff it holds any downtime, i.e. unless the guest
    is up at the month's start (probability 1, at hour 0; MTTF/(MTTF+L) later) and its
    process does not crash during the month: P = 1 - P(up) * exp(-length / MTTF)."""
    mttf, down = 2000.0, 0.5
    config = quiet_config(**_crash_fleet(1.0, mttf, down))
    rows = [Fleet(config, seed, record_events=False).run() for seed in range(3)]
    simulated = np.mean([r["slo_breach_probability"] for r in rows])
    starts = boundaries(config.start_date, "month", config.horizon)
    lengths = np.diff(starts)
    up = np.where(np.array(starts[:-1]) == 0.0, 1.0, mttf / (mttf + down))
    expected = float(np.mean(1 - up * np.exp(-lengths / mttf)))
    n = 3 * 64 * len(lengths)
    assert simulated == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / n))
    assert "error_budget_used" not in rows[0]  # a target of 1 allows no downtime


def test_error_budget_used_is_downtime_over_what_the_target_allows() -> None:
    config = quiet_config(**_crash_fleet(0.999, 200.0, 0.5))
    m = Fleet(config, 0, record_events=False).run()
    assert m["error_budget_used"] == pytest.approx((1 - m["guest_availability"]) / 0.001)
    closed_form = (0.5 / 200.5) / 0.001  # the unavailability of the alternating renewal
    assert m["error_budget_used"] == pytest.approx(closed_form, rel=0.1)


def test_the_cost_model_adds_up() -> None:
    costs = {"downtime_per_guest_hour": 100.0, "operator_per_hour": 60.0,
             "host_per_year": {MONOLITHIC: 5000.0, MICROKERNEL: 6000.0},
             "license_per_host_year": {MICROKERNEL: 1000.0}}  # fmt: skip
    config = quiet_config(
        horizon=24 * 365 / 2, costs=costs,
        architectures={MONOLITHIC: {"hypervisor_fault": {"dist": "exponential", "mean": 500},
                                    "crash_auto_reboot": True}},
    )  # fmt: skip
    m = Fleet(config, 0, record_events=False).run()
    unavailable_per_year = 8 * 8760 * (1 - m["guest_availability"])
    assert m["cost.downtime"] == pytest.approx(100.0 * unavailable_per_year)
    assert m["cost.operators"] == pytest.approx(60.0 * 8760)  # one operator, paid every hour
    assert m["cost.hosts"] == pytest.approx(2 * 5000 + 2 * 6000)
    assert m["cost.licenses"] == pytest.approx(2 * 1000)
    parts = ("downtime", "operators", "hosts", "licenses")
    assert m["cost.total"] == pytest.approx(sum(m[f"cost.{p}"] for p in parts))
    by_arch = sum(m[f"by_architecture.{a}.cost.total"] for a in (MONOLITHIC, MICROKERNEL))
    assert by_arch == pytest.approx(m["cost.total"])


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"slo": {"target": 0.999, "scope": "service"}}, "slo.scope"),
        ({"slo": {"target": 1.5}}, "slo.target"),
        ({"costs": {"host_per_year": {"xen": 1}}}, "costs.host_per_year"),
        ({"costs": {"operator_per_hour": -1}}, "costs.operator_per_hour"),
    ],
)
def test_a_bad_slo_or_cost_block_names_its_key(section: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_config({**QUIET, "horizon": 24 * 40, **section})
    assert err.value.path.startswith(path)


def test_a_service_scope_slo_judges_each_service_month_by_its_time_below_quorum() -> None:
    """A 3-replica service (quorum 2, one replica a host) loses quorum while two of its
    hosts are down: 3 h in January, nothing in February. A 99.9 % month allows 0.744 h."""
    config = quiet_config(
        horizon=24 * 60,
        guests={"per_host": 0, "boot_time": 0},
        architectures={a: {"crash_detection": 0, "reboot_time": "3h", "crash_auto_reboot": True}
                       for a in ARCHITECTURES},
        services=[{"name": "db", "replicas": 3, "quorum": 2, "anti_affinity": "host"}],
        slo={"target": 0.999, "period": "month", "scope": "service"},
    )  # fmt: skip
    fleet = Fleet(config, 0, record_events=False)
    fleet.run_until(100)
    for host in [h for h in fleet.hosts if h.has_replicas][:2]:
        host.crash("hypervisor")
    metrics = fleet.run()
    assert metrics["service_availability"] == pytest.approx(1 - 3 / config.horizon)
    assert metrics["slo_breach_probability"] == 0.5
    assert metrics["error_budget_used"] == pytest.approx(3 / (0.001 * config.horizon))
    assert "slo_breach_probability" not in {
        k.rsplit(".", 1)[-1] for k in metrics if k.startswith("by_architecture.")
    }
