"""Honest statistics (issue 17): intervals in range, precision on request, warnings,
scenario arms with their own injections and controls, verdicts, and compare's tables."""

from __future__ import annotations

import io
import json
import math
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import QUIET
from scipy import stats
from test_cli import TWIN
from typer.testing import CliRunner

from twin.cli import app
from twin.config import ConfigError, deep_merge, load_experiment, validate_config
from twin.experiments.compare import compare, paired_difference, select_metrics
from twin.experiments.precision import (
    HEADLINE,
    PrecisionRule,
    relative_half_width,
    relative_half_widths,
)
from twin.experiments.runner import RunResult, replicate, run_replications
from twin.experiments.sweep import plan_sweep, run_sweep_to_precision, run_task
from twin.experiments.warnings import noise_warning
from twin.metrics import ci95, physical_range, summarise

ROOT = Path(__file__).resolve().parents[1]
NOISY = deep_merge(
    QUIET,
    {
        "name": "noisy",
        "horizon": "30d",
        "replications": 3,
        "hardware": {"fault": {"dist": "exponential", "mean": "20d"}, "repair": "4h"},
        "architectures": {
            "monolithic": {"hypervisor_fault": {"dist": "exponential", "mean": "15d"}},
            "microkernel": {"hypervisor_fault": {"dist": "exponential", "mean": "15d"}},
        },
    },
)


def twin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TWIN, *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env
    )


