"""Which events a fleet-year of `fleet_year.py`'s twin is made of, by the callback each
timer calls, beside the floor's event count for the same fleet and seed.

    python benchmarks/event_kinds.py [--hosts 10000] [--seed 1]

Counts the timers scheduled on the engine's calendar (by the qualified name of the call
each one makes; a timer cancelled before it fires counts too) and the events the engine
processed. What it says: the floor folds a crash's detection, response, reboot and repair
into one sum and re-arms the host's clocks, while the twin's crash is a chain of events
(detection, HA restart, the restarted guests' boot, the reboot's end), each touching
agents, guests and books.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_year import fleet_config, run_floor  # puts this checkout first on the path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    from twin import engine
    from twin.fleet import Fleet

    counts: collections.Counter[str] = collections.Counter()
    schedule = engine.Calendar.schedule

    def counted(calendar: engine.Calendar, time: float, fn):  # type: ignore[no-untyped-def]
        counts[getattr(fn, "__qualname__", type(fn).__name__)] += 1
        return schedule(calendar, time, fn)

    engine.Calendar.schedule = counted  # type: ignore[method-assign]
    try:
        config = fleet_config(args.hosts, "operations")
        fleet = Fleet(config, np.random.SeedSequence(args.seed), record_events=False)
        fleet.run()
    finally:
        engine.Calendar.schedule = schedule  # type: ignore[method-assign]
    floor = run_floor(args.hosts, args.seed, "operations")
    aging = run_floor(args.hosts, args.seed, "operations", aging=True)
    print(f"{args.hosts} hosts, seed {args.seed}: the twin processed "
          f"{fleet.events_processed:,} events; floor {floor['events']:,}, floor+aging "
          f"{aging['events']:,} (host crashes, each counted as 2 events: floor "
          f"{floor['crashes']:,}, floor+aging {aging['crashes']:,})")  # fmt: skip
    print(f"{'timers':>10}  call")
    for name, n in counts.most_common():
        print(f"{n:>10,}  {name}")
    print(f"{sum(counts.values()):>10,}  scheduled in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
