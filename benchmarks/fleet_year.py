"""Benchmark: one simulated fleet-year, the twin against the event-loop floor.

For each fleet size (default 1,000, 5,000 and 10,000 hosts, 20 guests each), runs in
a fresh process each, so that peak RSS is its own:

* ``twin``: build the `Fleet` (topology, placement, agents) and run one year of the
  default mixed config scaled to N hosts x 20 guests, without the event log;
* ``floor``: a plain ``heapq`` loop over tuples running the same per-host processes,
  with no agents, no guests, no topology and no operator queue:

  - faults and repairs (hypervisor, parent OS, drivers, hardware; detection,
    response, reboot, repair);
  - in ``--scope operations``, the update campaigns: at each release (``start``,
    ``start + every``, ...) the hosts in scope are updated batch by batch, each batch
    starting when the one before it is done (no maintenance windows, operators or
    drains). An update that reboots the host (per the architecture's table) takes it
    down for its ``reboot_time``, twice when it fails and rolls back; its pending
    faults are stale until it is back. Any other update restarts a service for
    ``driver_restart_time``. A host that is down misses the release.

* ``floor+aging``: the same floor with software aging as the twin runs it since it became
  a default (session 5): after each boot the onset clock, then the failure clock, then a
  crash on the host-crash timeline; every reboot resets both. Reported beside the floor,
  which stays what it was, as a second ratio twin/(floor+aging).

Prints wall seconds, events processed, events/s and peak RSS for each, and the
ratio twin/floor, as medians over ``--runs`` runs (default 3, seeds ``--seed`` on). The
runs go in rounds (each round: every size, each twin run next to its floor run), so the
drift of a shared machine skews all sizes and both kinds alike. Figures are only
comparable within one run of this script on one machine. Then the performance
issue's targets, each met or not (2-core machine, ``--scope operations``):

* 10,000 hosts / 200,000 guests / 1 year in under 20 s,
* and under 2 GiB peak RSS (checked at the largest size);
* linear scaling: time(10,000) / time(1,000) at most 12, that is
  time(largest) / time(smallest) at most 12 x (largest / smallest) / 10;
* twin/floor at most 10 at each size.

    python benchmarks/fleet_year.py                       # 1,000, 5,000, 10,000 hosts
    python benchmarks/fleet_year.py --hosts 200 400 --runs 1
    python benchmarks/fleet_year.py --scope core          # faults and repairs only
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's twin, whichever one is installed
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"


SCOPES = {
    # the per-host fault, detection, repair and reboot processes only
    "core": ["guests.ha.enabled=false", "updates=[]"],
    # everything in the default config: HA restart, live migration, update campaigns
    # (of which the floor runs the update campaigns)
    "operations": [],
}


def fleet_config(
    hosts: int, scope: str = "core", extra: Sequence[str] = (), config_path: Path = DEFAULT_CONFIG
):
    """The default config scaled to ``hosts`` hosts (20 per rack, 10 racks per pod), with
    the operator team scaled as in the default (4 per 128 hosts) so queues stay stable;
    ``extra`` overrides (``key=value``) come last, to see how cost grows with guests per
    host or the horizon."""
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
        *extra,
    ]
    return load_config(config_path, sets)


def run_twin(hosts: int, seed: int, scope: str = "core", extra: Sequence[str] = ()) -> dict:
    from twin.fleet import Fleet

    config = fleet_config(hosts, scope, extra)
    start = time.perf_counter()
    fleet = Fleet(config, np.random.SeedSequence(seed), record_events=False)
    fleet.run()
    wall = time.perf_counter() - start
    return {"wall_s": wall, "events": fleet.events_processed, "hosts": len(fleet.hosts),
            "guests": len(fleet.guests)}  # fmt: skip


# the kinds of update events on the floor's heap (fault kinds are 0 and up)
RELEASE, BATCH, UPDATED, ROLLED_BACK, RESTARTED, AGED, AGING_CRASH = -1, -2, -3, -4, -5, -6, -7


def run_floor(
    hosts: int, seed: int, scope: str = "core", extra: Sequence[str] = (), aging: bool = False
) -> dict:
    """The same per-host fault, repair and update processes on a bare heap of tuples
    (with ``aging``, the hosts' software aging too).

    A heap entry is ``(time, seq, host, kind, epoch)``; a campaign's release and batch
    events carry the campaign in place of the host and the batch number in place of the
    epoch.
    """
    from twin.architectures import BEHAVIOURS, UpdateEffect, update_effect
    from twin.placement import assign_architectures, hosts_with_share

    config = fleet_config(hosts, scope, extra)
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
    campaigns = config.updates
    in_scope = [[i for i in range(n) if c.architecture in ("all", archs[i])] for c in campaigns]
    batch = [c.batch_size(len(h)) if h else 1 for c, h in zip(campaigns, in_scope, strict=True)]
    reboots = [[update_effect(BEHAVIOURS[name], a, c.scope) is UpdateEffect.REBOOT
                for name, a in zip(archs, arch_cfg, strict=True)] for c in campaigns]  # fmt: skip
    heap: list[tuple[float, int, int, int, int]] = []
    seq = 0
    down_hours = 0.0
    events = crashes = 0
    epoch = [0] * n  # a host's pending faults are stale once it went down
    up_at = [0.0] * n

    def arm(i: int, now: float) -> None:
        nonlocal seq
        a = arch_cfg[i]
        dists = [a.hypervisor_fault, hw, a.parent_os_fault, *drivers[i]]
        for kind, dist in enumerate(dists):
            if not dist.never:
                seq += 1
                heapq.heappush(heap, (now + dist.sample(rng), seq, i, kind, epoch[i]))
        if aging and not a.aging.never:
            seq += 1
            heapq.heappush(heap, (now + a.aging.onset.sample(rng), seq, i, AGED, epoch[i]))

    def crash(i: int, now: float, hardware: bool) -> None:
        """Host ``i`` goes down now: a hardware repair, or the crash timeline."""
        nonlocal down_hours, events, crashes
        a = arch_cfg[i]
        epoch[i] += 1
        crashes += 1
        if hardware:
            outage = response.sample(rng) + hw_repair.sample(rng) + a.reboot_time.sample(rng)
        else:
            outage = a.crash_detection.sample(rng) + a.reboot_time.sample(rng)
            if not a.crash_auto_reboot:
                outage += response.sample(rng)
        down_hours += outage
        up_at[i] = now + outage
        events += 2
        arm(i, now + outage)

    def roll(c: int, k: int, now: float) -> tuple[int, float]:
        """Update batch ``k`` of campaign ``c`` and arm batch ``k + 1`` for when the last
        host of this one is done; a host that is down misses the release. Returns the
        updates started and the hours of update reboots."""
        nonlocal seq
        size, hosts_in_scope = batch[c], in_scope[c]
        fail_prob = campaigns[c].fail_prob
        started, down, end = 0, 0.0, now
        for i in hosts_in_scope[k * size : (k + 1) * size]:
            if up_at[i] > now:
                continue
            a = arch_cfg[i]
            started += 1
            seq += 1
            if reboots[c][i]:
                epoch[i] += 1
                outage = a.reboot_time.sample(rng)
                if rng.random() < fail_prob:
                    heapq.heappush(heap, (now + outage, seq, i, ROLLED_BACK, epoch[i]))
                    seq += 1
                    outage += a.reboot_time.sample(rng)
                up_at[i] = now + outage
                down += outage
                heapq.heappush(heap, (now + outage, seq, i, UPDATED, epoch[i]))
            else:
                outage = a.driver_restart_time.sample(rng)
                heapq.heappush(heap, (now + outage, seq, i, RESTARTED, epoch[i]))
            end = max(end, now + outage)
        if (k + 1) * size < len(hosts_in_scope):
            seq += 1
            heapq.heappush(heap, (end, seq, c, BATCH, k + 1))
        return started, down

    for i in range(n):
        arm(i, 0.0)
    for c, campaign in enumerate(campaigns):
        seq += 1
        heapq.heappush(heap, (campaign.start, seq, c, RELEASE, 0))
    while heap:
        now, _, i, kind, ep = heapq.heappop(heap)
        if now > horizon:
            break
        if kind < 0:
            if kind in (AGED, AGING_CRASH) and ep != epoch[i]:
                continue  # an aging clock of a host that rebooted since
            events += 1
            if kind == RELEASE:
                seq += 1
                heapq.heappush(heap, (now + campaigns[i].every, seq, i, RELEASE, 0))
            if kind in (RELEASE, BATCH):
                started, down = roll(i, ep, now)
                events += started
                down_hours += down
            elif kind == UPDATED:
                arm(i, now)
            elif kind == AGED:
                seq += 1
                failure = now + arch_cfg[i].aging.failure.sample(rng)
                heapq.heappush(heap, (failure, seq, i, AGING_CRASH, ep))
            elif kind == AGING_CRASH:
                crash(i, now, hardware=False)
            continue
        if ep != epoch[i]:
            continue  # a fault clock of a host that went down since
        events += 1
        if kind >= 3 and rng.random() >= arch_cfg[i].driver_fault_host_crash_prob:
            continue  # a contained driver fault
        crash(i, now, hardware=kind == 1)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "events": events, "hosts": n, "down_hours": down_hours,
            "crashes": crashes}  # fmt: skip


KINDS = ("twin", "floor", "floor+aging")


def _worker(kind: str, hosts: int, seed: int, scope: str, extra: Sequence[str]) -> None:
    if kind == "twin":
        result = run_twin(hosts, seed, scope, extra)
    else:
        result = run_floor(hosts, seed, scope, extra, aging=kind == "floor+aging")
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(kind: str, hosts: int, seed: int, scope: str, extra: Sequence[str] = ()) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--hosts", str(hosts), "--seed", str(seed),
           "--scope", scope, *(f"--set={kv}" for kv in extra)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


TARGET_HOSTS = 10_000
WALL_LIMIT_S = 20.0
RSS_LIMIT_MIB = 2048.0
SCALING_LIMIT = 12.0  # time(10,000) / time(1,000): linear with some slack
RATIO_LIMIT = 10.0


def target(name: str, value: float, op: str, limit: float) -> dict[str, Any]:
    """One target: ``value`` against ``limit`` with ``op`` (``<`` or ``<=``)."""
    met = value < limit if op == "<" else value <= limit
    return {"name": name, "value": value, "op": op, "limit": limit, "met": met}


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The performance issue's targets against the measured medians (rows by fleet size)."""
    smallest, largest = rows[0], rows[-1]
    at_target = next((r for r in rows if r["hosts"] == TARGET_HOSTS), None)
    timed = at_target or largest
    name = f"twin wall s, {timed['hosts']} hosts x 20 guests, 1 year"
    if at_target is None:
        name += f" (not the {TARGET_HOSTS}-host target)"
    found = [
        target(name, timed["twin"]["wall_s"], "<", WALL_LIMIT_S),
        target(
            f"twin peak RSS MiB, {largest['hosts']} hosts",
            largest["twin"]["peak_rss_mib"],
            "<",
            RSS_LIMIT_MIB,
        ),
    ]
    if largest["hosts"] > smallest["hosts"]:
        growth = largest["hosts"] / smallest["hosts"]
        found.append(
            target(
                f"time({largest['hosts']}) / time({smallest['hosts']}), "
                f"linear limit 12 x {growth:g} / 10",
                largest["twin"]["wall_s"] / smallest["twin"]["wall_s"],
                "<=",
                SCALING_LIMIT * growth / 10,
            )
        )
    for row in rows:
        name = f"twin/floor, {row['hosts']} hosts"
        found.append(target(name, row["ratio_twin_floor"], "<=", RATIO_LIMIT))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1_000, 5_000, 10_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scope", choices=list(SCOPES), default="operations",
                        help="operations: the default config, HA, live migration and update "
                        "campaigns on; core: fault and repair processes only")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key after scaling (e.g. horizon=2y)")  # fmt: skip
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.hosts[0], args.seed, args.scope, args.set)
        return 0
    sizes = sorted(set(args.hosts))
    runs: dict[str, dict[int, list[dict]]] = {k: {hosts: [] for hosts in sizes} for k in KINDS}
    # in rounds, each size once a round and each twin run next to its floor runs: the
    # machine's drift skews every size and every kind alike
    for seed in range(args.seed, args.seed + args.runs):
        for hosts in sizes:
            for kind in KINDS:
                runs[kind][hosts].append(measure(kind, hosts, seed, args.scope, args.set))
    rows = []
    for hosts in sizes:
        twin, floor, aging = (median_of(runs[kind][hosts]) for kind in KINDS)
        rows.append({"hosts": hosts, "twin": twin, "floor": floor, "floor+aging": aging,
                     "ratio_twin_floor": twin["wall_s"] / floor["wall_s"],
                     "ratio_twin_floor_aging": twin["wall_s"] / aging["wall_s"]})  # fmt: skip
    checked = targets(rows)
    if args.json:
        print(json.dumps({"scope": args.scope, "runs": args.runs, "rows": rows,
                          "targets": checked}, indent=2))  # fmt: skip
        return 0
    overrides = f"; overrides: {', '.join(args.set)} (the targets are for the default)"
    print(f"scope: {args.scope}; medians of {args.runs} run(s){overrides if args.set else ''}")
    print(f"{'hosts':>7} {'what':>6} {'wall s':>8} {'events':>10} {'events/s':>10} {'RSS MiB':>8}")
    for row in rows:
        for kind in KINDS:
            r = row[kind]
            print(f"{row['hosts']:>7} {kind:>6} {r['wall_s']:>8.2f} {r['events']:>10.0f} "
                  f"{r['events'] / r['wall_s']:>10.0f} {r['peak_rss_mib']:>8.0f}")  # fmt: skip
        print(f"{row['hosts']:>7} ratio twin/floor: {row['ratio_twin_floor']:.1f}; "
              f"twin/(floor+aging): {row['ratio_twin_floor_aging']:.1f}")  # fmt: skip
    print("targets:")
    for t in checked:
        verdict = "met" if t["met"] else "NOT met"
        print(f"  {t['name']}: {t['value']:.2f} (limit {t['op']} {t['limit']:g}) {verdict}")
    if len(rows) == 1:
        print("  time(largest) / time(smallest): needs two fleet sizes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
