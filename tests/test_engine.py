"""The engine under the fleet: its calendar, its draws, competing fault clocks, spread
planning and the order in which campaigns roll hosts (the performance work's parts)."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
from conftest import quiet_config
from hypothesis import given
from hypothesis import strategies as st

from twin.capacity import spread_alike, spread_each
from twin.config.distributions import Exponential
from twin.draws import Draws
from twin.engine import Calendar, EventDrivenModel, cyclic_gc_paused
from twin.fleet import Fleet
from twin.processes.migration import plan_departures, plan_moves


class Recorder:
    """Bound methods that note when they ran (the calendar takes any callable)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.calls: list[tuple[str, float]] = []

    def call(self, name: str):
        def record() -> None:
            self.calls.append((name, self.fleet.time))

        return record


def test_calendar_fires_timers_in_time_order_and_in_scheduling_order_on_ties():
    fleet = Fleet(quiet_config(), 1, record_events=False)
    seen = Recorder(fleet)
    for name, hours in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0)]:
        fleet.engine.schedule(after=hours, fn=seen.call(name))
    fleet.run_until(5)
    assert seen.calls == [("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("c", 3.0)]


def test_a_cancelled_timer_never_fires_and_a_fired_one_is_no_longer_pending():
    fleet = Fleet(quiet_config(), 1, record_events=False)
    seen = Recorder(fleet)
    dropped = fleet.engine.schedule(after=1.0, fn=seen.call("dropped"))
    kept = fleet.engine.schedule(after=2.0, fn=seen.call("kept"))
    dropped.cancel()
    fleet.run_until(5)
    assert seen.calls == [("kept", 2.0)]
    assert not kept.pending and not dropped.pending


def test_calendar_fires_in_time_order_across_buckets_and_drops_cancelled_timers():
    calendar = Calendar()
    fired: list[float] = []
    times = [t * 0.37 % 500.0 for t in range(10_000)]  # over many buckets
    timers = [calendar.schedule(t, lambda t=t: fired.append(t)) for t in times]
    for timer in timers[::3]:
        timer.cancel()
    assert len(calendar) == 10_000 - 3_334
    while calendar.next_time() < math.inf:
        calendar.pop().fn()
    assert fired == sorted(t for i, t in enumerate(times) if i % 3)
    assert len(calendar) == 0 and calendar.cancelled == 0


def test_a_timer_scheduled_while_a_bucket_runs_fires_in_its_place():
    calendar = Calendar()
    fired: list[str] = []
    calendar.schedule(2.0, lambda: fired.append("a"))
    calendar.schedule(8.0, lambda: fired.append("c"))
    calendar.schedule(50.0, lambda: fired.append("e"))  # a later bucket
    calendar.pop().fn()  # a: the first bucket is on the heap now
    calendar.schedule(5.0, lambda: fired.append("b"))
    calendar.schedule(8.0, lambda: fired.append("d"))  # a tie: after c
    calendar.schedule(30.0, lambda: fired.append("d2"))  # another later bucket, before e
    while calendar.next_time() < math.inf:
        calendar.pop().fn()
    assert fired == ["a", "b", "c", "d", "d2", "e"]


def test_mesa_events_run_between_the_fleets_timers_and_first_on_a_tie():
    fleet = Fleet(quiet_config(), 1, record_events=False)
    seen = Recorder(fleet)
    mesa_call, tie_call = seen.call("mesa"), seen.call("mesa-tie")
    fleet.engine.schedule(after=4.0, fn=seen.call("own-4"))
    fleet.engine.schedule(after=6.0, fn=seen.call("own-6"))
    fleet.schedule_event(mesa_call, at=5.0)
    fleet.schedule_event(tie_call, at=6.0)
    fleet.run_until(10)
    assert seen.calls == [("own-4", 4.0), ("mesa", 5.0), ("mesa-tie", 6.0), ("own-6", 6.0)]


def test_a_mesa_event_scheduled_by_a_timer_runs_before_later_timers():
    fleet = Fleet(quiet_config(), 1, record_events=False)
    seen = Recorder(fleet)
    mesa_call = seen.call("mesa")
    fleet.engine.schedule(after=1.0, fn=lambda: fleet.schedule_event(mesa_call, at=2.0))
    fleet.engine.schedule(after=3.0, fn=seen.call("own-3"))
    fleet.run_until(10)
    assert seen.calls == [("mesa", 2.0), ("own-3", 3.0)]


def test_the_cyclic_collector_is_paused_only_while_the_fleet_runs():
    fleet = Fleet(quiet_config(), 1, record_events=False)
    states: list[bool] = []
    fleet.engine.schedule(after=1.0, fn=lambda: states.append(gc.isenabled()))
    fleet.run_until(2)
    assert states == [False] and gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_draws_are_a_pure_function_of_the_seed():
    dist = Exponential(mean=5.0)
    a, b = Draws(np.random.default_rng(7)), Draws(np.random.default_rng(7))
    first = [a.sample(dist) for _ in range(600)] + [a.chance(0.5) for _ in range(600)]
    second = [b.sample(dist) for _ in range(600)] + [b.chance(0.5) for _ in range(600)]
    assert first == second
    assert np.mean(first[:600]) == pytest.approx(5.0, rel=0.15)


def test_a_contained_driver_fault_leaves_the_hosts_other_fault_clocks_running():
    cfg = quiet_config(
        architectures={"microkernel": {"driver_fault_host_crash_prob": 0.0,
                                       "hypervisor_fault": {"dist": "constant", "value": 50}}},
    )  # fmt: skip
    fleet = Fleet(cfg, 1)
    host = next(h for h in fleet.hosts if h.architecture == "microkernel")
    fleet.run_until(10)
    host.drivers[0].fail()  # degraded for 30 min; the hypervisor clock keeps its time
    fleet.run_until(49.9)
    assert host.is_up
    fleet.run_until(50.1)
    assert host.cause == "hypervisor" and not host.is_up


@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=30),
    st.integers(1, 40),
    st.integers(1, 4),
)
def test_spreading_guests_of_one_kind_places_them_as_one_by_one_would(free, count, size):
    """The queue-merge fast path chooses the same hosts as the general heap search."""
    cpu = sorted((float(f) for f in free), reverse=True)
    memory = [8.0 * c for c in cpu]

    class Alike:
        def __init__(self) -> None:
            self.cpu, self.memory_gb, self.service = float(size), 8.0 * size, None

    plans, short = spread_alike(list(cpu), list(memory), float(size), 8.0 * size, [count])
    fast = plans[0]
    slow = spread_each(
        list(cpu),
        list(memory),
        [Alike() for _ in range(count)],
        [None] * len(cpu),
        lambda guest, host: True,
    )
    placed = [k for k in slow if k >= 0]
    assert short == count - len(placed)
    assert sorted(cpu[k] for k, n in fast.items() for _ in range(n)) == sorted(
        cpu[k] for k in placed
    )
    assert list(fast) == list(dict.fromkeys(placed)) or sorted(fast.values()) == sorted(
        placed.count(k) for k in set(placed)
    )


