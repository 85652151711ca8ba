"""Exact interval accounting, confidence intervals and reproducibility."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import quiet_config
from hypothesis import given
from hypothesis import strategies as st

from twin.accounting import (
    LEVELS,
    Accounts,
    HostShare,
    Incident,
    Level,
    block_moved,
    book,
    change_between,
    contribution,
    guests_arriving,
    status_change,
)
from twin.architectures import ARCHITECTURES
from twin.experiments import run_replications
from twin.fleet import Fleet
from twin.metrics import IncidentTally, book_incident_stats, ci95, summarise


@given(st.lists(st.tuples(st.floats(0, 10), st.floats(-5, 5)), max_size=30))
def test_level_integral_equals_the_sum_of_value_times_duration(steps):
    level, now, expected, value = Level(), 0.0, 0.0, 0.0
    for dt, delta in steps:
        expected += value * dt
        now += dt
        level.add(delta, now)
        value += delta
    assert level.integral_until(now) == pytest.approx(expected, abs=1e-6)


@given(
    st.lists(
        st.tuples(
            st.floats(0, 10),
            st.lists(st.tuples(st.integers(0, len(LEVELS) - 1), st.floats(-5, 5)), max_size=4),
        ),
        max_size=20,
    )
)
def test_booking_a_change_in_one_go_equals_adding_each_delta_to_its_level(changes):
    """`book`, the inlined fast path, against `Level.add` one (level, delta) at a time."""
    fast, plain = [Level() for _ in LEVELS], [Level() for _ in LEVELS]
    now = 0.0
    for dt, change in changes:
        now += dt
        book(fast, tuple(change), now)
        for i, delta in change:
            plain[i].add(delta, now)
    assert [(lv.value, lv.moment) for lv in fast] == [(lv.value, lv.moment) for lv in plain]


@given(
    before=st.none() | st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    after=st.none() | st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    guests=st.integers(0, 40),
    booting=st.integers(0, 40),
)
def test_a_cached_status_change_is_the_difference_of_two_contributions(
    before, after, guests, booting
):
    expected = change_between(
        contribution(before, guests, booting, 0.05), contribution(after, guests, booting, 0.05)
    )
    assert status_change(before, after, guests, booting, 0.05) == expected


@given(
    status=st.none() | st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    guests=st.integers(0, 40),
    booting=st.integers(0, 40),
    moved=st.integers(0, 40),
    arrive_up=st.booleans(),
)
def test_a_moved_block_changes_the_levels_as_the_source_and_targets_do(
    status, guests, booting, moved, arrive_up
):
    """`block_moved` is the source's loss plus the targets' gain, as the long way books."""
    booting = min(booting, guests)
    moved = min(moved, guests - booting)  # guests still booting never move
    up = moved if arrive_up else 0
    source_before = contribution(status, guests, booting, 0.1)
    source_after = contribution(status, guests - moved, booting, 0.1)
    arrived = guests_arriving(moved, up, 0.1)
    levels = zip(source_before, source_after, arrived, strict=True)
    long_way = [after + gain - before for before, after, gain in levels]
    change = dict(block_moved(status, moved, up, 0.1))
    booked = [change.get(i, 0) for i in range(len(long_way))]
    assert booked == pytest.approx(long_way, abs=1e-9)


STATUS = st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans())


@given(st.lists(st.tuples(st.floats(0, 10), STATUS), min_size=1, max_size=30))
def test_a_host_share_books_each_status_change_as_levels_added_one_by_one(steps):
    """`HostShare.set_status` (cached changes, the downtime clock stepped only when serving
    changes) books what adding each level's delta and each unserved step would."""
    engine = SimpleNamespace(now=0.0)
    share = HostShare(Accounts(engine), "monolithic", 0.05, host=0)  # type: ignore[arg-type]
    plain = [Level() for _ in LEVELS]
    unserved, before = Level(), None
    for dt, status in steps:
        engine.now += dt
        share.set_status(status, 20, 3)
        old = contribution(before, 20, 3, 0.05)
        for level, a, b in zip(plain, old, contribution(status, 20, 3, 0.05), strict=True):
            if b != a:
                level.add(b - a, engine.now)
        down = int(not status[2]) - int(before is not None and not before[2])
        if down:
            unserved.add(down, engine.now)
        before = status
    assert [(lv.value, lv.moment) for lv in share.levels] == [(lv.value, lv.moment) for lv in plain]
    assert (share.unserved.value, share.unserved.moment) == (unserved.value, unserved.moment)


