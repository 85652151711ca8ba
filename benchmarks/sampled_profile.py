"""Profile: where one fleet-year of `fleet_year.py`'s twin spends its CPU, by sampling.

    python benchmarks/sampled_profile.py [--hosts 10000] [--seed 1] [--every-ms 2] [--top 40]

Every ``--every-ms`` of CPU time (``SIGPROF``) the running Python stack is read: a
function's *self* share is how often it was on top, its *cumulative* share how often it
was anywhere on the stack; time in C (numpy, ``heapq``) counts for the Python function
that called it. Unlike ``cProfile``, which charges a fixed cost to every call, C calls
included, and so inflates code made of many small calls, sampling leaves the run's speed
and its proportions as they are. Building the fleet counts, as in the benchmark.
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_year import fleet_config  # puts this checkout first on the path

Key = tuple[str, str]


def _key(frame: FrameType) -> Key:
    return Path(frame.f_code.co_filename).name, frame.f_code.co_qualname


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every-ms", type=float, default=2.0)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    from twin.fleet import Fleet

    own: collections.Counter[Key] = collections.Counter()
    anywhere: collections.Counter[Key] = collections.Counter()

    def sample(_signum: int, frame: FrameType | None) -> None:
        if frame is None:
            return
        own[_key(frame)] += 1
        seen: set[Key] = set()
        while frame is not None:
            seen.add(_key(frame))
            frame = frame.f_back
        anywhere.update(seen)

    config = fleet_config(args.hosts, "operations")
    signal.signal(signal.SIGPROF, sample)
    every = args.every_ms / 1000
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_PROF, every, every)
    fleet = Fleet(config, np.random.SeedSequence(args.seed), record_events=False)
    fleet.run()
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    wall = time.perf_counter() - start
    total = sum(own.values())
    print(f"{args.hosts} hosts, seed {args.seed}: {wall:.2f} s, "
          f"{fleet.events_processed} events, {total} samples")  # fmt: skip
    for title, counts in (("self", own), ("cumulative", anywhere)):
        print(f"--- {title}")
        for (file, name), n in counts.most_common(args.top):
            print(f"{100 * n / total:6.2f} %  {file}:{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