def invoke(*args: str) -> tuple[int, str, str]:
    """The CLI in this process (no start-up cost): exit code, stdout, stderr."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def noisy_path(tmp_path) -> Path:
    path = tmp_path / "noisy.yaml"
    path.write_text(yaml.safe_dump(NOISY))
    return path


def scenario_file(folder: Path, base: Path, **changes) -> Path:
    """A scenario on ``base``: a control without the rack r0 outage, the outage, and an arm
    identical to the control (no difference can be seen)."""
    data = {
        "name": "outage-test",
        "question": "What does a 5-day outage of rack r0 cost?",
        "base": str(base),
        "injections": [{"at": "2d", "action": "power_loss", "rack": "r0", "duration": "5d"}],
        "arms": {
            "control": {"injections": []},
            "outage": {},
            "same-as-control": {"injections": []},
        },
    } | changes
    path = folder / "outage.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def leaves(node: dict) -> Iterator[tuple[str, dict]]:
    for key, value in node.items():
        if "mean" in value:
            yield key, value
        else:
            yield from ((f"{key}.{k}", v) for k, v in leaves(value))


# ------------------------------------------------------------------------------------------
# 1. intervals inside the physical range


def test_an_availability_interval_never_passes_one_and_a_count_never_goes_below_zero():
    near_one = ci95([0.99999, 1.0, 1.0], physical_range("guest_availability"))
    assert near_one["ci95_high"] == 1.0 and near_one["ci95_low"] < near_one["mean"]
    rare = ci95([0.0, 0.0, 5.0], physical_range("incidents.power"))
    assert rare["ci95_low"] == 0.0 and rare["ci95_high"] > rare["mean"]
    unclipped = ci95([0.0, 0.0, 5.0])
    assert unclipped["ci95_low"] < 0


def test_every_leaf_of_a_summary_lies_in_its_metric_range_and_carries_its_stderr():
    config = validate_config(NOISY)
    rows = [r.metrics for r in run_replications(config, 3, seed=4).replications]
    for name, leaf in leaves(summarise(rows)):
        low, high = physical_range(name)
        assert low <= leaf["ci95_low"] <= leaf["mean"] <= leaf["ci95_high"] <= high, name
        values = [row[name] for row in rows if name in row]
        assert leaf["stderr"] == pytest.approx(np.std(values, ddof=1) / math.sqrt(len(values)))


def test_shares_lie_in_zero_one_and_every_other_metric_is_non_negative():
    assert physical_range("by_architecture.microkernel.host_availability") == (0.0, 1.0)
    assert physical_range("operator_utilization") == (0.0, 1.0)
    assert physical_range("guest_downtime_min_per_year") == (0.0, math.inf)
    assert physical_range("incidents.network") == (0.0, math.inf)


def test_clipping_covers_the_true_mean_exactly_as_often_as_the_unclipped_interval():
    """Rare events (a Poisson count of mean 0.3 over 4 replications): the clipped interval
    covers whenever the t interval does, and is never wider."""
    rng = np.random.default_rng(7)
    true_mean, covered, covered_clipped = 0.3, 0, 0
    for _ in range(2000):
        sample = rng.poisson(true_mean, 4).astype(float)
        t, clipped = ci95(sample), ci95(sample, (0.0, math.inf))
        covered += t["ci95_low"] <= true_mean <= t["ci95_high"]
        covered_clipped += clipped["ci95_low"] <= true_mean <= clipped["ci95_high"]
        assert clipped["ci95_high"] - clipped["ci95_low"] <= t["ci95_high"] - t["ci95_low"]
    assert covered_clipped == covered


# ------------------------------------------------------------------------------------------
# 2. precision on request


def test_a_round_adds_between_half_and_all_of_what_was_run():
    rule = PrecisionRule(0.1, max_replications=1000)
    assert rule.next_total(10, 0.05) == 15  # met already: the minimum round
    assert rule.next_total(10, 0.12) == 15  # asks for 15 (10 * 1.2**2 = 14.4)
    assert rule.next_total(10, 0.13) == 17  # asks for 17
    assert rule.next_total(10, 5.0) == 20  # asks for 25,000: at most doubles
    assert PrecisionRule(0.1, max_replications=12).next_total(10, 5.0) == 12
    assert rule.first(3) == 10 and rule.first(40) == 40


def test_the_relative_half_width_of_an_availability_is_taken_on_the_unavailability():
    values = [0.999, 0.998, 0.9995]
    half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
    expected = half / (1 - np.mean(values))
    assert relative_half_width(values, "guest_availability") == pytest.approx(expected)
    assert relative_half_width([0.0, 0.0], "guest_downtime_min_per_year") == 0.0
    assert relative_half_width([1.0], "guest_downtime_min_per_year") == math.inf


def test_a_precision_run_stops_once_every_headline_metric_is_within_the_precision():
    config = validate_config(NOISY)
    result = replicate(RunResult(config, seed=3), precision=PrecisionRule(0.2))
    report = result.precision
    assert report.reached and report.rounds >= 2
    assert report.replications == len(result.replications)
    recomputed = relative_half_widths([r.metrics for r in result.replications])
    assert set(recomputed) == set(HEADLINE)
    assert max(recomputed.values()) <= 0.2
    assert report.bound_by == max(recomputed, key=recomputed.get)
    summary = result.summary()
    assert summary["precision"]["replications"] == summary["replications"]
    assert summary["warnings"] == []


def test_a_precision_run_begins_with_the_replications_of_a_fixed_run():
    config = validate_config(NOISY)
    fixed = run_replications(config, 10, seed=5)
    precise = replicate(RunResult(config, seed=5), precision=PrecisionRule(0.05, 16))
    assert [r.metrics for r in precise.replications[:10]] == [r.metrics for r in fixed.replications]


def test_a_precision_not_reached_at_the_maximum_says_so_in_the_warnings():
    config = validate_config(NOISY)
    result = replicate(RunResult(config, seed=3), precision=PrecisionRule(0.001, 12))
    assert len(result.replications) == 12 and not result.precision.reached
    assert any("NOT reached" in w for w in result.summary()["warnings"])


def test_a_bad_precision_or_maximum_exits_2_with_one_line_before_any_work(noisy_path):
    cases = [(["--precision", "0"], "--precision"), (["--precision", "1.5"], "--precision"),
             (["--precision", "0.1", "--max-replications", "1"], "--max-replications")]  # fmt: skip
    for args, word in cases:
        code, _, err = invoke("run", str(noisy_path), *args)
        assert code == 2 and err.count("\n") == 1 and word in err, err


def test_run_with_precision_prints_how_many_replications_and_what_bound_last(noisy_path):
    r = twin("run", str(noisy_path), "--precision", "0.2", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["precision"]["reached"] and out["precision"]["bound_by"] in HEADLINE
    assert out["replications"] == out["precision"]["replications"] >= 15
    table = twin("run", str(noisy_path), "--precision", "0.2")
    assert f"{out['replications']} replication(s)" in table.stdout
    assert f"{out['precision']['bound_by']} bound last" in table.stdout


class InlineBackend:
    """Runs sweep tasks one after the other in this process (no pool to start)."""

    name, workers = "inline", 1

    def run(self, tasks: Iterable) -> Iterator:
        for task in tasks:
            yield task, run_task(task)

    def close(self, abandon: bool = False) -> None:
        pass

    def __enter__(self) -> InlineBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_precision_sweep_gives_each_cell_its_own_rounds_and_resumes_to_the_same(
    noisy_path, tmp_path
):
    path = scenario_file(tmp_path, noisy_path, sweep={"guests.per_host": [2, 4]})
    plan = plan_sweep(path)
    rule = PrecisionRule(0.3, max_replications=40)
    out = tmp_path / "out"
    progress, reports = run_sweep_to_precision(plan, out, InlineBackend(), rule)
    assert len(reports) == len(plan.cells) and progress.failed == 0
    summary = pd.read_parquet(out / "summary.parquet")
    for cell in plan.cells:
        report = reports[f"{cell.arm} guests.per_host={cell.point['guests.per_host']}"]
        rows = summary[(summary["arm"] == cell.arm)
                       & (summary["guests.per_host"] == cell.point["guests.per_host"])]  # fmt: skip
        assert len(rows) == report.replications
        alone = replicate(RunResult(cell.config, cell.seed), cell.replications, rule,
                          injections=cell.injections).precision  # fmt: skip
        assert (report.replications, report.rounds) == (alone.replications, alone.rounds)
    again, reports_again = run_sweep_to_precision(plan, out, InlineBackend(), rule, resume=True)
    assert again.ran == 0
    assert {k: r.replications for k, r in reports_again.items()} == {
        k: r.replications for k, r in reports.items()
    }


# ------------------------------------------------------------------------------------------
# 3. warnings


def test_a_three_replication_run_of_the_default_fleet_warns_on_stderr_only():
    r = twin("run", str(ROOT / "configs" / "default.yaml"), "-r", "3", "--horizon", "30d", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    lines = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "--precision" in lines[0] and "3 replication" in lines[0]
    assert lines[0] == f"warning: {out['warnings'][0]}"
    assert any(metric in lines[0] for metric in HEADLINE)


def test_a_wide_interval_warns_even_with_many_replications_and_names_its_metric():
    rows = [{"guest_downtime_min_per_year": v} for v in (0, 0, 0, 0, 0, 0, 0, 100.0)]
    (line,) = noise_warning({"": rows})
    assert "guest_downtime_min_per_year" in line and "--precision" in line
    tight = [{"guest_downtime_min_per_year": v} for v in (10, 11, 10, 11, 10, 11)]
    assert noise_warning({"": tight}) == []


# ------------------------------------------------------------------------------------------
# 5. arms with their own injections and controls, verdicts


def test_an_arm_can_drop_the_scenario_injections_and_name_its_control(noisy_path, tmp_path):
    path = scenario_file(tmp_path, noisy_path)
    assert load_experiment(path, arm="control").injections == []
    assert [i.action for i in load_experiment(path, arm="outage").injections] == ["power_loss"]
    bad = scenario_file(tmp_path, noisy_path, arms={"a": {}, "b": {"control": "nope"}})
    with pytest.raises(ConfigError) as err:
        load_experiment(bad)
    assert err.value.path == "arms.b.control" and "nope" in err.value.message
    unordered = [{"at": "2d", "action": "tor_fault", "rack": "r0"},
                 {"at": "1d", "action": "tor_fault", "rack": "r1"}]  # fmt: skip
    bad = scenario_file(tmp_path, noisy_path, arms={"a": {"injections": unordered}})
    with pytest.raises(ConfigError) as err:
        load_experiment(bad)
    assert err.value.path == "arms.a.injections.1.at"


def test_the_verdict_reads_a_large_cost_as_higher_and_no_difference_as_not_distinguishable(
    noisy_path, tmp_path
):
    comparison = compare(scenario_file(tmp_path, noisy_path), replications=4)
    outage, same = comparison.verdict_lines()
    assert outage.startswith("outage - control: guest downtime +")
    assert outage.endswith("): higher") and "95 % CI" in outage
    assert same.startswith("same-as-control - control: guest downtime ")
    assert "): the same in every replication" in same
    out = comparison.to_json()
    flags = {(v["arm"], v["metric"]): v["significant"] for v in out["verdicts"]}
    assert flags == {("outage", "guest_downtime_min_per_year"): True,
                     ("same-as-control", "guest_downtime_min_per_year"): False}  # fmt: skip
    diff = out["differences_from_first"]["outage"]["guest_downtime_min_per_year"]
    assert diff["significant"] and diff["ci95_low"] > 0


def test_a_paired_difference_is_significant_only_when_its_interval_excludes_zero():
    assert paired_difference([2.0, 2.1, 2.2], [1, 1, 1], "migrations")["significant"]
    assert not paired_difference([1, 3, 0], [1, 1, 1], "migrations")["significant"]
    assert not paired_difference([5], [1], "migrations")["significant"]  # one pair: no CI
    share = paired_difference([1.0, 1.0, 0.0], [0.0, 0.0, 1.0], "guest_availability")
    assert share["ci95_low"] >= -1.0 and share["ci95_high"] <= 1.0


def test_each_arm_is_compared_with_the_control_it_names(noisy_path, tmp_path):
    arms = {"a": {"injections": []}, "b": {}, "c": {"control": "b"}}
    comparison = compare(scenario_file(tmp_path, noisy_path, arms=arms), replications=2)
    assert comparison.controls == {"b": "a", "c": "b"}
    assert [line.split(":")[0] for line in comparison.verdict_lines()] == ["b - a", "c - b"]


def test_a_verdict_metric_the_fleet_does_not_have_is_refused_before_running(noisy_path, tmp_path):
    path = scenario_file(tmp_path, noisy_path, verdict=["guest_downtime_min_per_yr"])
    code, _, err = invoke("compare", str(path))
    assert code == 2 and err.count("\n") == 1 and "verdict.0" in err, err


# ------------------------------------------------------------------------------------------
# issue 20, item 4: tables that fit


def test_compare_never_cuts_an_arm_or_metric_name_at_a_narrow_terminal(noisy_path, tmp_path):
    arms = {"control-with-a-rather-long-name": {"injections": []},
            "outage-of-rack-r0-for-five-days": {}}  # fmt: skip
    path = scenario_file(tmp_path, noisy_path, arms=arms)
    r = twin("compare", str(path), "-r", "2", env={"COLUMNS": "50", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    for name in (*arms, "guest_downtime_min_per_year", "planned_downtime_min_per_year"):
        assert name in r.stdout, name
    assert "…" not in r.stdout
    assert all(len(line) <= 110 for line in r.stdout.splitlines() if "│" in line)


def test_compare_writes_csv_and_markdown_with_the_metrics_asked_for(noisy_path, tmp_path):
    path = scenario_file(tmp_path, noisy_path)
    r = twin("compare", str(path), "-r", "2", "--format", "csv",
             "--metrics", "guest_availability,incidents.*")  # fmt: skip
    assert r.returncode == 0, r.stderr
    frame = pd.read_csv(io.StringIO(r.stdout))
    incidents = [m for m in frame["metric"].unique() if m.startswith("incidents.")]
    assert list(frame["metric"].unique()) == ["guest_availability", *incidents] and incidents
    assert set(frame["arm"]) == {"control", "outage", "same-as-control"}
    assert {"ci95_low", "ci95_high", "difference", "significant"} <= set(frame.columns)
    md = twin("compare", str(path), "-r", "2", "--format", "markdown", "--metrics", "mttr_hours")
    assert md.returncode == 0, md.stderr
    table = [line for line in md.stdout.splitlines() if line.startswith("|")]
    assert table[0].startswith("| metric | arm |") and len(table) == 2 + 3
    assert "outage - control:" in md.stdout  # the verdicts follow the table


def test_an_unknown_metric_or_format_exits_2_with_one_line(noisy_path, tmp_path):
    path = scenario_file(tmp_path, noisy_path)
    cases = [(["--metrics", "guest_avail"], "--metrics"), (["--format", "xml"], "--format")]
    for args, word in cases:
        code, _, err = invoke("compare", str(path), *args)
        assert code == 2 and err.count("\n") == 1 and word in err, err


def test_metrics_are_picked_by_name_or_glob_in_the_order_given():
    names = ["guest_availability", "incidents.driver", "incidents.power", "mttr_hours"]
    assert select_metrics(names, ["mttr_hours,incidents.*"]) == names[3:] + names[1:3]
    with pytest.raises(ConfigError, match="did you mean guest_availability"):
        select_metrics(names, ["guest_avail"])
