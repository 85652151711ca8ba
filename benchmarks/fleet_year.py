"""Benchmark: one simulated fleet-year, the twin against the event-loop floor.

For each fleet size, runs (in a fresh process each, so peak RSS is its own):

* ``twin``: build the `Fleet` (topology, placement, agents) and run one year of the
  default config scaled to N hosts x 20 guests, without the event log;
* ``floor``: a plain ``heapq`` loop over the same per-host fault and repair
  processes (hypervisor, parent OS, drivers, hardware; detection, response,
  reboot, repair), with no agents, no guests, no topology and no operator queue.

Prints wall seconds, events processed, events/s and peak RSS for each, and the
ratio twin/floor, as medians over ``--runs`` runs. Figures are only comparable
within one run of this script on one machine.

    python benchmarks/fleet_year.py                 # 10,000 hosts
    python benchmarks/fleet_year.py --hosts 1000 5000 10000 --runs 3
"""

from __future__ import annotations

import argparse
import heapq
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"


SCOPES = {
    # the per-host fault, detection, repair and reboot processes the floor also runs
    "core": ["guests.ha.enabled=false", "updates=[]"],
    # everything in the default config: HA restart, live migration, update campaigns
    "operations": [],
}


def fleet_config(hosts: int, scope: str = "core", config_path: Path = DEFAULT_CONFIG):
    """The default config scaled to ``hosts`` hosts (20 per rack, 10 racks per pod), with
    the operator team scaled as in the default (4 per 128 hosts) so queues stay stable."""
    from twin.config import load_config

    per_rack = 20
    racks = max(1, hosts // per_rack)
    racks_per_pod = min(10, racks)  # pods of 200 hosts: HA/migration clusters of ~100
    pods = max(1, racks // racks_per_pod)
    sets = [
        "topology.sites=1",
        f"topology.pods={pods}",
        f"topology.racks_per_pod={racks_per_pod}",
        f"topology.hosts_per_rack={per_rack}",
        "guests.per_host=20",
        f"operators.count={max(4, hosts // 32)}",
        "horizon=1y",
        "replications=1",
        *SCOPES[scope],
    ]
    return load_config(config_path, sets)


def run_twin(hosts: int, seed: int, scope: str = "core") -> dict[str, float]:
    from twin.fleet import Fleet

    config = fleet_config(hosts, scope)
    start = time.perf_counter()
    fleet = Fleet(config, np.random.SeedSequence(seed), record_events=False)
    fleet.run()
    wall = time.perf_counter() - start
    return {"wall_s": wall, "events": fleet.events_processed, "hosts": len(fleet.hosts),
            "guests": len(fleet.guests)}  # fmt: skip


def run_floor(hosts: int, seed: int, scope: str = "core") -> dict[str, float]:
    """The same per-host fault and repair processes on a bare heap of tuples."""
    from twin.placement import assign_architectures, hosts_with_share

    config = fleet_config(hosts)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    n = config.topology.sites * config.topology.pods * config.topology.racks_per_pod
    n *= config.topology.hosts_per_rack
    start = time.perf_counter()
    racks = [f"r{i // config.topology.hosts_per_rack}" for i in range(n)]
    archs = assign_architectures(racks, config.hosts.architecture_mix, config.hosts.assign, rng)
    arch_cfg = [config.architectures.get(a) for a in archs]
    drivers: list[list] = [[] for _ in range(n)]
    for spec in config.drivers:
        for i in hosts_with_share(n, spec.share, rng):
            drivers[i].append(spec.fault)
    horizon = config.horizon
    hw, hw_repair = config.hardware.fault, config.hardware.repair
    response = config.operators.response_time
    heap: list[tuple[float, int, int, int, int]] = []
    seq = 0
    down_hours = 0.0
    events = 0
    epoch = [0] * n  # a host's pending faults are stale once it went down

    def arm(i: int, now: float) -> None:
        nonlocal seq
        a = arch_cfg[i]
        dists = [a.hypervisor_fault, hw, a.parent_os_fault, *drivers[i]]
        for kind, dist in enumerate(dists):
            if not dist.never:
                seq += 1
                heapq.heappush(heap, (now + dist.sample(rng), seq, i, kind, epoch[i]))

    for i in range(n):
        arm(i, 0.0)
    while heap:
        now, _, i, kind, ep = heapq.heappop(heap)
        if now > horizon:
            break
        if ep != epoch[i]:
            continue  # a fault clock of a host that went down since
        events += 1
        a = arch_cfg[i]
        if kind >= 3 and rng.random() >= a.driver_fault_host_crash_prob:
            continue  # a contained driver fault
        epoch[i] += 1
        if kind == 1:
            outage = response.sample(rng) + hw_repair.sample(rng) + a.reboot_time.sample(rng)
        else:
            outage = a.crash_detection.sample(rng) + a.reboot_time.sample(rng)
            if not a.crash_auto_reboot:
                outage += response.sample(rng)
        down_hours += outage
        events += 2
        arm(i, now + outage)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "events": events, "hosts": n, "down_hours": down_hours}


def _worker(kind: str, hosts: int, seed: int, scope: str) -> None:
    result = (run_twin if kind == "twin" else run_floor)(hosts, seed, scope)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(kind: str, hosts: int, seed: int, scope: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", kind, "--hosts", str(hosts), "--seed", str(seed),
           "--scope", scope]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[10_000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scope", choices=list(SCOPES), default="core",
                        help="core: fault/repair processes only (as the floor); "
                        "operations: also HA, live migration and update campaigns")  # fmt: skip
    parser.add_argument("--worker", choices=["twin", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.hosts[0], args.seed, args.scope)
        return 0
    rows = []
    for hosts in args.hosts:
        runs = range(args.runs)
        twin = median_of([measure("twin", hosts, args.seed + r, args.scope) for r in runs])
        floor = median_of([measure("floor", hosts, args.seed + r, args.scope) for r in runs])
        rows.append({"hosts": hosts, "twin": twin, "floor": floor,
                     "ratio_twin_floor": twin["wall_s"] / floor["wall_s"]})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"scope: {args.scope}; medians of {args.runs} run(s)")
    print(f"{'hosts':>7} {'what':>6} {'wall s':>8} {'events':>10} {'events/s':>10} {'RSS MiB':>8}")
    for row in rows:
        for kind in ("twin", "floor"):
            r = row[kind]
            print(f"{row['hosts']:>7} {kind:>6} {r['wall_s']:>8.2f} {r['events']:>10.0f} "
                  f"{r['events'] / r['wall_s']:>10.0f} {r['peak_rss_mib']:>8.0f}")  # fmt: skip
        print(f"{row['hosts']:>7} ratio twin/floor: {row['ratio_twin_floor']:.1f}")
    if len(rows) > 1:
        base = rows[0]
        for row in rows[1:]:
            scale = row["twin"]["wall_s"] / base["twin"]["wall_s"]
            print(f"time({row['hosts']}) / time({base['hosts']}) = {scale:.1f} "
                  f"(hosts x{row['hosts'] / base['hosts']:.0f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
