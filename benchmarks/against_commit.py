"""Benchmark: this checkout's twin against another commit's, in the same run.

    python benchmarks/against_commit.py REF [--hosts 1000 5000] [--rounds 5] [--json]

Checks ``REF`` out into a temporary git worktree and runs `fleet_year.py`'s twin worker
(one simulated year of the default mixed config, HA, live migration and campaigns on) for
both checkouts, alternating them within each round so that the machine's drift (up to 2x
minute to minute here) falls on both alike. Reports each size's median wall time of each
side and the median of the per-round ratios (this / REF): below 1 is faster. Each worker
imports its own checkout's ``twin``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(checkout: Path, hosts: int, seed: int) -> dict:
    script = checkout / "benchmarks" / "fleet_year.py"
    cmd = [sys.executable, str(script), "--worker", "twin", "--hosts", str(hosts),
           "--seed", str(seed), "--scope", "operations"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=checkout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", help="the commit to compare against (e.g. HEAD~3, a sha)")
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(other), args.ref],
                       cwd=ROOT, check=True)  # fmt: skip
        try:
            rows = {h: {"this": [], "ref": [], "ratio": [], "events": None} for h in args.hosts}
            for r in range(args.rounds):
                for hosts in args.hosts:
                    order = [("this", ROOT), ("ref", other)]
                    if r % 2:
                        order.reverse()
                    walls = {}
                    for name, checkout in order:
                        result = worker(checkout, hosts, seed=1 + r % 3)
                        walls[name] = result["wall_s"]
                        rows[hosts]["events"] = result["events"]
                    rows[hosts]["this"].append(walls["this"])
                    rows[hosts]["ref"].append(walls["ref"])
                    rows[hosts]["ratio"].append(walls["this"] / walls["ref"])
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT)
    summary = {
        str(hosts): {
            "this_s": statistics.median(row["this"]),
            "ref_s": statistics.median(row["ref"]),
            "ratio_median": statistics.median(row["ratio"]),
            "ratios": [round(x, 3) for x in row["ratio"]],
        }
        for hosts, row in rows.items()
    }
    if args.json:
        print(json.dumps({"ref": args.ref, "rounds": args.rounds, "sizes": summary}))
        return
    print(f"this checkout against {args.ref}, {args.rounds} rounds (median; ratio = this/ref)")
    for hosts, s in summary.items():
        print(f"  {hosts:>6} hosts: this {s['this_s']:.2f} s, ref {s['ref_s']:.2f} s, "
              f"ratio {s['ratio_median']:.3f}  (rounds: {s['ratios']})")  # fmt: skip


if __name__ == "__main__":
    main()