def test_ci95_is_student_t_and_collapses_for_one_replication():
    assert ci95([0.5]) == {"mean": 0.5, "ci95_low": 0.5, "ci95_high": 0.5, "stderr": 0.0}
    leaf = ci95([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n)
    assert leaf["mean"] == 2.0
    assert leaf["ci95_low"] == pytest.approx(2.0 - half)
    assert leaf["ci95_high"] == pytest.approx(2.0 + half)


def test_summarise_nests_dotted_names_into_leaves():
    out = summarise([{"a": 1.0, "b.c": 2.0}, {"a": 3.0, "b.c": 2.0}])
    assert out["a"]["mean"] == 2.0
    assert out["b"]["c"] == {"mean": 2.0, "ci95_low": 2.0, "ci95_high": 2.0, "stderr": 0.0}


def test_a_hand_computed_crash_timeline_is_accounted_exactly():
    """Monolithic host crash at t=10 (horizon 100, 4 hosts x 2 guests, 1 operator):
    detection 0.25 h, response 0.5 h, reboot 0.25 h -> host back at 11.0,
    guests back after boot 0.1 h at 11.1."""
    fleet = Fleet(quiet_config(), 1)
    fleet.run_until(10)
    fleet.hosts[0].crash("hypervisor")
    m = fleet.run()
    assert m["host_availability"] == pytest.approx(1 - 1.0 / 400)
    assert m["guest_availability"] == pytest.approx(1 - 2 * 1.1 / 800)
    assert m["by_architecture.monolithic.guest_availability"] == pytest.approx(1 - 2.2 / 400)
    assert m["by_architecture.microkernel.guest_availability"] == 1.0
    guest_years = 8 * 100 / 8760
    assert m["guest_downtime_min_per_year"] == pytest.approx(2.2 * 60 / guest_years)
    assert m["planned_downtime_min_per_year"] == 0.0
    assert m["incidents.hypervisor"] == 1
    assert m["blast_radius_mean"] == 2 and m["blast_radius_max"] == 2
    assert m["mttr_hours"] == pytest.approx(1.1)
    assert m["operator_utilization"] == pytest.approx(0.75 / 100)
    assert m["ticket_wait_hours"] == 0.0
    io = {"monolithic": 0.02, "microkernel": 0.05}
    cfg = fleet.config.architectures
    io = {a: cfg.get(a).io_overhead for a in io}
    expected_capacity = (
        4 * (1 - io["microkernel"]) * 100 + (4 * 100 - 2.2) * (1 - io["monolithic"])
    ) / 100
    assert m["effective_capacity"] == pytest.approx(expected_capacity)


def test_the_event_log_records_host_and_guest_state_changes():
    fleet = Fleet(quiet_config(), 1)
    fleet.run_until(10)
    fleet.hosts[0].crash("hypervisor")
    fleet.run()
    host_rows = [e for e in fleet.events if e[1] == fleet.hosts[0].name]
    assert [(e[2], e[3]) for e in host_rows] == [
        ("running", "crashed"),
        ("crashed", "rebooting"),
        ("rebooting", "running"),
    ]
    guest = fleet.hosts[0].guests[0].name
    assert [(e[0], e[3]) for e in fleet.events if e[1] == guest] == [
        (10.0, "down"),
        (pytest.approx(11.1), "up"),
    ]


def test_same_seed_gives_identical_json_and_another_seed_differs():
    cfg = quiet_config(
        horizon="1y",
        architectures={"monolithic": {"hypervisor_fault": {"dist": "exponential", "mean": "30d"}}},
    )
    a = json.dumps(run_replications(cfg, 3, seed=5).summary())
    b = json.dumps(run_replications(cfg, 3, seed=5).summary())
    c = json.dumps(run_replications(cfg, 3, seed=6).summary())
    assert a == b
    assert a != c


def test_replication_i_is_the_same_whether_run_alone_or_in_a_batch():
    from twin.experiments import run_replication

    cfg = quiet_config(
        horizon="1y", hardware={"fault": {"dist": "exponential", "mean": "60d"}, "repair": "1d"}
    )
    batch = run_replications(cfg, 3, seed=9)
    alone = run_replication(cfg, 2, seed=9)
    assert batch.replications[2].metrics == alone.metrics


def test_exponential_host_faults_with_constant_repair_match_mttf_over_mttf_plus_mttr():
    """Alternating renewal: A = MTTF / (MTTF + MTTR); MTTR = detection + reboot here."""
    mttf, detection, reboot = 200.0, 0.5, 1.5
    arch = {
        "hypervisor_fault": {"dist": "exponential", "mean": mttf},
        "crash_detection": detection,
        "reboot_time": reboot,
        "crash_auto_reboot": True,
    }
    cfg = quiet_config(
        horizon="2y",
        topology={"racks_per_pod": 4, "hosts_per_rack": 8},
        architectures={"monolithic": arch, "microkernel": arch},
    )
    summary = run_replications(cfg, 10, seed=3).summary()["metrics"]["host_availability"]
    expected = mttf / (mttf + detection + reboot)
    assert summary["ci95_low"] <= expected <= summary["ci95_high"]
    assert np.isclose(summary["mean"], expected, rtol=1e-3)


# -- incident statistics from tallies, against the plain arrays -------------------------------


def _plain_incident_stats(incidents, horizon: float, scope: str) -> dict[str, float]:
    """The reference: every incident touching ``scope`` in arrays, numpy over them."""
    from twin.vocabulary import CAUSES

    touched = [i for i in incidents if scope == "*" or scope in i.guests_lost]
    radii = np.array([i.blast_radius if scope == "*" else i.guests_lost[scope] for i in touched],
                     dtype=float)  # fmt: skip
    repairs = np.array([(horizon if i.end is None else i.end) - i.start for i in touched])
    out = {f"incidents.{c}": float(sum(i.cause == c for i in touched)) for c in CAUSES}
    out["blast_radius_mean"] = float(radii.mean()) if radii.size else 0.0
    out["blast_radius_p95"] = float(np.percentile(radii, 95)) if radii.size else 0.0
    out["blast_radius_max"] = float(radii.max()) if radii.size else 0.0
    out["mttr_hours"] = float(repairs.mean()) if repairs.size else 0.0
    return out


_incident = st.builds(
    lambda cause, start, length, lost: Incident(
        cause=cause,
        start=start,
        end=None if length is None else start + length,
        guests_lost=lost,
        blast_radius=sum(lost.values()),
    ),
    st.sampled_from(["hypervisor", "driver", "power", "update"]),
    st.floats(0, 90),
    st.none() | st.floats(0, 20),
    st.dictionaries(st.sampled_from(ARCHITECTURES), st.integers(0, 40), max_size=3),
)


@given(st.lists(st.lists(_incident, max_size=40), min_size=1, max_size=4))
def test_incident_tallies_of_sites_give_the_incident_statistics_of_all_their_incidents(sites):
    horizon = 100.0
    tally = IncidentTally.joined([IncidentTally.of(site, horizon) for site in sites])
    everything = [i for site in sites for i in site]
    for scope in ("*", *ARCHITECTURES):
        got = book_incident_stats(tally, [scope])[scope]
        want = _plain_incident_stats(everything, horizon, scope)
        mttr = got.pop("mttr_hours"), want.pop("mttr_hours")
        assert got == want  # counts, and every blast-radius statistic, bit for bit
        assert mttr[0] == pytest.approx(mttr[1], rel=1e-12, abs=1e-12)  # summed in another order
