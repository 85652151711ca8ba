"""Benchmark: what one sweep task costs a worker, to size a pool or a Dask cluster.

For each fleet (the default config, and the same scaled with ``--set topology.pods=N``),
in a fresh process each so that peak RSS is its own: the seconds and peak RSS of importing
the twin, then of one ``run_task`` (one replication, as a sweep worker runs it), the bytes
of the task sent to a worker and of the outcome sent back (pickled, as the process pool
and Dask send them), and the bytes of the part the driver writes for it. Medians over
``--runs`` fresh processes (seeds 1, 2, ...).

    python benchmarks/task_cost.py                      # default, pods=8, pods=32
    python benchmarks/task_cost.py --pods 2 --runs 1
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's twin, whichever one is installed
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_task(pods: int | None, seed: int) -> dict[str, float]:
    """One task of the default config (``topology.pods=pods`` if given), in this process."""
    start = time.perf_counter()
    from twin.experiments.sweep import PARTS, plan_sweep, run_task, write_part

    imported_s, imported_mib = time.perf_counter() - start, peak_rss_mib()
    sets = [f"seed={seed}", *([f"topology.pods={pods}"] if pods else [])]
    task = plan_sweep(DEFAULT_CONFIG, sets, replications=1).tasks()[0]
    topology = task.cell.config.topology
    start = time.perf_counter()
    outcome = run_task(task)
    task_s = time.perf_counter() - start
    task_mib = peak_rss_mib()
    with tempfile.TemporaryDirectory() as out:
        (Path(out) / PARTS).mkdir()
        write_part(Path(out), task, outcome, {})  # a plain config: no grid keys
        part_bytes = sum(p.stat().st_size for p in Path(out).rglob("*.parquet"))
    return {
        "hosts": float(
            topology.sites * topology.pods * topology.racks_per_pod * topology.hosts_per_rack
        ),
        "import_s": imported_s,
        "import_rss_mib": imported_mib,
        "task_s": task_s,
        "peak_rss_mib": task_mib,
        "simulation_mib": task_mib - imported_mib,
        "task_kib": len(pickle.dumps(task)) / 1024,
        "outcome_kib": len(pickle.dumps(outcome)) / 1024,
        "part_kib": part_bytes / 1024,
        "timeseries_rows": float(len(outcome.timeseries)),
    }


def measure(pods: int | None, seed: int) -> dict[str, float]:
    """`measure_task` in a fresh process."""
    cmd = [sys.executable, __file__, "--worker", "--seed", str(seed)]
    cmd += ["--pods", str(pods)] if pods else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[0, 8, 32],
                        help="topology.pods of each fleet (0: the default as it is)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure_task(args.pods[0] or None, args.seed)))
        return 0
    rows = []
    for pods in args.pods:
        runs = [measure(pods or None, seed) for seed in range(args.seed, args.seed + args.runs)]
        row = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        rows.append({"pods": pods, **row})
    if args.json:
        print(json.dumps({"runs": args.runs, "rows": rows}, indent=2))
        return 0
    print(f"medians of {args.runs} fresh process(es) each")
    print(f"{'fleet':>14} {'task s':>7} {'peak MiB':>9} {'sim MiB':>8} {'import s':>9} "
          f"{'import MiB':>11} {'task KiB':>9} {'back KiB':>9} {'part KiB':>9}")  # fmt: skip
    for r in rows:
        fleet = "default" if not r["pods"] else f"pods={r['pods']}"
        fleet += f" {r['hosts']:.0f}"
        print(f"{fleet:>14} {r['task_s']:>7.2f} {r['peak_rss_mib']:>9.0f} "
              f"{r['simulation_mib']:>8.0f} {r['import_s']:>9.2f} {r['import_rss_mib']:>11.0f} "
              f"{r['task_kib']:>9.1f} {r['outcome_kib']:>9.1f} {r['part_kib']:>9.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
