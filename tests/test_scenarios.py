"""The scenario library and ``twin compare``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_cli import TWIN

from twin.experiments.compare import compare

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
SHORT = ["--set", "horizon=30d"]


def twin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TWIN, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_the_library_has_the_six_scenarios_each_saying_its_question():
    names = {p.stem for p in SCENARIOS}
    assert {"patch-tuesday", "driver-bug-storm", "rack-power-loss", "mixed-fleet-migration",
            "understaffed-night-shift", "no-drain-updates"} <= names  # fmt: skip
    for path in SCENARIOS:
        assert path.read_text().startswith("# Question:"), path.name


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_runs_with_twin_run_and_twin_compare(path):
    run = twin("run", str(path), "--json", "-r", "1", *SHORT)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["name"] == path.stem
    cmp = twin("compare", str(path), "-r", "2", "--json", *SHORT)
    assert cmp.returncode == 0, cmp.stderr
    out = json.loads(cmp.stdout)
    assert len(out["arms"]) >= 2
    for diffs in out["differences_from_first"].values():
        leaf = diffs["guest_availability"]
        assert leaf["ci95_low"] <= leaf["mean"] <= leaf["ci95_high"]


def test_compare_prints_arms_side_by_side_with_their_difference():
    r = twin("compare", str(ROOT / "scenarios" / "no-drain-updates.yaml"), "-r", "2", *SHORT)
    assert r.returncode == 0, r.stderr
    assert "drained" in r.stdout and "difference from control" in r.stdout
    assert "no-drain - drained: planned guest downtime +" in r.stdout


def test_the_difference_from_the_first_arm_is_paired_by_replication():
    comparison = compare(ROOT / "scenarios" / "no-drain-updates.yaml", SHORT[1:], replications=3)
    base = [
        r.metrics["planned_downtime_min_per_year"] for r in comparison.runs["drained"].replications
    ]
    other = [
        r.metrics["planned_downtime_min_per_year"] for r in comparison.runs["no-drain"].replications
    ]
    diff = comparison.difference("no-drain", "planned_downtime_min_per_year")
    assert diff["mean"] == pytest.approx(sum(o - b for o, b in zip(other, base, strict=True)) / 3)


def test_no_drain_updates_show_planned_downtime_that_drained_updates_do_not():
    comparison = compare(ROOT / "scenarios" / "no-drain-updates.yaml", ["horizon=120d"], 3)
    drained = comparison.leaf("drained", "planned_downtime_min_per_year")
    no_drain = comparison.leaf("no-drain", "planned_downtime_min_per_year")
    assert no_drain["ci95_low"] > drained["ci95_high"]


def test_an_unknown_arm_or_rack_in_a_scenario_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"name: bad\nbase: {ROOT / 'configs' / 'default.yaml'}\n"
        "injections:\n  - {at: 1d, action: power_loss, rack: r99}\n"
    )
    for args in (["run", str(bad)], ["check", str(bad)], ["compare", str(bad)]):
        r = twin(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)
        assert "r99" in r.stderr
    r = twin("run", str(ROOT / "scenarios" / "no-drain-updates.yaml"), "--arm", "nope")
    assert r.returncode == 2 and "nope" in r.stderr


def test_a_buggy_nic_release_costs_monolithic_guests_more_and_microkernel_hosts_degraded_time():
    """Issue 'fleet operations', done-when: with the shipped defaults, non-overlapping CIs."""
    comparison = compare(ROOT / "scenarios" / "driver-bug-storm.yaml", replications=6)
    mono, micro = "all-monolithic", "all-microkernel"
    down_mono = comparison.leaf(mono, "guest_downtime_min_per_year")
    down_micro = comparison.leaf(micro, "guest_downtime_min_per_year")
    assert down_mono["ci95_low"] > down_micro["ci95_high"]
    degraded_mono = comparison.leaf(mono, "degraded_min_per_year")
    degraded_micro = comparison.leaf(micro, "degraded_min_per_year")
    assert degraded_micro["ci95_low"] > degraded_mono["ci95_high"]
