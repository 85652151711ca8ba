"""Benchmark: what one dashboard refresh costs the server on a large fleet.

Builds the dashboard's `LiveFleet` on the default config scaled to N hosts (20 a rack,
10 racks a pod, 20 guests each), advances it a month and then to a year, and times the
whole refresh callback each time: `dashboard.callbacks.refresh` (the view copied under the
lock, every figure) and its JSON encoding as Dash sends it. Median of R refreshes.

    .venv/bin/python benchmarks/dashboard_refresh.py --hosts 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from plotly.utils import PlotlyJSONEncoder

from dashboard import callbacks
from dashboard.live import LiveFleet, allowed_sources

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--refreshes", "-r", type=int, default=9)
    args = parser.parse_args()
    raw = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    pods = max(1, args.hosts // 200)
    raw["topology"] |= {"pods": pods, "racks_per_pod": 10, "hosts_per_rack": 20}
    raw["operators"]["count"] = max(4, args.hosts // 32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "configs" / "large.yaml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(raw))
        live = LiveFleet(allowed_sources(Path(tmp)), "configs/large.yaml", seed=1)
        hosts, guests = len(live.fleet.hosts), len(live.fleet.guests)
        print(f"{hosts:,} hosts, {guests:,} guests")
        for label, until in (("a month in", 730.0), ("a year in", 8760.0)):
            live.advance(until - live.fleet.time)
            seconds = []
            for _ in range(args.refreshes):
                start = time.perf_counter()
                json.dumps(callbacks.refresh(live), cls=PlotlyJSONEncoder)
                seconds.append(time.perf_counter() - start)
            print(f"{label}: refresh median {statistics.median(seconds) * 1000:.0f} ms "
                  f"(min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
