"""A device driver on a host: its version, its fault process and regressions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from twin.architectures import (
    DRIVER_FAULT_PROBABILITIES,
    FaultEffect,
    driver_fault_outcome,
    with_grace,
)
from twin.config import Distribution
from twin.vocabulary import Cause

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin.agents.host import Host
    from twin.engine import Timer
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
            self.host.clocks.arm(self.fail, due)

    def draw_fault(self) -> float | None:
        """(Re)start the fault clock: when the next fault is due (None: it never is). The
        host arms its timer for it (`FaultClocks.arm`), replacing any earlier due time."""
        self.halt()
        if self.fault.never:
            return None
        self.armed = True
        return self.model.engine.now + self.model.draws.sample(self.fault) / self.fault_multiplier

    def stop_clock(self) -> None:
        if self.armed:
            self.host.clocks.disarm(self.fail)
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
        restart = self.model.draws.sample(self.host.arch.driver_restart_time)
        self._hit_host(restart)
        if self.host.is_up and not self.armed and self._restart is None:
            self._restart = self.model.engine.schedule(self._resume, after=restart)

    def _hit_host(self, restart: float) -> FaultEffect:
        """What the fault does to the host: the architecture's table says whether it
        crashes, escalates, degrades the host (for ``restart`` hours) or only resets the
        driver; `DRIVER_FAULT_VERBS` carries it out.

        Draw order (part of the model): the restart time (by the caller), then one uniform
        draw for the outcome (crash below ``driver_fault_host_crash_prob``, escalation
        below that plus ``driver_fault_escalation_prob``, else contained), then the grace
        window only for an escalation."""
        host, draws = self.host, self.model.draws
        arch = host.arch
        probabilities = {key: getattr(arch, key) for key in DRIVER_FAULT_PROBABILITIES}
        effect = driver_fault_outcome(host.behaviour, probabilities, draws.uniform())
        grace = draws.sample(arch.escalation_grace) if effect is FaultEffect.ESCALATION else 0.0
        effect = with_grace(effect, grace)
        DRIVER_FAULT_VERBS[effect](host, grace, restart)
        if self.model.log.enabled:
            self.model.log.state(self.name, "up", effect.value, Cause.DRIVER)
        return effect

    def _resume(self) -> None:
        self._restart = None
        self.start_clock()

    def install(self, version: int, fault_multiplier: float = 1.0) -> None:
        """Replace the driver (an update or a buggy release); re-arm its clock if running."""
        self.version = version
        self.fault_multiplier = fault_multiplier
        if self.armed or self._restart is not None:
            self.start_clock()


DRIVER_FAULT_VERBS: dict[FaultEffect, Callable[[Host, float, float], None]] = {
    FaultEffect.HOST_CRASH: lambda host, grace, restart: host.crash(Cause.DRIVER),
    FaultEffect.ESCALATION: lambda host, grace, restart: host.escalate(grace),
    FaultEffect.SERVICE_RESTART: lambda host, grace, restart: host.degrade(restart),
    FaultEffect.DRIVER_RESET: lambda host, grace, restart: None,
}
"""The verb that carries out each outcome of a driver fault (the table says which)."""
