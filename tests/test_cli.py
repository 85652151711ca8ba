"""The ``twin`` command end to end (SPEC 5)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import QUIET

ROOT = Path(__file__).resolve().parents[1]
TWIN = shutil.which("twin", path=str(Path(sys.executable).parent)) or "twin"
DEFAULT = ROOT / "configs" / "default.yaml"
CAUSES = ("driver", "hypervisor", "parent_os", "hardware", "network", "power", "update",
          "operator_error")  # fmt: skip
METRICS = ("guest_availability", "host_availability", "guest_downtime_min_per_year",
           "planned_downtime_min_per_year", "degraded_min_per_year", "blast_radius_mean",
           "blast_radius_p95", "blast_radius_max", "mttr_hours", "operator_utilization",
           "ticket_wait_hours", "effective_capacity", "migrations")  # fmt: skip


def twin(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([TWIN, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture
def small_config(tmp_path) -> Path:
    data = dict(QUIET)
    data["horizon"] = "30d"
    data["hardware"] = {"fault": {"dist": "exponential", "mean": "20d"}, "repair": "4h"}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def is_leaf(node) -> bool:
    return isinstance(node, dict) and {"mean", "ci95_low", "ci95_high"} <= set(node)


def test_run_json_prints_every_spec_key_as_a_ci_leaf():
    r = twin("run", str(DEFAULT), "--json", "--replications", "2", "--horizon", "30d")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"name", "seed", "replications", "horizon_hours", "metrics"} <= out.keys()
    assert out["replications"] == 2 and out["horizon_hours"] == 720.0
    m = out["metrics"]
    for name in METRICS:
        assert is_leaf(m[name]), name
        assert m[name]["ci95_low"] <= m[name]["mean"] <= m[name]["ci95_high"]
    for cause in CAUSES:
        assert is_leaf(m["incidents"][cause]), cause
    for arch in ("monolithic", "microkernel"):
        for name in METRICS:
            assert is_leaf(m["by_architecture"][arch][name]), (arch, name)


def test_run_with_the_same_seed_prints_the_same_bytes(small_config):
    a = twin("run", str(small_config), "--json", "--seed", "5", "-r", "2")
    b = twin("run", str(small_config), "--json", "--seed", "5", "-r", "2")
    c = twin("run", str(small_config), "--json", "--seed", "6", "-r", "2")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout


def test_run_prints_a_summary_table(small_config):
    r = twin("run", str(small_config))
    assert r.returncode == 0, r.stderr
    assert "guest_availability" in r.stdout and "monolithic" in r.stdout


def test_run_out_writes_the_results_directory(small_config, tmp_path):
    out = tmp_path / "results"
    r = twin("run", str(small_config), "-r", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    summary = pd.read_parquet(out / "summary.parquet")
    assert list(summary["replication"]) == [0, 1]
    assert "guest_availability" in summary.columns
    events = pd.read_parquet(out / "events.parquet")
    assert {"time", "entity", "from_state", "to_state", "cause"} <= set(events.columns)
    assert (events["cause"] == "hardware").any()
    timeseries = pd.read_parquet(out / "timeseries.parquet")
    assert set(timeseries["architecture"]) == {"*", "monolithic", "microkernel"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["config_hash"]) == 64
    assert [r["index"] for r in manifest["replications"]] == [0, 1]
    assert manifest["versions"]["mesa"].startswith("3.")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "guests.per_hots=3"], "guests.per_hots"),
        (["--set", "hosts.architecture_mix.monolithic=0.9"], "hosts.architecture_mix"),
        (["--set", "guests.boot_time=-5m"], "guests.boot_time"),
        (["--set", "architectures.monolithic.driver_fault_host_crash_prob=1.5"],
         "driver_fault_host_crash_prob"),
        (["--set", "guests.per_host=many"], "guests.per_host"),
        (["--horizon", "soon"], "--horizon"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line_naming_the_key(args, needle):
    r = twin("run", str(DEFAULT), *args)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2
    assert len(lines) == 1, r.stderr
    assert needle in lines[0] and "Traceback" not in r.stderr


def test_a_missing_file_exits_2_with_one_line():
    r = twin("check", "configs/nope.yaml")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "nope.yaml" in r.stderr


def test_check_says_ok_for_the_default_config():
    r = twin("check", str(DEFAULT))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK")


def test_the_readme_config_example_is_a_valid_fleet(tmp_path):
    text = (ROOT / "README.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    r = twin("check", str(path))
    assert r.returncode == 0, r.stderr
