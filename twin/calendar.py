"""The fleet's own calendar: the pending calls of its processes, in time order.

Every fault clock, repair, reboot and move of the fleet is one `Timer` here. Mesa's
`Event` is built for a few scheduled calls (weak references to the callback, a Python
``__lt__`` for every heap comparison); a fleet-year of 10,000 hosts schedules about two
million. A calendar entry is a plain tuple ``(time, seq, timer)``, so the heap compares
in C, and the timer holds its callback strongly, so cancelling one is dropping it.

`Fleet._advance_time` runs this calendar and Mesa's event list as one: Mesa's list
still carries what is scheduled through Mesa's API (time-series sampling, anything a
notebook or the dashboard schedules), and `run_until` / `run_for` drive both.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import math
from collections.abc import Callable, Iterator

Entry = tuple[float, int, "Timer"]


class Timer:
    """A call pending on the calendar; `cancel` it to drop it before it fires."""

    __slots__ = ("calendar", "fn", "time")

    def __init__(self, calendar: Calendar, time: float, fn: Callable[[], None]) -> None:
        self.calendar = calendar
        self.time = time
        self.fn: Callable[[], None] | None = fn

    @property
    def pending(self) -> bool:
        """Neither fired nor cancelled yet."""
        return self.fn is not None

    def cancel(self) -> None:
        if self.fn is not None:
            self.fn = None
            self.calendar.cancelled += 1


BUCKET_HOURS = 24.0


class Calendar:
    """Timers earliest first; timers due at the same time fire in the order they were
    scheduled.

    Only the timers due before ``edge`` are on the heap; later ones wait unsorted in
    buckets of `BUCKET_HOURS`, and a bucket joins the heap when the heap runs out
    (`refill`). Most pending timers are fault clocks months ahead; kept off the heap, they
    leave it small (and in the cache) however large the fleet. A cancelled timer stays
    where it is and is dropped when its turn, or its bucket's, comes.
    """

    def __init__(self) -> None:
        self.heap: list[Entry] = []  # (time, seq, timer) due before `edge`, a heapq
        self.edge = 0.0
        self.cancelled = 0  # cancelled timers not dropped yet
        self._buckets: dict[int, list[Entry]] = {}  # later timers, by bucket number
        self._later: list[int] = []  # a heap of the bucket numbers
        self._seq = itertools.count()

    def schedule(self, time: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(self, time, fn)
        entry = (time, next(self._seq), timer)
        if time < self.edge:
            heapq.heappush(self.heap, entry)
        else:
            bucket = int(time // BUCKET_HOURS)
            waiting = self._buckets.get(bucket)
            if waiting is None:
                self._buckets[bucket] = [entry]
                heapq.heappush(self._later, bucket)
            else:
                waiting.append(entry)
        return timer

    def refill(self) -> bool:
        """The heap has run out: move the next bucket onto it. False when none is left."""
        while self._later:
            bucket = heapq.heappop(self._later)
            entries = self._buckets.pop(bucket)
            live = [entry for entry in entries if entry[2].fn is not None]
            self.cancelled -= len(entries) - len(live)
            self.edge = (bucket + 1) * BUCKET_HOURS
            if live:
                self.heap.extend(live)
                heapq.heapify(self.heap)
                return True
        return False

    def next_time(self) -> float:
        """When the next live timer fires (infinity when none is pending)."""
        heap = self.heap
        while True:
            while heap and heap[0][2].fn is None:
                heapq.heappop(heap)
                self.cancelled -= 1
            if heap:
                return heap[0][0]
            if not self.refill():
                return math.inf

    def pop(self) -> Timer:
        """Take the next live timer off the calendar (`next_time` must be finite)."""
        self.next_time()
        return heapq.heappop(self.heap)[2]

    def __len__(self) -> int:
        waiting = sum(len(entries) for entries in self._buckets.values())
        return len(self.heap) + waiting - self.cancelled


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the fleet is built or run.

    A large fleet holds millions of long-lived objects (hosts, guests, drivers, pending
    timers) and makes millions of short-lived ones; each collection of the older
    generations walks all of them, which cost a third of a fleet-year's run time at
    10,000 hosts. The fleet's garbage is freed by reference counting (a fleet-year
    leaves a handful of cycles behind), so the collector only resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