@pytest.mark.parametrize("replicas", [0, 8])  # with replicas, guests of two sizes
def test_drains_planned_together_reserve_what_planning_them_one_by_one_would(replicas):
    """An update batch plans its drains with one look per cluster; the reservations are
    those of planning each host after the other."""
    services = [{"name": "db", "replicas": replicas, "quorum": 1, "anti_affinity": "none",
                 "cpu": 1, "memory_gb": 4}] if replicas else []  # fmt: skip
    cfg = quiet_config(
        topology={"racks_per_pod": 2, "hosts_per_rack": 5},
        hosts={"architecture_mix": {"monolithic": 1.0, "microkernel": 0.0}, "cpu": 16},
        guests={"per_host": 3, "ha": {"enabled": True, "restart_delay": "1m"}},
        services=services,
    )
    fleets = [Fleet(cfg, 1), Fleet(cfg, 1)]
    for fleet in fleets:  # uneven load: the guests of two hosts spread over the others
        fleet.run_until(1)
        fleet.hosts[0].crash("hypervisor")
        fleet.hosts[5].crash("hypervisor")
        fleet.run_until(2)
        for i in (1, 2, 7):
            fleet.hosts[i].set_draining()
    together, alone = fleets
    leaving = [(together.hosts[i], together.hosts[i].guest_ids) for i in (1, 2, 7)]
    plans = plan_departures(together, leaving)
    singles = [plan_moves(alone, alone.hosts[i].guest_ids, alone.hosts[i]) for i in (1, 2, 7)]
    assert [sum(len(ids) for _, ids in p) for p in plans] == [
        sum(len(ids) for _, ids in p) for p in singles
    ]
    assert sorted(together.capacity.free_cpu) == sorted(alone.capacity.free_cpu)
    assert sorted(together.capacity.free_cpu) != sorted(
        Fleet(cfg, 1).capacity.free_cpu
    )  # something was planned


