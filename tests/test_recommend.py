"""`twin recommend`: the cheapest candidate that meets the SLO, on a case whose answer is
known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import QUIET
from typer.testing import CliRunner

from twin.architectures import ARCHITECTURES, MONOLITHIC
from twin.cli import app
from twin.config import ConfigError, deep_merge
from twin.experiments.recommend import Candidate, knob_points, parse_knob


def _two_crashes_scenario(tmp_path: Path) -> Path:
    """Two hosts crash at once and wait for an operator to reboot them (2 h each, nothing
    else happens). With one operator the second host's guests are down 4 h, beyond the
    2.98 h a 99.6 % month allows (a breach for 2 of 8 guest-months in each of 2 months:
    0.125); with two or more operators every guest is down 2 h: no breach. The answer is
    two operators, the cheapest team that meets the SLO."""
    base = deep_merge(QUIET, {
        "horizon": 24 * 60,  # January and February 2024
        "architectures": {a: {"crash_detection": 0, "reboot_time": "2h"} for a in ARCHITECTURES},
        "hosts": {"architecture_mix": {a: float(a == MONOLITHIC) for a in ARCHITECTURES}},
        "guests": {"boot_time": 0},
        "operators": {"count": 1, "response_time": 0},
        "slo": {"target": 0.996, "period": "month"},
        "costs": {"downtime_per_guest_hour": 10, "operator_per_hour": 50,
                  "host_per_year": {MONOLITHIC: 5000}},
    })  # fmt: skip
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(base))
    scenario = {
        "name": "two-crashes",
        "question": "How many operators keep two simultaneous crashes inside the SLO?",
        "base": "fleet.yaml",
        "injections": [
            {"at": "10d", "action": "host_crash", "host": "h0"},
            {"at": "10d", "action": "host_crash", "host": "h1"},
        ],
    }
    path = tmp_path / "two-crashes.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def _twin(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "twin.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_recommend_finds_the_cheapest_team_that_meets_the_slo(tmp_path: Path) -> None:
    scenario = _two_crashes_scenario(tmp_path)
    out = tmp_path / "out"
    args = ["recommend", str(scenario), "--knob", "operators.count=1,2,3", "--replications", "6",
            "--workers", "2", "--out", str(out)]  # fmt: skip
    done = _twin(*args, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["recommended"] == {"operators.count": 2}
    by_count = {c["knobs"]["operators.count"]: c for c in result["candidates"]}
    assert by_count[1]["slo_breach_probability"]["mean"] == 0.125  # 2 of 8 guests, 2 months
    assert by_count[1]["stopped_early"] and by_count[1]["replications"] == 3
    assert by_count[2]["meets"] and by_count[3]["meets"]
    assert by_count[2]["replications"] == by_count[3]["replications"] == 6
    assert by_count[2]["cost.total"]["mean"] < by_count[3]["cost.total"]["mean"]
    assert (out / "recommend.html").is_file()
    again = CliRunner().invoke(app, [*args, "--resume"])  # everything is done: the table
    assert again.exit_code == 0, again.output
    assert "recommended: operators.count=2" in again.output
    assert "no (stopped after 3)" in again.output and "meets" in again.output


def test_a_bad_knob_is_one_line_and_exit_2_before_any_work(tmp_path: Path) -> None:
    scenario = _two_crashes_scenario(tmp_path)
    for knob, where in (("operators.cont=1,2", "--knob operators.cont"),
                        ("operators.count=-1,2", "--knob operators.count"),
                        ("operators.count", "--knob operators.count"),
                        ("horizon=10d,20d", "slo.period")):  # fmt: skip
        args = ["recommend", str(scenario), "--knob", knob, "--out", str(tmp_path / "x")]
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 2, (knob, done.output)
        assert done.output.count("\n") == 1 and where in done.output, done.output
        assert not (tmp_path / "x").exists()


def test_knobs_cross_and_parse_as_yaml() -> None:
    knobs = [parse_knob("operators.count=1,2"), parse_knob("operators.shift=24x7,business_hours")]
    assert knob_points(knobs)[1] == {"operators.count": 1, "operators.shift": "business_hours"}
    assert len(knob_points(knobs)) == 4
    try:
        knob_points([parse_knob("a=1"), parse_knob("a=2")])
    except ConfigError as err:
        assert err.path == "--knob"
    else:
        raise AssertionError("a key given twice is refused")


def test_a_candidate_meets_only_when_its_upper_bound_is_within_the_slo() -> None:
    c = Candidate("base", {}, 5, {"mean": 0.03, "ci95_low": 0.01, "ci95_high": 0.06})
    assert not c.meets(0.05) and not c.excluded(0.05) and c.meets(0.06)


def test_rounds_stop_excluded_candidates_and_double_undecided_ones_for_precision() -> None:
    from twin.experiments.recommend import _next_round

    excluded = Candidate("base", {}, 3, {"mean": 0.2, "ci95_low": 0.1, "ci95_high": 0.3})
    undecided = Candidate("base", {}, 3, {"mean": 0.05, "ci95_low": 0.0, "ci95_high": 0.1})
    assert _next_round([excluded, undecided], [3, 3], 10, None, 100, 0.05) == [3, 10]
    assert excluded.stopped_early
    undecided.replications = 10
    assert _next_round([excluded, undecided], [3, 10], 10, None, 100, 0.05) is None
    assert _next_round([excluded, undecided], [3, 10], 10, 0.1, 100, 0.05) == [3, 20]
    undecided.breach = {"mean": 0.05, "ci95_low": 0.048, "ci95_high": 0.052}  # precise enough
    assert _next_round([excluded, undecided], [3, 10], 10, 0.1, 100, 0.05) is None
