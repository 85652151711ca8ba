"""The command line as a careful tool (issue 20, items 1, 2, 3 and the validate verdict):
nothing overwritten by accident, bad paths, counts and oversized fleets refused in one
line before any work, Ctrl-C and SIGTERM keep what finished, progress shown the same way by
every long command, the default config found from any folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import QUIET
from typer.testing import CliRunner

from twin import validation
from twin.cli import app
from twin.config import load_experiment
from twin.config.hours import bare_hours
from twin.experiments.footprint import fleet_footprint

ROOT = Path(__file__).resolve().parents[1]
TWIN = shutil.which("twin", path=str(Path(sys.executable).parent)) or "twin"
DEFAULT = ROOT / "configs" / "default.yaml"
LANL = ROOT / "tests" / "data" / "lanl-system-6.csv"
BACKTEST = ["--format", "lanl", "--system", "6", "--train", "2003-09-01:2005-01-01",
            "--test", "2005-01-01:"]  # fmt: skip


def twin(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run([TWIN, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, **(env or {})})  # fmt: skip


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command line run in this process (no interpreter start-up), as a finished process."""
    result = CliRunner().invoke(app, list(args), env=env)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def one_error_line(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The run ended with exit 2 and one line on stderr that names every needle."""
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A 4-host fleet, 30 days, one replication in well under a second."""
    data = {
        **QUIET,
        "horizon": "30d",
        "hardware": {"fault": {"dist": "exponential", "mean": "20d"}, "repair": "4h"},
    }
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sweep_results(folder: Path) -> Path:
    """A folder as `twin sweep` leaves it (its manifest and a table)."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"kind": "twin-sweep", "tasks": 8}))
    pd.DataFrame({"arm": ["a"], "guest_availability": [0.99]}).to_parquet(
        folder / "summary.parquet"
    )
    return folder


# -- 1. output safety -------------------------------------------------------------------------


def test_run_refuses_to_overwrite_a_sweeps_results_and_force_replaces_them(small, tmp_path):
    out = sweep_results(tmp_path / "sweep")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = twin("run", str(small), "--out", str(out))
    one_error_line(r, "--out", "twin sweep", "--force")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched

    r = invoke("run", str(small), "--out", str(out), "--force", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "manifest.json").read_text())["kind"] == "twin-run"


def test_run_writes_again_into_its_own_results(small, tmp_path):
    out = tmp_path / "run"
    for _ in range(2):
        r = invoke("run", str(small), "--out", str(out), "--json")
        assert r.returncode == 0, r.stderr


def test_sweep_refuses_a_runs_results_unless_forced(small, tmp_path):
    out = tmp_path / "run"
    assert invoke("run", str(small), "--out", str(out), "--json").returncode == 0
    one_error_line(invoke("sweep", str(small), "--out", str(out), "-w", "1"), "twin run --out")
    r = twin("sweep", str(small), "--out", str(out), "-w", "1", "--force", "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "manifest.json").read_text())["kind"] == "twin-sweep"
    assert not (out / "events.parquet").exists()  # the run's results are gone, not mixed in


def test_an_out_that_is_a_file_or_cannot_be_written_is_refused_before_simulating(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for out, needle in ((a_file, "is a file"), (a_file / "results", "is a file"),
                        (Path("/proc/twin-results"), "cannot write")):  # fmt: skip
        start = time.monotonic()
        r = invoke("run", str(DEFAULT), "-r", "50", "--out", str(out))  # minutes if it ran
        one_error_line(r, "--out", needle)
        assert time.monotonic() - start < 10
    assert a_file.read_text() == "mine"


def test_report_refuses_to_overwrite_a_file_it_did_not_write(small, tmp_path):
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my own page</html>")
    out = tmp_path / "run"
    assert invoke("run", str(small), "--out", str(out), "--json").returncode == 0
    one_error_line(twin("report", str(out), "--output", str(mine)), "--output", "--force")
    assert mine.read_text() == "<html>my own page</html>"
    one_error_line(invoke("report", str(out), "--output", str(tmp_path)), "is a folder")
    for _ in range(2):  # its own report is replaced
        assert invoke("report", str(out)).returncode == 0


def test_calibrate_refuses_to_overwrite_a_config_it_did_not_write(tmp_path):
    config = tmp_path / "fleet.yaml"
    config.write_text("name: mine\n")
    r = twin("calibrate", str(LANL), "--format", "lanl", "--system", "6", "--out", str(config))
    one_error_line(r, "--out", str(config))
    assert config.read_text() == "name: mine\n"


def wait_for_progress(proc: subprocess.Popen, text: str, timeout: float = 60) -> list[str]:
    """Read the child's stderr until a line holds ``text``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "ended before it could be interrupted: " + "".join(
            lines
        )
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError("no progress: " + "".join(lines))


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_writes_the_replications_that_finished(small, tmp_path, how):
    out = tmp_path / "run"
    proc = subprocess.Popen([TWIN, "run", str(small), "-r", "400", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_progress(proc, "replications done")
    proc.send_signal(how)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and f"written to {out}" in last, last
    finished = int(last.split()[1])
    assert 40 <= finished < 400
    assert len(pd.read_parquet(out / "summary.parquet")) == finished
    assert len(json.loads((out / "manifest.json").read_text())["replications"]) == finished


def test_an_interrupted_compare_shows_the_arms_that_finished(small, tmp_path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "two-arms", "base": str(small),
        "arms": {"first-arm": {"operators": {"count": 1}},
                 "second-arm": {"operators": {"count": 2}}},
    }))  # fmt: skip
    proc = subprocess.Popen([TWIN, "compare", str(scenario), "-r", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_progress(proc, "(60 %)")  # the first arm is done, the second under way
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and "of 600 replications finished" in last, last
    assert "1 of 2 arms complete (first-arm) shown" in last, last
    assert "first-arm" in stdout and "second-arm" not in stdout
    assert "300 replication(s) per arm" in stdout


def test_an_interrupted_backtest_says_what_finished_and_exits_130(tmp_path):
    proc = subprocess.Popen([TWIN, "backtest", str(LANL), *BACKTEST, "-r", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_progress(proc, "replications done", timeout=90)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and "of 60 replications" in last, last


# -- 2. inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["compare", "scenarios/mixed-fleet-migration.yaml", "-r", "0"], "--replications"),
        (["compare", "scenarios/mixed-fleet-migration.yaml", "-r", "-3"], "--replications"),
        (["run", str(DEFAULT), "-r", "0"], "--replications"),
        (["sweep", str(DEFAULT), "--workers", "0"], "--workers"),
        (["sweep", str(DEFAULT), "-r", "-1"], "--replications"),
        (["backtest", str(LANL), *BACKTEST, "-r", "0"], "--replications"),
    ],
)
def test_a_count_below_one_is_refused_in_one_line(args, option):
    one_error_line(invoke(*args), option, ">= 1")


def test_backtest_finds_the_default_config_from_any_folder_and_reports_progress(tmp_path):
    r = twin("backtest", str(LANL), *BACKTEST, "-r", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "host_availability" in r.stdout
    assert r.stderr.strip().splitlines()[-1] == "backtest: 3/3 replications done (100 %)"


def test_the_default_config_is_package_data_in_a_built_wheel(tmp_path):
    """A normal install gets a copy of configs/default.yaml (the editable one, the link)."""
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("fleet_twin-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("twin/data/default.yaml") == DEFAULT.read_bytes()
        archive.extractall(tmp_path / "site")
    code = (
        "import twin.data; p = twin.data.default_config(); "
        f"assert str(p).startswith({str(tmp_path)!r}), p; print(p.read_text()[:40])"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(DEFAULT.read_text()[:40])


def test_a_fleet_too_large_for_the_machine_is_refused_with_its_estimate():
    start = time.monotonic()
    r = invoke("check", str(DEFAULT), "--set", "topology.sites=10",
             "--set", "topology.hosts_per_rack=100000")  # fmt: skip
    line = one_error_line(r, "8,000,000 hosts", "160,000,000 guests", "GB", "--allow-large")
    assert "available" in line
    assert time.monotonic() - start < 10


def test_allow_large_insists(small):
    tight = {"TWIN_MEMORY_LIMIT": "10k"}  # the 4-host fleet needs about 20 kB
    one_error_line(invoke("run", str(small), "--json", env=tight), "--allow-large")
    r = invoke("run", str(small), "--json", "--allow-large", env=tight)
    assert r.returncode == 0, r.stderr


def peak_rss(racks_per_pod: int) -> tuple[int, int]:
    """Peak RSS of a process that builds the default fleet with ``racks_per_pod`` racks per
    pod and runs it 30 days, and the twin's estimate for that fleet (bytes)."""
    sets = [f"topology.racks_per_pod={racks_per_pod}", "horizon=30d"]
    estimate = fleet_footprint(load_experiment(DEFAULT, sets).config).bytes
    code = (  # VmHWM: this process's own peak (ru_maxrss starts from the parent's at exec)
        "import pathlib; from twin.config import load_config; from twin.fleet import Fleet\n"
        f"Fleet(load_config({str(DEFAULT)!r}, {sets!r}), 1).run()\n"
        "status = pathlib.Path('/proc/self/status').read_text().splitlines()\n"
        "print(next(int(x.split()[1]) * 1024 for x in status if x.startswith('VmHWM:')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return int(r.stdout), estimate


def test_the_memory_estimate_is_honest_for_thousands_of_hosts():
    """Going from 512 to 4,096 hosts (10,240 to 81,920 guests) grows the peak RSS by less
    than the estimate grows, and by more than half of it (the estimate is not padded)."""
    small_rss, small_estimate = peak_rss(16)
    large_rss, large_estimate = peak_rss(128)
    grown, estimated = large_rss - small_rss, large_estimate - small_estimate
    assert estimated / 2 < grown < estimated, (grown, estimated)


def test_check_lists_the_times_given_as_bare_numbers(small):
    r = invoke("check", str(small), "--set", "operators.response_time=30",
             "--set", "hardware.repair={dist: exponential, mean: 72}")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "taken as hours" in r.stdout
    assert "operators.response_time=30" in r.stdout and "hardware.repair.mean=72" in r.stdout
    assert "taken as hours" not in invoke("check", str(small)).stdout  # every time has a unit


def test_bare_hours_skip_zero_and_times_with_units():
    raw = {"guests": {"boot_time": 0, "ha": {"restart_delay": "15s"}},
           "updates": [{"every": 100, "window": "always"}],
           "architectures": {"monolithic": {"reboot_time": {"dist": "uniform", "low": 1,
                                                              "high": "2h"}}}}  # fmt: skip
    assert bare_hours(raw) == [("architectures.monolithic.reboot_time.low", 1),
                               ("updates.0.every", 100)]  # fmt: skip


# -- 3. progress ------------------------------------------------------------------------------


def test_run_prints_one_line_per_tenth_into_a_log_and_nothing_when_quiet(small):
    r = twin("run", str(small), "-r", "20")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 10 and all("replications done" in line for line in lines), r.stderr
    assert lines[-1].endswith("20/20 replications done (100 %)")
    for quiet in ("--json", "--quiet"):
        r = invoke("run", str(small), "-r", "20", quiet)
        assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_terminal_gets_a_progress_bar_with_rate_and_eta(small, command):
    r = twin(command, str(small), "-r", "6", env={"FORCE_COLOR": "1", "COLUMNS": "120"})
    assert r.returncode == 0, r.stderr
    assert "━" in r.stderr and "6/6" in r.stderr, r.stderr
    assert "replication/s" in r.stderr and "ETA" in r.stderr


def test_calibrate_reports_progress_per_cause():
    r = invoke("calibrate", str(LANL), "--format", "lanl", "--system", "6")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith("causes done (100 %)"), r.stderr


# -- 7. the validate verdict ------------------------------------------------------------------

SMALL = validation.Mode("test", replications=10, rel_half_width=0.04)


def cheap_case() -> validation.Case:
    return validation.microkernel_host_case(racks=2, hosts_per_rack=4, hypervisor_mttf=400.0,
                                            parent_os_mttf=400.0, detection=0.1,
                                            reboot_mean=0.5)  # fmt: skip


def test_validate_ends_with_the_count_of_checks_passed(monkeypatch):
    case = cheap_case()
    monkeypatch.setattr(validation, "default_cases", lambda: (case,))
    monkeypatch.setattr(validation, "QUICK", SMALL)
    result = CliRunner().invoke(app, ["validate", "--quick"])
    assert result.exit_code == 0, result.output
    n = len(case.checks)
    assert result.stdout.strip().splitlines()[-1] == f"{n}/{n} checks passed"
    assert "1/1 cases done (100 %)" in result.stderr


def test_validate_ends_with_what_failed(monkeypatch):
    case = cheap_case()
    wrong = replace(case.checks[0], analytic=0.5)  # far from any simulated availability
    monkeypatch.setattr(validation, "default_cases", lambda: (replace(case, checks=(wrong,)),))
    monkeypatch.setattr(validation, "QUICK", SMALL)
    result = CliRunner().invoke(app, ["validate", "--quick"])
    assert result.exit_code == 1, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("0/1 checks passed; failed: "), last
    assert wrong.metric.removeprefix("by_architecture.") in last, last


def test_the_dashboard_default_is_the_folders_config_else_the_shipped_one(tmp_path, monkeypatch):
    from twin.cli import default_config

    monkeypatch.chdir(ROOT)
    assert default_config() == Path("configs/default.yaml")
    monkeypatch.chdir(tmp_path)  # no configs/ here
    shipped = default_config()
    assert shipped.is_absolute() and shipped.read_text() == DEFAULT.read_text()