def test_a_campaign_takes_hosts_from_each_cluster_in_turn():
    cfg = quiet_config(
        topology={"pods": 2, "racks_per_pod": 2, "hosts_per_rack": 2},
        hosts={"assign": "random"},
        updates=[{"name": "patch", "architecture": "all", "scope": "hypervisor", "every": "4w",
                  "start": "1w", "batch": 2, "drain": True}],
    )  # fmt: skip
    fleet = Fleet(cfg, 1)
    order = fleet.campaigns["patch"].rollout_order()
    clusters = [(h.pod, h.architecture) for h in order]
    rounds = len(fleet.clusters.groups)
    assert len(order) == len(fleet.hosts) == 8 and rounds > 2
    assert len(set(clusters[:rounds])) == rounds  # the first round visits every cluster


class PlainModel:
    """The reference: the same timers on Mesa's public event list (`schedule_event`)."""

    def __init__(self) -> None:
        import mesa

        self.model = mesa.Model(rng=1)
        self.calls: list[tuple[str, float]] = []
        self.alive: list[object] = []  # Mesa holds callbacks weakly

    def schedule(self, name: str, at: float, then: list[tuple[str, float]]) -> object:
        def fire() -> None:
            self.calls.append((name, self.model.time))
            for child, delay in then:
                self.schedule(child, self.model.time + delay, [])

        self.alive.append(fire)
        return self.model.schedule_event(fire, at=at)


class EngineModel(EventDrivenModel):
    def __init__(self) -> None:
        super().__init__(rng=1)
        self.calls: list[tuple[str, float]] = []

    def schedule(self, name: str, at: float, then: list[tuple[str, float]]) -> object:
        def fire() -> None:
            self.calls.append((name, self.engine.now))
            for child, delay in then:
                self.schedule(child, self.engine.now + delay, [])

        return self.engine.schedule(fire, at=at)


@given(
    st.lists(
        st.tuples(
            st.floats(0, 200, allow_nan=False),
            st.lists(st.floats(0, 60, allow_nan=False), max_size=3),
            st.booleans(),
        ),
        max_size=60,
    ),
    st.floats(1, 250),
)
def test_the_engine_fires_what_mesas_own_event_list_would_in_the_same_order(timers, until):
    """Timers at arbitrary times (many on one day bucket, some scheduled by others, some
    cancelled) fire on the engine exactly as on a plain Mesa model, with the clock at each."""
    plain, fast = PlainModel(), EngineModel()
    for model in (plain, fast):
        handles = []
        for n, (at, children, cancel) in enumerate(timers):
            then = [(f"{n}.{k}", delay) for k, delay in enumerate(children)]
            handles.append((model.schedule(str(n), at, then), cancel))
        for handle, cancel in handles:
            if cancel:
                handle.cancel()
    plain.model.run_until(until)
    fast.run_until(until)
    assert fast.calls == plain.calls
    assert fast.time == fast.engine.now == plain.model.time == until


def test_the_engine_refuses_a_schedule_with_neither_or_both_times():
    fleet = Fleet(quiet_config(), 1, record_events=False)
    with pytest.raises(ValueError, match="exactly one"):
        fleet.engine.schedule(lambda: None)
    with pytest.raises(ValueError, match="exactly one"):
        fleet.engine.schedule(lambda: None, at=1.0, after=1.0)


@pytest.mark.parametrize("seed", [0, 42, 2**40 + 3])
def test_a_replications_seed_made_directly_is_the_spawned_child(seed):
    """`replication_seed` (the O(1) path) against SPEC 6's ``SeedSequence(S).spawn``."""
    from twin.experiments.runner import replication_seed

    children = np.random.SeedSequence(seed).spawn(40)
    for i in (0, 1, 7, 39):
        direct = replication_seed(seed, i)
        assert direct.spawn_key == children[i].spawn_key
        assert np.array_equal(direct.generate_state(8), children[i].generate_state(8))
        grandchildren = [c.generate_state(4) for c in direct.spawn(3)]
        expected = [c.generate_state(4) for c in children[i].spawn(3)]
        assert all(map(np.array_equal, grandchildren, expected))
