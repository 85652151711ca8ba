"""A hypervisor host: its state machine and what it does with a fault.

What a fault, an update or a reboot *means* comes from the architecture's behaviour
table (`twin.architectures`); the host looks up the verb that carries it out. Its fault
processes compete on one timer (`FaultClocks`), its cpu and memory are held in the
fleet's `Capacity`, and its share of the fleet's availability levels is booked by its
`HostShare`: every state change ends in `Host.refresh`, which books a change of status,
and every change of guest counts is booked where it happens, so accounting is exact by
construction.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import mesa

from twin.accounting import GUESTS_UP, HostShare
from twin.agents.clocks import FaultClocks
from twin.agents.host_state import RUNNING_STATES, STATE_FLAGS, UP_STATES, HostState  # noqa: F401
from twin.agents.links import Links
from twin.agents.tenancy import Tenancy
from twin.architectures import BEHAVIOURS, Behaviour
from twin.config.schema import ArchitectureConfig
from twin.processes.aging import Aging
from twin.processes.migration import Evacuation
from twin.vocabulary import PLANNED_CAUSES, Cause

if TYPE_CHECKING:
    from twin.accounting import Incident
    from twin.agents.driver import Driver
    from twin.engine import Timer
    from twin.fleet import Fleet
    from twin.processes.updates import UpdateJob


class Host(Links, Tenancy, mesa.Agent):
    """One physical server running a hypervisor of a given architecture."""

    # Slots keep a host's state in the object itself: with more than 30 attributes an
    # instance dict no longer shares its keys, and 10,000 hosts' dicts crowd the cache.
    # (Mesa's own attributes, ``model``, ``unique_id`` and ``pos``, stay in its dict.)
    __slots__ = (
        "_accepting", "_booting", "_degradations", "_escalating", "_ha_first", "_ha_restart",
        "_ha_tries",
        "_outage_cause", "_replicas", "_sources", "_timers", "_waiting_for_power", "arch",
        "architecture", "arrivals", "behaviour", "cause", "clocks", "cluster", "cpu",
        "drivers", "evacuation", "guest_ids", "guests_booted", "index", "memory_gb", "name",
        "open_incidents", "pod", "powered", "rack", "reachable", "restarts", "share",
        "state", "storage_ok", "update_job",
    )  # fmt: skip

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
        self.cluster: str | None = None  # its HA / DRS cluster's name (`Clusters`)
        self.cpu = cpu
        self.memory_gb = memory_gb
        self.state = HostState.RUNNING
        self.cause: str | None = None
        self.powered = True
        self.reachable = True
        self.storage_ok = True  # its datastore is up
        self.guests_booted = True
        self.drivers: list[Driver] = []
        self.open_incidents: set[Incident] = set()
        self.evacuation: Evacuation | None = None
        self.clocks = FaultClocks(self)
        self.hold_no_guests()
        self.update_job: UpdateJob | None = None
        self._outage_cause: str | None = None  # why the guests are down, until they are back
        self._timers: list[Timer] = []
        self._degradations = 0
        self._escalating = False
        self._waiting_for_power = False
        self.set_architecture(architecture)

    # -- identity -------------------------------------------------------------------------

    def set_architecture(self, architecture: str) -> None:
        """Take on an architecture (at build time, or when converted by a scenario)."""
        self.architecture = architecture
        self.behaviour: Behaviour = BEHAVIOURS[architecture]
        self.arch: ArchitectureConfig = self.model.config.architectures.get(architecture)
        self.share = HostShare(self.model.accounts, architecture, self.arch.io_overhead, self.index)
        crash = [(functools.partial(self.crash, cause), getattr(self.arch, key))
                 for key, cause in self.behaviour.crash_sources]  # fmt: skip
        sources = [(functools.partial(self.crash, Cause.HYPERVISOR), self.arch.hypervisor_fault),
                   (self.fail_hardware, self.model.config.hardware.fault), *crash,
                   *Aging(self).sources()]  # fmt: skip
        self._sources = [(fire, dist) for fire, dist in sources if not dist.never]

    @property
    def is_up(self) -> bool:
        return self.state in UP_STATES

    @property
    def serving(self) -> bool:
        """Up, reachable, its datastore up, its guests booted: its guests are available."""
        up = self.state in UP_STATES
        return up and self.reachable and self.storage_ok and self.guests_booted

    # -- fault clocks ---------------------------------------------------------------------

    def start_clocks(self) -> None:
        """Arm the host's fault processes with fresh draws; they run only while it is up."""
        due = self.clocks.start(self._sources)
        for driver in self.drivers:
            at = driver.draw_fault()
            if at is not None:
                due[driver.fail] = at
        if self.behaviour.guest_processes:
            self.start_guest_processes(self.guest_ids, rearm=False)
        self.clocks.rearm()

    def stop_clocks(self) -> None:
        self.clocks.stop()
        for driver in self.drivers:
            driver.halt()

    def _cancel_timers(self) -> None:
        for event in self._timers:
            event.cancel()
        self._timers = []

    # -- what faults do -------------------------------------------------------------------

    def crash(self, cause: str) -> None:
        """The host panics: down at once with its guests; after detection a ticket opens,
        or the host reboots by itself when the architecture auto-reboots."""
        if not self.is_up:
            return
        model = self.model
        self.go_down(HostState.CRASHED, cause, model.accounts.open_incident(cause))
        detection = model.engine.after(self.arch.crash_detection, self._on_crash_detected)
        if detection is not None:
            self._timers.append(detection)

    def _on_crash_detected(self) -> None:
        if self.arch.crash_auto_reboot:
            self.begin_reboot()
        else:
            self.model.operators.request_reboot(self)

    def fail_hardware(self) -> None:
        """A hardware fault: down at once, and a repair ticket opens at once."""
        if not self.is_up:
            return
        incident = self.model.accounts.open_incident(Cause.HARDWARE)
        self.go_down(HostState.HW_FAILED, Cause.HARDWARE, incident)
        self.model.operators.request_hardware_repair(self)

    def wait_for_parts(self, hours: float) -> None:
        """The hands-on part of a hardware repair is over: the rest of the repair waits
        (for parts) holding no operator, then the host boots by itself."""
        if hours > 0.0:
            self._timers.append(self.model.engine.schedule(self.begin_reboot, after=hours))
        else:
            self.begin_reboot()

    def degrade(self, duration: float, cause: str = Cause.DRIVER) -> None:
        """A parent-partition service restarts: guests stay up, I/O stalls for ``duration``."""
        self._degradations += 1
        if self.state is not HostState.DRAINING:
            self._set_state(HostState.DEGRADED, cause)
        self._timers.append(self.model.engine.schedule(self._end_degradation, after=duration))

    def _end_degradation(self) -> None:
        self._degradations -= 1
        self._settle()

    def escalate(self, grace: float) -> None:
        """An escalated driver fault: degraded for the grace window, then a forced reboot."""
        self._escalating = True
        self._set_state(HostState.DEGRADED, Cause.DRIVER)
        self._timers.append(self.model.engine.schedule(self._on_grace_over, after=grace))
        if self.guest_ids and self.evacuation is None:
            Evacuation(self)

    def _on_grace_over(self) -> None:
        incident = self.model.accounts.open_incident(Cause.DRIVER)
        self.go_down(HostState.REBOOTING, Cause.DRIVER, incident)
        self.begin_reboot()

    def _settle(self) -> None:
        """Back to running once no degradation or escalation is pending."""
        if self.state is HostState.DEGRADED and self._degradations <= 0 and not self._escalating:
            self._set_state(HostState.RUNNING, None)

    def set_draining(self) -> None:
        """Planned maintenance is coming: guests are being live-migrated away."""
        self._set_state(HostState.DRAINING, Cause.UPDATE)

    def install_drivers(self, kind: str | None, version: int, fault_multiplier: float) -> None:
        """A release replaces this host's drivers (``kind`` only, or all of them)."""
        for driver in self.drivers:
            if kind is None or driver.kind == kind:
                driver.install(version, fault_multiplier)

    # -- going down and coming back -------------------------------------------------------

    def go_down(self, state: HostState, cause: str, incident: Incident) -> None:
        """Take the host (and its guests) down; the incident records what was lost."""
        was_up = self.is_up
        self.stop_clocks()
        self._cancel_timers()
        if self.evacuation is not None:
            self.evacuation.abort()  # the guests of the waves already over have left
        for restart in list(self.restarts.values()):  # they boot with the host instead
            restart.finish(resume=False)
        serving_before = self.guests_serving
        self._degradations = 0
        self._escalating = False
        self.guests_booted = False
        if self._outage_cause is None:
            self._outage_cause = cause
        self._set_state(state, cause)
        for arrival in list(self.arrivals):  # guests still booting here boot with the host
            arrival.cancel_on(self)
        self.arrivals.clear()
        lost = serving_before - self.guests_serving
        incident.touch(self, lost, was_up)
        self.model.accounts.commit_incident(incident)
        if self.update_job is not None and cause not in PLANNED_CAUSES:
            self.update_job.abandon()
        if cause not in PLANNED_CAUSES:
            self.schedule_ha_restart()

    def begin_reboot(self, duration: float | None = None) -> float:
        """Reboot now (``duration`` hours, sampled when not given); a host without power
        waits for it. Returns the reboot duration."""
        if duration is None:
            duration = self.model.draws.sample(self.arch.reboot_time)
        self._cancel_timers()
        if not self.powered:
            self._waiting_for_power = True
            self._set_state(HostState.CRASHED, Cause.POWER)
            return duration
        self._set_state(HostState.REBOOTING, self.cause)
        self._timers.append(self.model.engine.schedule(self._on_reboot_done, after=duration))
        return duration

    def _on_reboot_done(self) -> None:
        self._timers = []
        self.cancel_ha_restart()
        self.guests_booted = not self.guest_ids  # an empty host has nothing to boot
        self._set_state(HostState.RUNNING, None)
        self.start_clocks()
        if not self.guests_booted:
            boot = self.model.engine.after(self.model.config.guests.boot_time, self._on_booted)
            if boot is not None:
                self._timers.append(boot)
        if self.update_job is not None:
            self.update_job.rebooted()

    def _on_booted(self) -> None:
        self.guests_booted = True
        self.refresh()

    # -- its share of the fleet's levels --------------------------------------------------

    def _set_state(self, state: HostState, cause: str | None) -> None:
        if state is not self.state:
            if self.model.log.enabled:  # (the arguments cost more than the call)
                self.model.log.state(self.name, self.state.value, state.value, cause)
            self.state = state
        self.cause = cause
        self.refresh()

    def refresh(self) -> None:
        """Recompute what this host's share of the fleet's levels depends on, book the
        change, and settle its incidents. Guest arrivals and departures are booked as they
        happen (`add_guest`, `hand_over`), so only a change of status costs here."""
        up, running, degraded, draining = STATE_FLAGS[self.state]
        serving = up and self.reachable and self.storage_ok and self.guests_booted
        if serving:
            self._outage_cause = None
        status = (running, degraded, serving, self._outage_cause in PLANNED_CAUSES)
        model, share = self.model, self.share
        if status != share.status:
            guests, booting = len(self.guest_ids), self._booting
            if model.log.enabled and share.status:
                before = share.contribution(guests, booting)[GUESTS_UP]
                after = share.contribution(guests, booting, status)[GUESTS_UP]
                if before != after:
                    frm, to = ("down", "up") if after > before else ("up", "down")
                    model.log.guests(self.guest_ids, frm, to, self.cause)
            share.set_status(status, guests, booting)
        accepting = serving and not draining and not self._escalating and self.evacuation is None
        if accepting != self._accepting:
            self._accepting = accepting
            model.capacity.set_accepting(self.index, accepting)
        for guest in self._replicas:
            if guest.counted_up != (serving and not guest.booting):
                guest.counted_up = not guest.counted_up
                guest.service.replica_changed(guest.counted_up, model.engine.now)
        if serving and model.accounts.stranded and self.index in model.accounts.stranded:
            model.accounts.unstrand(self.index)
        if serving and self.open_incidents:
            for incident in self.open_incidents:
                incident.release(self, model.engine.now)
            self.open_incidents.clear()
