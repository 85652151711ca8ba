"""A hypervisor host: its state machine, its fault clocks and what it does with a fault.

What a fault *means* comes from the architecture's behaviour table
(`twin.architectures`); the host only carries it out. Its share of the fleet's
availability levels is `twin.metrics.contribution` of its status and guest counts:
every state change ends in `Host.refresh`, which books a change of status, and every
change of guest counts is booked where it happens (`add_guest`, `hand_over`, HA
arrivals), so accounting is exact by construction.
"""

from __future__ import annotations

import math
from array import array
from enum import StrEnum
from typing import TYPE_CHECKING

import mesa

from twin.architectures import BEHAVIOURS, Behaviour, FaultEffect, driver_fault_effect
from twin.config.schema import ArchitectureConfig
from twin.metrics import (
    GUESTS_UP,
    NOTHING,
    PLANNED_CAUSES,
    SERVING,
    block_moved,
    contribution,
    status_change,
)  # fmt: skip
from twin.processes.migration import Arrival, Evacuation, Moves, restart_elsewhere

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin.agents.driver import Driver
    from twin.agents.guest import Guest
    from twin.calendar import Timer
    from twin.fleet import Fleet
    from twin.metrics import Incident
    from twin.processes.updates import UpdateJob


class HostState(StrEnum):
    RUNNING = "running"
    DEGRADED = "degraded"
    DRAINING = "draining"
    MAINTENANCE = "maintenance"
    REBOOTING = "rebooting"
    CRASHED = "crashed"
    HW_FAILED = "hw_failed"


UP_STATES = frozenset({HostState.RUNNING, HostState.DEGRADED, HostState.DRAINING})
RUNNING_STATES = frozenset({HostState.RUNNING, HostState.DEGRADED})  # host_availability
STATE_FLAGS = {  # what `Host.refresh` asks of a state: up, running, degraded, draining
    state: (state in UP_STATES, state in RUNNING_STATES, state is HostState.DEGRADED,
            state is HostState.DRAINING)
    for state in HostState
}  # fmt: skip


