"""The engine: the fleet's clock and calendar, behind a small public interface.

Domain code sees four things: `Engine.now`, `Engine.schedule` (at a time, or after some
hours) which returns a `Timer`, `Engine.cancel` (or `Timer.cancel`), and
`Engine.run_until`. Everything else here is how that is made fast, and it is the only
module of the twin that touches Mesa's internals.

Why a calendar of its own: Mesa's `Event` is built for a few scheduled calls (a weak
reference to the callback, a Python ``__lt__`` for every heap comparison); a fleet-year of
10,000 hosts schedules about two million. A calendar entry here is a plain tuple
``(time, seq, timer)``, so the heap compares in C, and the timer holds its callback
strongly, so cancelling one is dropping it.

Mesa's own event list still carries what is scheduled through Mesa's public API
(``Model.schedule_event``, ``schedule_recurring``: time-series sampling, anything a notebook
or the dashboard schedules). `EventDrivenModel` runs the two as one, earliest first and
Mesa's first on a tie, whenever Mesa's ``run_until`` / ``run_for`` advance the model.

Relies on Mesa 3.5 (``mesa>=3.5,<3.6`` in ``pyproject.toml``): ``Model._advance_time`` (the
loop ``run_until`` and ``run_for`` call), ``Model._event_list._events`` (its heap of
``Event``, each with ``time``, ``CANCELED`` and ``execute``), ``Model._default_schedule`` (the
one-per-hour step, stopped: the twin has no tick), and ``Model._time`` with
``_has_subscribers`` (the clock is an observable; with no subscriber its slot is set
directly). A test (`tests/test_engine.py`) runs the same timers on this engine and on a
plain reference loop over Mesa's public ``schedule_event``, and checks they agree.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import mesa
from mesa.experimental.mesa_signals import ObservableSignals

from twin.draws import Draws

if TYPE_CHECKING:
    from twin.config.distributions import Distribution

Entry = tuple[float, int, "Timer"]
BUCKET_HOURS = 24.0


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


class Engine:
    """The clock and calendar of one `EventDrivenModel`.

    ``schedule(fn, at=t)`` or ``schedule(fn, after=h)`` puts a call on the calendar and
    returns its `Timer`; ``after(dist, fn)`` does so after one draw of a duration
    distribution (nothing when the process is ``never``).
    """

    __slots__ = ("_model", "calendar", "draws", "events_processed", "now")

    def __init__(self, model: EventDrivenModel, draws: Draws) -> None:
        self._model = model
        self.calendar = Calendar()
        self.draws = draws
        self.events_processed = 0
        self.now: float = model.time
        """The simulation time in hours: a plain attribute, set with Mesa's clock whenever
        the engine moves it (reading Mesa's observable costs a call: domain code reads the
        clock at nearly every step)."""

    def schedule(
        self, fn: Callable[[], None], *, at: float | None = None, after: float | None = None
    ) -> Timer:
        """Call ``fn`` at time ``at``, or ``after`` hours (>= 0) from now."""
        if (at is None) == (after is None):
            raise ValueError("give exactly one of at= and after=")
        return self.calendar.schedule(self.now + after if at is None else at, fn)

    def after(self, dist: Distribution, fn: Callable[[], None]) -> Timer | None:
        """Call ``fn`` after a draw of ``dist``; nothing when the process is ``never``."""
        if dist.never:
            return None
        return self.calendar.schedule(self.now + self.draws.sample(dist), fn)

    @staticmethod
    def cancel(timer: Timer | None) -> None:
        """Drop a pending call (a fired or cancelled one, or None, is left alone)."""
        if timer is not None:
            timer.cancel()

    def run_until(self, until: float) -> None:
        """Advance the model to ``until`` (Mesa's ``run_until``)."""
        self._model.run_until(until)

    def advance(self, until: float) -> None:
        """Run the calendar and Mesa's event list as one up to ``until`` (inclusive).

        The fleet's timers run in a tight loop up to Mesa's next event; a callback that
        puts an earlier event on Mesa's list ends that run, and the two merge again.
        """
        model = self._model
        with cyclic_gc_paused():
            self._run(model, until)
        model.time = self.now = max(model.time, until)

    def _run(self, model: EventDrivenModel, until: float) -> None:
        calendar = self.calendar
        heap = calendar.heap  # refilled in place: the same list throughout
        mesa_events = model._event_list._events  # Mesa's heap: its peek_ahead scans it all
        pop = heapq.heappop
        fired = 0
        while True:
            while mesa_events and mesa_events[0].CANCELED:
                pop(mesa_events)
            mesa_head = mesa_events[0] if mesa_events else None
            mesa_next = mesa_head.time if mesa_head is not None else math.inf
            # Mesa's `time` is an observable: setting it checks for subscribers each time.
            # With none (checked again at each of Mesa's events), set its slot directly.
            observed = model._has_subscribers("time", ObservableSignals.CHANGED)
            stop = min(mesa_next, math.nextafter(until, math.inf))  # timers due before
            while heap or calendar.refill():
                time, _, timer = heap[0]
                fn = timer.fn
                if fn is None:  # cancelled: dropped here as `Calendar.next_time` does
                    pop(heap)
                    calendar.cancelled -= 1
                    continue
                if time >= stop:
                    break
                pop(heap)
                timer.fn = None
                if observed:
                    model.time = time
                else:
                    model._time = time
                self.now = time
                fn()
                fired += 1
                if mesa_events and mesa_events[0] is not mesa_head:
                    break  # a callback put something on Mesa's list: merge again
            if mesa_events and mesa_events[0] is not mesa_head:
                continue
            if mesa_next > until:
                break
            event = pop(mesa_events)
            model.time = self.now = event.time
            event.execute()
            fired += 1
        self.events_processed += fired


class EventDrivenModel(mesa.Model):
    """A `mesa.Model` with no tick, advanced event by event on its `Engine`.

    Mesa's ``run_until`` / ``run_for`` drive it (through the engine); Mesa's
    ``schedule_event`` and ``schedule_recurring`` work as on any model.
    """

    def __init__(self, rng: Any = None) -> None:
        super().__init__(rng=rng)
        self._default_schedule.stop()  # Mesa 3.5 has no public switch for its default step
        self.draws = Draws(self.rng)
        self.engine = Engine(self, self.draws)

    def _advance_time(self, until: float) -> None:
        self.engine.advance(until)


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
