"""A host's competing fault clocks.

Every fault process of a host (hypervisor, hardware, parent OS, each driver, each guest's
device-emulation process) is *due* at some time; one timer waits for the earliest. A
host that goes down drops one timer instead of one per process, and a contained driver
fault re-arms only that driver's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.agents.host import Host
    from twin.config.distributions import Distribution
    from twin.engine import Timer

Fire = Callable[[], None]


class FaultClocks:
    """When each of one host's fault processes fires next, and the one timer for the
    earliest. Clocks run only while the host is up."""

    __slots__ = ("due", "host", "timer")

    def __init__(self, host: Host) -> None:
        self.host = host
        self.due: dict[Fire, float] = {}
        self.timer: Timer | None = None

    def start(self, sources: Iterable[tuple[Fire, Distribution]]) -> dict[Fire, float]:
        """Draw every source afresh (``fire`` is called when it is due). Returns the due
        times, to which more may be added before `rearm` sets the timer."""
        model = self.host.model
        now, sample = model.engine.now, model.draws.sample
        self.due = {fire: now + sample(dist) for fire, dist in sources}
        return self.due

    def arm(self, fire: Fire, at: float) -> None:
        """A clock (re)starts while the others run: ``fire`` is due at ``at``."""
        self.due[fire] = at
        timer = self.timer
        if timer is None:  # none set (or a clock firing now arms another): the earliest
            self.timer = self.host.model.engine.schedule(self._on_due, at=min(self.due.values()))
        elif at < timer.time:
            timer.cancel()
            self.timer = self.host.model.engine.schedule(self._on_due, at=at)

    def disarm(self, fire: Fire) -> None:
        """A clock stops (the timer, if it was the earliest, finds nothing due)."""
        self.due.pop(fire, None)

    def stop(self) -> None:
        """Every clock stops (the host went down)."""
        self.due.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def rearm(self) -> None:
        """One timer, at the earliest clock."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.due:
            at = min(self.due.values())
            self.timer = self.host.model.engine.schedule(self._on_due, at=at)

    def _on_due(self) -> None:
        self.timer = None
        due = self.due
        if not due:
            return
        fire = min(due, key=due.__getitem__)
        if due[fire] <= self.host.model.engine.now:
            del due[fire]
            fire()
        if self.host.is_up and self.timer is None:
            self.rearm()
