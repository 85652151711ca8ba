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


class Calendar:
    """A heap of timers, earliest first; timers due at the same time fire in the order
    they were scheduled.

    A cancelled timer stays in the heap until its time comes (removing it would cost a
    search); once cancelled ones are most of the heap (a host that reboots cancels its
    fault clocks, most of them due months ahead), the heap is rebuilt without them.
    """

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Timer]] = []  # (time, seq, timer), a heapq
        self.cancelled = 0  # cancelled timers still in the heap
        self._seq = itertools.count()

    def schedule(self, time: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(self, time, fn)
        heapq.heappush(self.heap, (time, next(self._seq), timer))
        if self.cancelled > 4096 and 2 * self.cancelled > len(self.heap):
            self.compact()
        return timer

    def compact(self) -> None:
        """Drop the cancelled timers from the heap."""
        self.heap[:] = [entry for entry in self.heap if entry[2].fn is not None]
        heapq.heapify(self.heap)
        self.cancelled = 0

    def next_time(self) -> float:
        """When the next live timer fires (infinity when none is pending)."""
        heap = self.heap
        while heap and heap[0][2].fn is None:
            heapq.heappop(heap)
            self.cancelled -= 1
        return heap[0][0] if heap else math.inf

    def __len__(self) -> int:
        return len(self.heap) - self.cancelled


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