class Host(mesa.Agent):
    """One physical server running a hypervisor of a given architecture."""

    # Slots keep a host's state in the object itself: with more than 30 attributes an
    # instance dict no longer shares its keys, and 10,000 hosts' dicts crowd the cache.
    # (Mesa's own attributes, ``model``, ``unique_id`` and ``pos``, stay in its dict.)
    __slots__ = (
        "_accepting", "_booting", "_clocks", "_degradations", "_due", "_escalating",
        "_fault_timer", "_ha_restart", "_outage_cause", "_replicas", "_status", "_timers",
        "_waiting_for_power", "arch", "architecture", "arrivals", "behaviour", "cause",
        "cpu", "drivers", "evacuation", "guest_ids", "guests_booted", "index", "memory_gb",
        "name", "open_incidents", "pod", "powered", "rack", "reachable", "state",
        "update_job",
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
        self.cpu = cpu
        self.memory_gb = memory_gb
        self.state = HostState.RUNNING
        self.cause: str | None = None
        self.powered = True
        self.reachable = True
        self.guests_booted = True
        self.guest_ids: array[int] = array("q")  # its guests, by `Guest.index`
        self.drivers: list[Driver] = []
        self.open_incidents: set[Incident] = set()
        self.arrivals: set[Arrival] = set()
        self.evacuation: Evacuation | None = None
        self._booting = 0
        self._replicas: list[Guest] = []
        self._ha_restart: Timer | None = None
        self.update_job: UpdateJob | None = None
        self._outage_cause: str | None = None  # why the guests are down, until they are back
        self._due: dict[Callable[[], None], float] = {}  # fault clocks: when each fires
        self._fault_timer: Timer | None = None
        self._timers: list[Timer] = []
        self._degradations = 0
        self._escalating = False
        self._waiting_for_power = False
        self._accepting = False  # mirrored in model.room (-inf while not accepting)
        self._status: tuple | None = None  # what its levels depend on besides guest counts
        self.set_architecture(architecture)

    # -- identity -------------------------------------------------------------------------

    def set_architecture(self, architecture: str) -> None:
        """Take on an architecture (at build time, or when converted by a scenario)."""
        self.architecture = architecture
        self.behaviour: Behaviour = BEHAVIOURS[architecture]
        self.arch: ArchitectureConfig = self.model.config.architectures.get(architecture)
        sources = [(self._on_hypervisor_fault, self.arch.hypervisor_fault),
                   (self._on_hardware_fault, self.model.config.hardware.fault)]  # fmt: skip
        if self.behaviour.has_parent_os:
            sources.append((self._on_parent_os_fault, self.arch.parent_os_fault))
        self._clocks = [(fire, dist) for fire, dist in sources if not dist.never]

    @property
    def is_up(self) -> bool:
        return self.state in UP_STATES

    @property
    def serving(self) -> bool:
        """Up, reachable and with its guests booted: its guests are available."""
        return self.state in UP_STATES and self.reachable and self.guests_booted

    @property
    def guests(self) -> list[Guest]:
        """The guests on this host (it holds them by index: `guest_ids`)."""
        guests = self.model.guests
        return [guests[i] for i in self.guest_ids]

    @property
    def guest_count(self) -> int:
        return len(self.guest_ids)

    @property
    def booting_guests(self) -> int:
        """Guests restarted here by HA that are still booting."""
        return self._booting

    @property
    def has_replicas(self) -> bool:
        """Whether a service replica runs here (every other guest is of the fleet's one
        size, ``guests.cpu`` x ``guests.memory_gb``)."""
        return bool(self._replicas)

    @property
    def cpu_free(self) -> float:
        return float(self.model.free_cpu[self.index])

    @property
    def memory_free(self) -> float:
        return float(self.model.free_memory[self.index])

    @property
    def accepting(self) -> bool:
        """Whether guests may be placed or moved here now (kept by `refresh`)."""
        return self._accepting

    # -- guests and capacity --------------------------------------------------------------

    def add_guest(self, guest: Guest) -> None:
        """Place a guest here (a guest on its way from another host moves with `hand_over`)."""
        before = len(self.guest_ids)
        self.guest_ids.append(guest.index)
        self._take(guest.cpu, guest.memory_gb)
        if guest.service is not None:
            guest._host = self
            self._replicas.append(guest)
        self.model.guests_moved()
        if self._status is not None:  # counted already (else its first refresh counts all)
            self._count_guests(before)

    def reserve(self, guest: Guest) -> None:
        """Hold capacity for a guest on its way here."""
        self._take(guest.cpu, guest.memory_gb)

    def unreserve(self, guest: Guest) -> None:
        self._take(-guest.cpu, -guest.memory_gb)

    def _take(self, cpu: float, memory_gb: float) -> None:
        model, i = self.model, self.index
        model.free_cpu[i] -= cpu
        model.free_memory[i] -= memory_gb
        if self._accepting:
            model.room[i] = model.free_cpu[i]

    def hand_over(self, moves: Moves, booting: bool) -> None:
        """Move planned guests from here to their targets (whose capacity the plan has
        reserved), as one block: the targets accept guests, so they are serving hosts of
        this architecture, and the fleet's levels change once for the whole block.
        ``booting``: the guests restart there (HA, to boot together on each target);
        otherwise they arrive up (live migration). Guests still booting here never move
        (an evacuation leaves them, and a host that went down has none)."""
        if not moves:
            return
        model = self.model
        count = 0
        for target, ids in moves:
            count += len(ids)
            target.guest_ids += ids
            if booting:
                target._booting += len(ids)
        if self._replicas:
            cpu = memory = 0.0
            for target, ids in moves:
                for guest in map(model.guests.__getitem__, ids):
                    cpu += guest.cpu
                    memory += guest.memory_gb
                    if guest.service is not None:
                        guest._host = target
                        self._replicas.remove(guest)
                        target._replicas.append(guest)
                        target.refresh()
        else:
            cpu, memory = count * model.guest_kind[0], count * model.guest_kind[1]
        if count == len(self.guest_ids):
            self.guest_ids = array("q")
        else:
            moving = {i for _, ids in moves for i in ids}
            self.guest_ids = array("q", [i for i in self.guest_ids if i not in moving])
        model.guests_moved()
        self._take(-cpu, -memory)
        change = block_moved(self._status, count, 0 if booting else count, self.arch.io_overhead)
        if change:
            model.book_change(self.architecture, change)

    def boot_arrivals(self, ids: array[int]) -> int:
        """Guests restarted here by HA have booted (or will boot with this host, when it is
        down; the arrival has let go of them already). Returns how many are up now; the
        caller books them."""
        self._booting -= len(ids)
        if self._replicas:
            self.refresh()
        if not (self._status and self._status[SERVING]):
            return 0
        if self.model.record_events:
            self.model.log_guests(ids, "down", "up", "ha_restart")
        return len(ids)

    def __repr__(self) -> str:
        return f"Host({self.name}, {self.architecture}, {self.state})"

    # -- fault clocks ---------------------------------------------------------------------

    def start_clocks(self) -> None:
        """Arm the host's fault processes with fresh draws; they run only while it is up.

        The clocks compete: one timer waits for the earliest of them (`_on_fault_due`),
        so a host that reboots cancels one timer rather than one per fault process."""
        now, sample = self.model.now, self.model.sample
        self._due = {fire: now + sample(dist) for fire, dist in self._clocks}
        for driver in self.drivers:
            due = driver.draw_fault()
            if due is not None:
                self._due[driver.fail] = due
        self._arm_fault_timer()

    def stop_clocks(self) -> None:
        self._due.clear()
        for driver in self.drivers:
            driver.halt()
        if self._fault_timer is not None:
            self._fault_timer.cancel()
            self._fault_timer = None

    def arm_fault(self, fire: Callable[[], None], at: float) -> None:
        """A fault clock (re)starts: ``fire`` is due at time ``at``."""
        self._due[fire] = at
        timer = self._fault_timer
        if timer is None or at < timer.time:
            if timer is not None:
                timer.cancel()
            self._fault_timer = self.model.calendar.schedule(at, self._on_fault_due)

    def disarm_fault(self, fire: Callable[[], None]) -> None:
        """A fault clock stops (the timer, if it was the earliest, finds nothing due)."""
        self._due.pop(fire, None)

    def _arm_fault_timer(self) -> None:
        """One timer, at the earliest fault clock."""
        if self._fault_timer is not None:
            self._fault_timer.cancel()
            self._fault_timer = None
        if self._due:
            at = min(self._due.values())
            self._fault_timer = self.model.calendar.schedule(at, self._on_fault_due)

    def _on_fault_due(self) -> None:
        self._fault_timer = None
        due = self._due
        if not due:
            return
        fire = min(due, key=due.__getitem__)
        if due[fire] <= self.model.now:
            del due[fire]
            fire()
        if self.is_up and self._fault_timer is None:
            self._arm_fault_timer()

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

    def on_driver_fault(self, driver: Driver, restart: float) -> FaultEffect:
        """A driver faulted: the architecture's table says whether it crashes, escalates,
        degrades the host (for the driver's ``restart`` hours) or only resets the driver."""
        model = self.model
        severe = model.chance(self.arch.driver_fault_host_crash_prob)
        grace = model.sample(self.arch.escalation_grace) if severe else 0.0
        effect = driver_fault_effect(self.behaviour, severe, grace)
        if effect is FaultEffect.HOST_CRASH:
            self.crash("driver")
        elif effect is FaultEffect.ESCALATION:
            self.escalate(grace)
        elif effect is FaultEffect.SERVICE_RESTART:
            self.degrade(restart)
        if model.record_events:
            model.log(driver.name, "up", effect.value, "driver")
        return effect

    def crash(self, cause: str) -> None:
        """The host panics: down at once with its guests; after detection a ticket opens,
        or the host reboots by itself when the architecture auto-reboots."""
        if not self.is_up:
            return
        model = self.model
        self.go_down(HostState.CRASHED, cause, model.open_incident(cause))
        detection = model.after(self.arch.crash_detection, self._on_crash_detected)
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
        self.go_down(HostState.HW_FAILED, "hardware", self.model.open_incident("hardware"))
        self.model.operators.request_hardware_repair(self)

    def degrade(self, duration: float, cause: str = "driver") -> None:
        """A parent-partition service restarts: guests stay up, I/O stalls for ``duration``."""
        self._degradations += 1
        if self.state is not HostState.DRAINING:
            self._set_state(HostState.DEGRADED, cause)
        self._timers.append(self.model.after_hours(duration, self._end_degradation))

    def _end_degradation(self) -> None:
        self._degradations -= 1
        self._settle()

    def escalate(self, grace: float) -> None:
        """An escalated driver fault: degraded for the grace window, then a forced reboot."""
        self._escalating = True
        self._set_state(HostState.DEGRADED, "driver")
        self._timers.append(self.model.after_hours(grace, self._on_grace_over))
        if self.guest_ids and self.evacuation is None:
            Evacuation(self)

    def _on_grace_over(self) -> None:
        self.go_down(HostState.REBOOTING, "driver", self.model.open_incident("driver"))
        self.begin_reboot()

    def _settle(self) -> None:
        """Back to running once no degradation or escalation is pending."""
        if self.state is HostState.DEGRADED and self._degradations <= 0 and not self._escalating:
            self._set_state(HostState.RUNNING, None)

    def set_draining(self) -> None:
        """Planned maintenance is coming: guests are being live-migrated away."""
        self._set_state(HostState.DRAINING, "update")

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
        self.model.commit_incident(incident)
        if self.update_job is not None and cause not in PLANNED_CAUSES:
            self.update_job.abandon()
        ha = self.model.config.guests.ha
        if ha.enabled and cause not in PLANNED_CAUSES and self._ha_restart is None:
            self._ha_restart = self.model.after(ha.restart_delay, self._on_ha_restart)

    def _on_ha_restart(self) -> None:
        self._ha_restart = None
        if not self.is_up and self.guest_ids:
            restart_elsewhere(self)

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
        if self._ha_restart is not None:
            self._ha_restart.cancel()
            self._ha_restart = None
        self.guests_booted = not self.guest_ids  # an empty host has nothing to boot
        self._set_state(HostState.RUNNING, None)
        self.start_clocks()
        if not self.guests_booted:
            boot = self.model.after(self.model.config.guests.boot_time, self._on_booted)
            if boot is not None:
                self._timers.append(boot)
        if self.update_job is not None:
            self.update_job.rebooted()

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
        before = self.guests_serving
        self.reachable = reachable
        self.refresh()
        if incident is not None:
            incident.touch(self, before - self.guests_serving, False)

    # -- accounting -----------------------------------------------------------------------

    def _set_state(self, state: HostState, cause: str | None) -> None:
        if state is not self.state:
            if self.model.record_events:
                self.model.log(self.name, self.state.value, state.value, cause)
            self.state = state
        self.cause = cause
        self.refresh()

    def levels(
        self, status: tuple | None = None, guests: int | None = None, booting: int | None = None
    ) -> tuple:
        """This host's contribution to the fleet's levels (in `LEVELS` order), now or for
        another status and guest count."""  # fmt: skip
        return contribution(
            self._status if status is None else status,
            len(self.guest_ids) if guests is None else guests,
            self._booting if booting is None else booting,
            self.arch.io_overhead,
        )

    def refresh(self) -> None:
        """Recompute what this host's share of the fleet's levels depends on, book the
        change, and settle its incidents. Guest arrivals and departures are booked as they
        happen (`_count_guests`, `hand_over`), so only a change of status costs here."""
        up, running, degraded, draining = STATE_FLAGS[self.state]
        serving = up and self.reachable and self.guests_booted
        if serving:
            self._outage_cause = None
        status = (running, degraded, serving, self._outage_cause in PLANNED_CAUSES)
        model = self.model
        if status != self._status:
            if model.record_events and self._status:
                before, after = self.levels()[GUESTS_UP], self.levels(status)[GUESTS_UP]
                if before != after:
                    frm, to = ("down", "up") if after > before else ("up", "down")
                    model.log_guests(self.guest_ids, frm, to, self.cause)
            change = status_change(
                self._status, status, len(self.guest_ids), self._booting, self.arch.io_overhead
            )
            self._status = status
            if change:
                model.book_change(self.architecture, change)
        accepting = serving and not draining and not self._escalating and self.evacuation is None
        if accepting != self._accepting:
            self._accepting = accepting
            model.room[self.index] = model.free_cpu[self.index] if accepting else -math.inf
        for guest in self._replicas:
            if guest.counted_up != (serving and not guest.booting):
                guest.counted_up = not guest.counted_up
                guest.service.replica_changed(guest.counted_up, model.now)
        if serving and self.open_incidents:
            for incident in self.open_incidents:
                incident.release(self, model.now)
            self.open_incidents.clear()

    def _count_guests(self, guests_before: int) -> None:
        """Book a change of this host's guest count under its current status."""
        self.model.book(self.architecture, self.levels(guests=guests_before), self.levels())

    @property
    def guests_serving(self) -> int:
        """Guests counted up right now (its `contribution` to ``guests_up``)."""
        status = self._status
        return len(self.guest_ids) - self._booting if status and status[SERVING] else 0

    def withdraw(self) -> None:
        """Remove this host's contribution from the levels (before an architecture change)."""
        self.model.book(self.architecture, self.levels(), NOTHING)
        self._status = None
