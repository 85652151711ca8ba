"""A device driver on a host: its version, its fault process and regressions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from twin.config import Distribution

if TYPE_CHECKING:
    from twin.agents.host import Host
    from twin.calendar import Timer
    from twin.fleet import Fleet


class Driver(mesa.Agent):
    """One driver type (nic, storage, gpu, ...) installed on one host.

    Its fault clock runs while the host is up. A regression multiplies its fault
    rate (divides the time to the next fault) until the next update replaces it.
    """

    model: Fleet

    def __init__(self, model: Fleet, host: Host, kind: str, fault: Distribution) -> None:
        super().__init__(model)
        self.host = host
        self.kind = kind
        self.name = f"{host.name}/{kind}"
        self.fault = fault
        self.version = 0
        self.fault_multiplier = 1.0
        self.armed = False  # its fault clock runs (on the host's competing clocks)
        self._restart: Timer | None = None  # the clock is paused while the driver restarts

    def start_clock(self) -> None:
        due = self.draw_fault()
        if due is not None:
            self.host.arm_fault(self.fail, due)

    def draw_fault(self) -> float | None:
        """(Re)start the fault clock: when the next fault is due (None: it never is). The
        host arms its timer for it (`Host.arm_fault`), replacing any earlier due time."""
        self.halt()
        if self.fault.never:
            return None
        self.armed = True
        return self.model.now + self.model.sample(self.fault) / self.fault_multiplier

    def stop_clock(self) -> None:
        if self.armed:
            self.host.disarm_fault(self.fail)
        self.halt()

    def halt(self) -> None:
        """The clock stops (the host forgets its due time itself, or replaces it)."""
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        self.armed = False

    def fail(self) -> None:
        """The driver faults now; what that does depends on the host's architecture."""
        self.stop_clock()
        # One restart: the host is degraded, and this driver's clock paused, for as long.
        restart = self.model.sample(self.host.arch.driver_restart_time)
        self.host.on_driver_fault(self, restart)
        if self.host.is_up and not self.armed and self._restart is None:
            self._restart = self.model.after_hours(restart, self._resume)

    def _resume(self) -> None:
        self._restart = None
        self.start_clock()

    def install(self, version: int, fault_multiplier: float = 1.0) -> None:
        """Replace the driver (an update or a buggy release); re-arm its clock if running."""
        self.version = version
        self.fault_multiplier = fault_multiplier
        if self.armed or self._restart is not None:
            self.start_clock()
