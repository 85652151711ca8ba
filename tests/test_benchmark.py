"""The fleet-year benchmark runs (no timing is asserted: figures belong in benchmarks/)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "benchmarks" / "fleet_year.py"


@pytest.fixture(scope="module")
def fleet_year() -> ModuleType:
    """benchmarks/fleet_year.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("fleet_year", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("scope", ["core", "operations"])
def test_the_benchmark_runs_on_a_tiny_fleet_and_reports_its_figures(scope):
    cmd = [sys.executable, str(BENCHMARK), "--hosts", "40", "--runs", "1", "--scope", scope,
           "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(out.stdout)
    (row,) = report["rows"]
    assert report["scope"] == scope and report["runs"] == 1
    assert row["hosts"] == 40
    for kind in ("twin", "floor", "floor+aging"):
        assert row[kind]["events"] > 0 and row[kind]["wall_s"] > 0
        assert row[kind]["peak_rss_mib"] > 0
    assert row["twin"]["guests"] == 800
    assert row["ratio_twin_floor"] == pytest.approx(row["twin"]["wall_s"] / row["floor"]["wall_s"])
    names = [t["name"] for t in report["targets"]]
    assert "(not the 10000-host target)" in names[0]
    assert names[-1] == "twin/floor, 40 hosts"
    assert all(isinstance(t["met"], bool) for t in report["targets"])


def test_the_floor_runs_the_update_campaigns_only_in_operations_scope(fleet_year):
    core = fleet_year.run_floor(40, seed=1, scope="core")
    operations = fleet_year.run_floor(40, seed=1, scope="operations")
    # 20 monolithic hosts x 8 releases and 20 microkernel hosts x 13, two events each
    assert operations["events"] > core["events"] + 500


def test_the_aging_floor_adds_the_hosts_aging_and_nothing_else(fleet_year):
    plain = fleet_year.run_floor(40, seed=1, scope="core")
    aging = fleet_year.run_floor(40, seed=1, scope="core", aging=True)
    assert aging["events"] > plain["events"] + 40  # an onset and a crash per host-month
    off = [f"architectures.{a}.aging.onset=never" for a in ("monolithic", "microkernel", "kvm")]
    no_aging = fleet_year.run_floor(40, seed=1, scope="core", extra=off, aging=True)
    assert no_aging == {**plain, "wall_s": no_aging["wall_s"]}


def test_the_targets_scale_the_linear_limit_with_the_fleet_sizes(fleet_year):
    def row(hosts: int, wall: float) -> dict:
        return {"hosts": hosts, "twin": {"wall_s": wall, "peak_rss_mib": 900.0},
                "floor": {"wall_s": wall / 5}, "ratio_twin_floor": 5.0}  # fmt: skip

    found = fleet_year.targets([row(1_000, 1.5), row(5_000, 9.0), row(10_000, 19.0)])
    by_name = {t["name"]: t for t in found}
    wall = by_name["twin wall s, 10000 hosts x 20 guests, 1 year"]
    assert wall["value"] == 19.0 and wall["met"]
    scaling = by_name["time(10000) / time(1000), linear limit 12 x 10 / 10"]
    assert scaling["limit"] == 12 and not scaling["met"]
    assert [t["met"] for t in found if t["name"].startswith("twin/floor")] == [True] * 3


def test_the_task_cost_benchmark_measures_one_sweep_task_in_a_fresh_process():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "task_cost.py"), "--pods", "1", "--runs",
           "1", "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    (row,) = json.loads(out.stdout)["rows"]
    assert row["pods"] == 1 and row["hosts"] == 64  # one pod of the default: 4 racks x 16
    assert row["task_s"] > 0 and row["peak_rss_mib"] >= row["import_rss_mib"] > 0
    assert row["timeseries_rows"] > 0
    # the outcome carries the time series and every guest's downtime, the task only its plan
    assert row["outcome_kib"] > row["task_kib"] > 0 and row["part_kib"] > 0


def test_the_event_kinds_benchmark_counts_the_twins_timers_beside_the_floors_events():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "event_kinds.py"), "--hosts", "40"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("40 hosts, seed 1: the twin processed") and "floor+aging" in lines[0]
    counts = {
        name: int(n.replace(",", "")) for n, name in (line.split(None, 1) for line in lines[2:])
    }
    total = counts.pop("scheduled in all")
    assert total == sum(counts.values()) and counts["Host._on_crash_detected"] > 0
