"""A hypervisor host: its state machine, its fault clocks and what it does with a fault.

What a fault *means* comes from the architecture's behaviour table
(`twin.architectures`); the host only carries it out. Every state change ends
in `Host.refresh`, the single place where the host's contribution to the
fleet's availability levels is recomputed, so accounting is exact by
construction.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import mesa

from twin.architectures import BEHAVIOURS, Behaviour, FaultEffect, driver_fault_effect
from twin.config.schema import ArchitectureConfig

if TYPE_CHECKING:
    from mesa.time import Event

    from twin.agents.driver import Driver
    from twin.agents.guest import Guest
    from twin.fleet import Fleet
    from twin.metrics import Incident


class HostState(StrEnum):
    RUNNING = "running"
    DEGRADED = "degraded"
    DRAINING = "draining"
    MAINTENANCE = "maintenance"
    REBOOTING = "rebooting"
    CRASHED = "crashed"
    HW_FAILED = "hw_failed"


UP_STATES = frozenset({HostState.RUNNING, HostState.DEGRADED, HostState.DRAINING})


class Host(mesa.Agent):
    """One physical server running a hypervisor of a given architecture."""

    model: Fleet

    def __init__(
        self,
        model: Fleet,
        name: str,
        index: int,
        rack: str,
        pod: str,
        architecture: str,
        cpu: float,
        memory_gb: float,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.index = index
        self.rack = rack
        self.pod = pod
        self.cpu = cpu
        self.memory_gb = memory_gb
        self.state = HostState.RUNNING
        self.cause: str | None = None
        self.powered = True
        self.reachable = True
        self.guests_booted = True
        self.guests: list[Guest] = []
        self.drivers: list[Driver] = []
        self.open_incidents: set[Incident] = set()
        self._clocks: list[Event] = []
        self._timers: list[Event] = []
        self._degradations = 0
        self._escalating = False
        self._waiting_for_power = False
        self._counted: dict[str, float] = {}
        self.set_architecture(architecture)

    # -- identity -------------------------------------------------------------------------

    def set_architecture(self, architecture: str) -> None:
        """Take on an architecture (at build time, or when converted by a scenario)."""
        self.architecture = architecture
        self.behaviour: Behaviour = BEHAVIOURS[architecture]
        self.arch: ArchitectureConfig = self.model.config.architectures.get(architecture)

    @property
    def is_up(self) -> bool:
        return self.state in UP_STATES

    @property
    def serving(self) -> bool:
        """Up, reachable and with its guests booted: its guests are available."""
        return self.state in UP_STATES and self.reachable and self.guests_booted

    @property
    def cpu_used(self) -> float:
        return sum(g.cpu for g in self.guests)

    @property
    def memory_used(self) -> float:
        return sum(g.memory_gb for g in self.guests)

    def __repr__(self) -> str:
        return f"Host({self.name}, {self.architecture}, {self.state})"

    # -- fault clocks ---------------------------------------------------------------------

    def start_clocks(self) -> None:
        """Arm the host's fault processes; they run only while the host is up."""
        model = self.model
        self._clocks = [
            e
            for e in (
                model.after(self.arch.hypervisor_fault, self._on_hypervisor_fault),
                model.after(model.config.hardware.fault, self._on_hardware_fault),
                model.after(self.arch.parent_os_fault, self._on_parent_os_fault)
                if self.behaviour.has_parent_os
                else None,
            )
            if e is not None
        ]
        for driver in self.drivers:
            driver.start_clock()

    def stop_clocks(self) -> None:
        for event in self._clocks:
            event.cancel()
        self._clocks = []
        for driver in self.drivers:
            driver.stop_clock()

    def _cancel_timers(self) -> None:
        for event in self._timers:
            event.cancel()
        self._timers = []

    def _on_hypervisor_fault(self) -> None:
        self.crash("hypervisor")

    def _on_parent_os_fault(self) -> None:
        self.crash("parent_os")

    def _on_hardware_fault(self) -> None:
        self.fail_hardware()

    # -- what faults do -------------------------------------------------------------------

    def on_driver_fault(self, driver: Driver) -> FaultEffect:
        """A driver faulted: the architecture's table says whether it crashes, escalates,
        degrades the host or only resets the driver."""
        model = self.model
        severe = model.rng.random() < self.arch.driver_fault_host_crash_prob
        grace = model.sample(self.arch.escalation_grace) if severe else 0.0
        effect = driver_fault_effect(self.behaviour, severe, grace)
        if effect is FaultEffect.HOST_CRASH:
            self.crash("driver")
        elif effect is FaultEffect.ESCALATION:
            self.escalate(grace)
        elif effect is FaultEffect.SERVICE_RESTART:
            self.degrade(driver.restart_time)
        model.log(driver.name, "up", effect.value, "driver")
        return effect

    def crash(self, cause: str) -> None:
        """The host panics: down at once with its guests; after detection a ticket opens,
        or the host reboots by itself when the architecture auto-reboots."""
        if not self.is_up:
            return
        model = self.model
        self.go_down(HostState.CRASHED, cause, model.open_incident(cause))
        self._timers.append(model.after(self.arch.crash_detection, self._on_crash_detected))

    def _on_crash_detected(self) -> None:
        if self.arch.crash_auto_reboot:
            self.begin_reboot()
        else:
            self.model.operators.request_reboot(self)

    def fail_hardware(self) -> None:
        """A hardware fault: down at once, and a repair ticket opens at once."""
        if not self.is_up:
            return
        self.go_down(HostState.HW_FAILED, "hardware", self.model.open_incident("hardware"))
        self.model.operators.request_hardware_repair(self)

    def degrade(self, duration: float) -> None:
        """A parent-partition service restarts: guests stay up, I/O stalls for ``duration``."""
        self._degradations += 1
        self._set_state(HostState.DEGRADED, "driver")
        self._timers.append(self.model.after_hours(duration, self._end_degradation))

    def _end_degradation(self) -> None:
        self._degradations -= 1
        self._settle()

    def escalate(self, grace: float) -> None:
        """An escalated driver fault: degraded for the grace window, then a forced reboot."""
        self._escalating = True
        self._set_state(HostState.DEGRADED, "driver")
        self._timers.append(self.model.after_hours(grace, self._on_grace_over))

    def _on_grace_over(self) -> None:
        self.go_down(HostState.REBOOTING, "driver", self.model.open_incident("driver"))
        self.begin_reboot()

    def _settle(self) -> None:
        """Back to running once no degradation or escalation is pending."""
        if self.is_up and self._degradations <= 0 and not self._escalating:
            self._set_state(HostState.RUNNING, None)

    # -- going down and coming back -------------------------------------------------------

    def go_down(self, state: HostState, cause: str, incident: Incident) -> None:
        """Take the host (and its guests) down; the incident records what was lost."""
        was_up = self.is_up
        serving_before = self._counted.get("guests_up", 0.0)
        self.stop_clocks()
        self._cancel_timers()
        self._degradations = 0
        self._escalating = False
        self.guests_booted = False
        self._set_state(state, cause)
        lost = int(serving_before - self._counted.get("guests_up", 0.0))
        incident.touch(self, lost, was_up)
        self.model.commit_incident(incident)

    def begin_reboot(self, duration: float | None = None) -> float:
        """Reboot now (``duration`` hours, sampled when not given); a host without power
        waits for it. Returns the reboot duration."""
        if duration is None:
            duration = self.model.sample(self.arch.reboot_time)
        self._cancel_timers()
        if not self.powered:
            self._waiting_for_power = True
            self._set_state(HostState.CRASHED, "power")
            return duration
        self._set_state(HostState.REBOOTING, self.cause)
        self._timers.append(self.model.after_hours(duration, self._on_reboot_done))
        return duration

    def _on_reboot_done(self) -> None:
        self._timers = []
        self._set_state(HostState.RUNNING, None)
        self.start_clocks()
        self._timers.append(self.model.after(self.model.config.guests.boot_time, self._on_booted))

    def _on_booted(self) -> None:
        self.guests_booted = True
        self.refresh()

    def lose_power(self, incident: Incident) -> None:
        """Its last live power feed failed: down at once; it boots by itself on return."""
        self.powered = False
        if self.is_up:
            self.go_down(HostState.CRASHED, "power", incident)
            self._waiting_for_power = True
        elif self.state is HostState.REBOOTING:
            self._cancel_timers()
            self._waiting_for_power = True
            self._set_state(HostState.CRASHED, "power")

    def regain_power(self) -> None:
        self.powered = True
        if self._waiting_for_power:
            self._waiting_for_power = False
            self.begin_reboot()

    def set_reachable(self, reachable: bool, incident: Incident | None = None) -> None:
        """A switch on its path changed state."""
        before = self._counted.get("guests_up", 0.0)
        self.reachable = reachable
        self.refresh()
        if incident is not None:
            incident.touch(self, int(before - self._counted.get("guests_up", 0.0)), False)

    # -- accounting -----------------------------------------------------------------------

    def _set_state(self, state: HostState, cause: str | None) -> None:
        if state is not self.state:
            self.model.log(self.name, self.state.value, state.value, cause)
            self.state = state
        self.cause = cause
        self.refresh()

    def refresh(self) -> None:
        """Recompute this host's share of the fleet's levels and settle its incidents."""
        serving = self.serving
        n_guests = len(self.guests)
        io = 1.0 - self.arch.io_overhead
        up = n_guests if serving else 0
        planned = (n_guests - up) if self.cause == "update" else 0
        levels = {
            "hosts": 1.0,
            "guests": float(n_guests),
            "hosts_up": 1.0 if self.is_up else 0.0,
            "hosts_degraded": 1.0 if self.state is HostState.DEGRADED else 0.0,
            "guests_up": float(up),
            "capacity": up * io,
            "guests_down_planned": float(planned),
        }
        model = self.model
        counted = self._counted
        if counted and counted.get("guests_up", 0.0) != up:  # empty only when first counted
            model.log_guests(self, up > 0)
        for quantity, value in levels.items():
            delta = value - counted.get(quantity, 0.0)
            if delta:
                model.ledger.add(quantity, self.architecture, delta, model.time)
                counted[quantity] = value
        if serving and self.open_incidents:
            for incident in self.open_incidents:
                incident.release(self, model.time)
            self.open_incidents.clear()

    def withdraw(self) -> None:
        """Remove this host's contribution from the levels (before an architecture change)."""
        model = self.model
        for quantity, value in self._counted.items():
            model.ledger.add(quantity, self.architecture, -value, model.time)
        self._counted = {}
