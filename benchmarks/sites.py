"""Benchmark: a fleet of independent sites, serially and with its sites on workers.

    python benchmarks/sites.py                                # 1, 2 and 4 sites, pool and Dask
    python benchmarks/sites.py --sites 10 --backends pool dask   # no serial run
    python benchmarks/sites.py --sites 2 --set horizon=0.25y  # a quicker look
    python benchmarks/sites.py --memory                       # memory per host and per guest

Each site is `configs/hyperscale.yaml`'s: 10,000 hosts x 20 guests, one fleet-year, its own
operator team and campaigns (``operators.per_site``). For each number of sites it runs one
replication serially (site by site in one process, as ``twin run`` does) and then with
its sites as separate tasks on ``--workers`` local processes (``twin run --workers``) and
on a Dask `LocalCluster` (``--dask local``), each in a fresh process, and reports wall
seconds, the speed-up over serial, the peak RSS of the serial process and of the largest
worker (each task reports its own process's peak), and whether the metrics are identical.
It also gives the CPU seconds of the busiest process (serial: the one process; else the
worker whose tasks took most CPU) and their ratio, the speed-up the split allows when
each worker has a core of its own: on a machine shared with other jobs the wall-clock
speed-up is whatever CPU the scheduler grants the extra processes.

``--memory`` instead builds and runs single sites of several sizes in fresh processes and
fits peak RSS = base + a x hosts + b x guests, so that users can size workers; it also
gives each site's outcome pickled, what the driver receives and holds until the merge.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's twin, whichever one is installed
CONFIG = ROOT / "configs" / "hyperscale.yaml"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measured_site(task):  # a SiteTask: its outcome, the worker's peak RSS, pid and CPU s
    from twin.experiments.sites import run_site

    start = time.process_time()
    outcome = run_site(task)
    return outcome, peak_rss_mib(), os.getpid(), time.process_time() - start


def _run(sites: int, backend_name: str, workers: int, sets: list[str]) -> dict:
    """One replication of ``sites`` sites, in this process: serial or on a backend."""
    from twin.config import load_config
    from twin.experiments.backends import make_backend
    from twin.experiments.sites import merge_sites, run_site, site_tasks

    config = load_config(CONFIG, [f"topology.sites={sites}", *sets])
    tasks = site_tasks(config, [0], config.seed, record_events=False)
    start, cpu = time.perf_counter(), time.process_time()
    if backend_name == "serial":
        outcomes = [run_site(task) for task in tasks]
        worker_rss = [peak_rss_mib()]
        busiest = time.process_time() - cpu
    else:
        dask = "local" if backend_name == "dask" else None
        with make_backend(dask, workers) as backend:
            done = [result for _, result in backend.run(tasks, measured_site)]
        for result in done:
            if isinstance(result, BaseException):
                raise result
        outcomes = [outcome for outcome, *_ in done]
        worker_rss = [rss for _, rss, *_ in done]
        per_worker: dict[int, float] = {}
        for _, _, pid, seconds in done:
            per_worker[pid] = per_worker.get(pid, 0.0) + seconds
        busiest = max(per_worker.values())
    metrics = merge_sites(0, outcomes).metrics
    wall = time.perf_counter() - start
    return {"sites": sites, "backend": backend_name, "wall_s": wall,
            "hosts": sum(b.ledger.value("hosts", "*") for b in (o.books for o in outcomes)),
            "worker_peak_rss_mib": max(worker_rss), "driver_peak_rss_mib": peak_rss_mib(),
            "busiest_cpu_s": busiest, "metrics": metrics}  # fmt: skip


def _memory_point(hosts: int, guests: int, sets: list[str]) -> dict:
    """Peak RSS of building and running one site of ``hosts`` x ``guests`` per host."""
    from twin.config import load_config
    from twin.experiments.sites import SiteTask, run_site

    racks = hosts // 20
    config = load_config(CONFIG, ["topology.sites=1", f"topology.pods={racks // 10}",
                                  f"operators.count={max(4, hosts // 32)}",
                                  f"guests.per_host={guests}", *sets])  # fmt: skip
    before = peak_rss_mib()
    start = time.perf_counter()
    outcome = run_site(SiteTask(config, 0, config.seed, 0))
    return {"hosts": hosts, "guests": hosts * guests, "wall_s": time.perf_counter() - start,
            "import_rss_mib": before, "peak_rss_mib": peak_rss_mib(),
            "outcome_kib": len(pickle.dumps(outcome)) / 1024}  # fmt: skip


def in_fresh_process(*args: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backends", nargs="+", default=["serial", "pool", "dask"],
                        choices=["serial", "pool", "dask"],
                        help="serial first gives the speed-up of the others")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        if kind == "memory":
            result = _memory_point(int(rest[0]), int(rest[1]), args.set)
        else:
            result = _run(int(rest[0]), kind, args.workers, args.set)
        print(json.dumps(result))
        return 0
    sets = [f"--set={kv}" for kv in args.set]
    if args.memory:
        return _memory(sets, args.json)
    rows = []
    for sites in args.sites:
        serial = None
        for name in args.backends:
            run = in_fresh_process(name, str(sites), f"--workers={args.workers}", *sets)
            if name == "serial":
                serial = run
            elif serial is not None:
                run["speedup"] = serial["wall_s"] / run["wall_s"]
                run["cpu_speedup"] = serial["busiest_cpu_s"] / run["busiest_cpu_s"]
                run["identical"] = json.dumps(run["metrics"]) == json.dumps(serial["metrics"])
            rows.append(run)
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "metrics"} for r in rows]))
        return 0
    print(f"{'sites':>5} {'hosts':>8} {'run':>7} {'wall s':>8} {'speed-up':>8} "
          f"{'busiest CPU s':>13} {'CPU speed-up':>12} {'worker RSS MiB':>14} "
          f"{'driver RSS MiB':>14} identical")  # fmt: skip
    for r in rows:
        speedup = f"{r['speedup']:.2f}" if "speedup" in r else "-"
        cpu_speedup = f"{r['cpu_speedup']:.2f}" if "cpu_speedup" in r else "-"
        print(f"{r['sites']:>5} {r['hosts']:>8.0f} {r['backend']:>7} {r['wall_s']:>8.1f} "
              f"{speedup:>8} {r['busiest_cpu_s']:>13.1f} {cpu_speedup:>12} "
              f"{r['worker_peak_rss_mib']:>14.0f} {r['driver_peak_rss_mib']:>14.0f} "
              f"{r.get('identical', '-')}")  # fmt: skip
    return 0


def _memory(sets: list[str], as_json: bool) -> int:
    """Fit peak RSS = base + a x hosts + b x guests over three site sizes."""
    points = [in_fresh_process("memory", str(h), str(g), *sets)
              for h, g in ((5_000, 20), (10_000, 20), (10_000, 10))]  # fmt: skip
    small, full, thin = points
    per_guest = (full["peak_rss_mib"] - thin["peak_rss_mib"]) / (full["guests"] - thin["guests"])
    rest = full["peak_rss_mib"] - small["peak_rss_mib"]
    per_host = (rest - per_guest * (full["guests"] - small["guests"])) / (
        full["hosts"] - small["hosts"]
    )
    fit = {"points": points, "kib_per_host": per_host * 1024, "kib_per_guest": per_guest * 1024}
    if as_json:
        print(json.dumps(fit))
        return 0
    for p in points:
        print(f"{p['hosts']:>7} hosts {p['guests']:>8} guests: peak RSS {p['peak_rss_mib']:.0f} "
              f"MiB (after imports {p['import_rss_mib']:.0f}), {p['wall_s']:.1f} s; the site's "
              f"outcome (what the driver gets and holds until the merge): "
              f"{p['outcome_kib'] / 1024:.1f} MiB pickled")  # fmt: skip
    print(f"per host (with its share of incidents and tickets): {per_host * 1024:.1f} KiB; "
          f"per guest: {per_guest * 1024:.2f} KiB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
