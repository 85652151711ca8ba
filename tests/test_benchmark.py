"""The fleet-year benchmark runs (no timing is asserted: figures belong in benchmarks/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("scope", ["core", "operations"])
def test_the_benchmark_runs_on_a_tiny_fleet_and_reports_its_figures(scope):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "fleet_year.py"), "--hosts", "40",
           "--scope", scope, "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    (row,) = json.loads(out.stdout)
    assert row["hosts"] == 40
    for kind in ("twin", "floor"):
        assert row[kind]["events"] > 0 and row[kind]["wall_s"] > 0
        assert row[kind]["peak_rss_mib"] > 0
    assert row["twin"]["guests"] == 800
    assert row["ratio_twin_floor"] == pytest.approx(row["twin"]["wall_s"] / row["floor"]["wall_s"])
