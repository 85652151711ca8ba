"""The guests a host holds: by index, the ones not up yet, its service replicas, the
capacity they take, and how moving them books the fleet's levels.

`Tenancy` is the guest-holding part of `Host` (a mixin: its state lives in the host's
slots). Moves are planned by `twin.processes.migration` and carried out here, target by
target, never guest by guest.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from twin.processes.guest_processes import GuestProcess
from twin.processes.migration import restart_elsewhere

if TYPE_CHECKING:
    from twin.accounting import HostShare
    from twin.agents.clocks import FaultClocks
    from twin.agents.guest import Guest
    from twin.architectures import Behaviour
    from twin.config.schema import ArchitectureConfig
    from twin.engine import Timer
    from twin.fleet import Fleet
    from twin.processes.guest_processes import ProcessRestart
    from twin.processes.migration import Arrival, Moves


class Tenancy:
    """What a host does with its guests."""

    __slots__ = ()

    model: Fleet
    index: int
    guest_ids: array[int]
    restarts: dict[int, ProcessRestart]
    arrivals: set[Arrival]
    behaviour: Behaviour
    arch: ArchitectureConfig
    clocks: FaultClocks
    share: HostShare
    _booting: int
    _replicas: list[Guest]
    _accepting: bool
    _ha_restart: Timer | None
    _ha_tries: int
    _ha_first: float
    reachable: bool

    if TYPE_CHECKING:

        def refresh(self) -> None: ...

        @property
        def is_up(self) -> bool: ...

    def hold_no_guests(self) -> None:
        """Start empty (guests are placed by the fleet's build, or moved here)."""
        self.guest_ids: array[int] = array("q")  # its guests, by `Guest.index`
        self.arrivals: set[Arrival] = set()  # HA restarts booting here
        self.restarts: dict[int, ProcessRestart] = {}  # guests whose own process restarts
        self._booting = 0  # guests here not up yet: HA arrivals, process restarts
        self._replicas: list[Guest] = []
        self._ha_restart: Timer | None = None
        self._ha_tries = 0  # HA's attempts this outage
        self._ha_first = 0.0  # when it made the first
        self._accepting = False  # mirrored in the fleet's capacity.room

    def schedule_ha_restart(self) -> None:
        """The host went down unplanned: HA restarts its guests elsewhere, after a delay."""
        ha = self.model.config.guests.ha
        if ha.enabled and self._ha_restart is None:
            self._ha_tries = 0
            self._ha_restart = self.model.engine.after(ha.restart_delay, self._on_ha_restart)

    def cancel_ha_restart(self) -> None:
        """The host is back (or reachable again): HA stops trying."""
        if self._ha_restart is not None:
            self._ha_restart.cancel()
            self._ha_restart = None

    def _on_ha_restart(self) -> None:
        """An attempt: restart what it can elsewhere; for the guests left, try again at
        the next of ``ha.retries`` (times after the first attempt), then give up (they wait
        for this host)."""
        self._ha_restart = None
        if not self.guest_ids or (self.is_up and self.reachable):  # nothing left, or back
            return
        engine, retries = self.model.engine, self.model.config.guests.ha.retries
        if self._ha_tries == 0:
            self._ha_first = engine.now
        restart_elsewhere(self, retry=self._ha_tries > 0)
        if self.guest_ids and self._ha_tries < len(retries):
            at = self._ha_first + retries[self._ha_tries]
            self._ha_restart = engine.schedule(self._on_ha_restart, at=at)
        self._ha_tries += 1

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
        """Guests here that are not up yet: restarted by HA, or their own process restarting."""
        return self._booting

    @property
    def has_replicas(self) -> bool:
        """Whether a service replica runs here (every other guest is of the fleet's one
        size, ``guests.cpu`` x ``guests.memory_gb``)."""
        return bool(self._replicas)

    @property
    def cpu_free(self) -> float:
        return float(self.model.capacity.free_cpu[self.index])

    @property
    def memory_free(self) -> float:
        return float(self.model.capacity.free_memory[self.index])

    @property
    def accepting(self) -> bool:
        """Whether guests may be placed or moved here now (kept by `refresh`)."""
        return self._accepting

    def __repr__(self) -> str:
        return f"Host({self.name}, {self.architecture}, {self.state})"

    def add_guest(self, guest: Guest) -> None:
        """Place a guest here (a guest on its way from another host moves with `hand_over`)."""
        before = (len(self.guest_ids), self._booting)
        self.guest_ids.append(guest.index)
        self.model.accounts.guest_time.arrive(self.index, [guest.index])
        self.take(guest.cpu, guest.memory_gb)
        if guest.service is not None:
            guest._host = self
            self._replicas.append(guest)
        self.model.guests_moved()
        self.share.guests_changed(before, (len(self.guest_ids), self._booting))

    def take(self, cpu: float, memory_gb: float) -> None:
        """Hold (or, negative, give back) capacity: for guests here or on their way."""
        self.model.capacity.take(self.index, cpu, memory_gb, self._accepting)

    def hand_over(self, moves: Moves, booting: bool) -> None:
        """Move planned guests from here to their targets (whose capacity the plan has
        reserved), as one block: the targets accept guests, so they are serving hosts of
        this architecture, and the fleet's levels change once for the whole block.
        ``booting``: the guests restart there (HA, to boot together on each target);
        otherwise they arrive up (live migration). Guests not up here never move (an
        evacuation leaves them, and a host that went down has none)."""
        if not moves:
            return
        model = self.model
        model.accounts.guest_time.move(self.index, moves, booting)
        count = 0
        for target, ids in moves:
            count += len(ids)
            target.guest_ids += ids
            if booting:
                target._booting += len(ids)
            elif target.behaviour.guest_processes:
                target.start_guest_processes(ids)
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
            guest_cpu, guest_memory = model.capacity.guest_kind
            cpu, memory = count * guest_cpu, count * guest_memory
        if self.behaviour.guest_processes:
            for _, ids in moves:
                for i in ids:
                    self.clocks.disarm(GuestProcess(self, i))
        if count == len(self.guest_ids):
            self.guest_ids = array("q")
        else:
            moving = {i for _, ids in moves for i in ids}
            self.guest_ids = array("q", [i for i in self.guest_ids if i not in moving])
        model.guests_moved()
        self.take(-cpu, -memory)
        self.share.block_left(count, 0 if booting else count)

    def boot_arrivals(self, ids: array[int]) -> int:
        """Guests restarted here by HA have booted (or will boot with this host, when it is
        down; the arrival has let go of them already). Returns how many are up now; the
        caller books them."""
        self._booting -= len(ids)
        self.model.accounts.guest_time.stop_booting(self.index, ids)
        if self._replicas:
            self.refresh()
        if not self.share.serving:
            return 0
        if self.model.log.enabled:
            self.model.log.guests(ids, "down", "up", "ha_restart")
        if self.behaviour.guest_processes:
            self.start_guest_processes(ids)
        return len(ids)

    def start_guest_processes(self, ids: array[int] | list[int], rearm: bool = True) -> None:
        """The device-emulation processes of these guests (now up here) start their clocks."""
        dist = self.arch.guest_process_fault
        if dist.never:
            return
        now, sample = self.model.engine.now, self.model.draws.sample
        for i in ids:
            if i not in self.restarts:
                fire, at = GuestProcess(self, i), now + sample(dist)
                if rearm:
                    self.clocks.arm(fire, at)
                else:
                    self.clocks.due[fire] = at

    def count_booting(self, delta: int) -> None:
        """``delta`` more (or fewer) of its guests are not up yet."""
        before = (len(self.guest_ids), self._booting)
        self._booting += delta
        self.share.guests_changed(before, (len(self.guest_ids), self._booting))

    @property
    def guests_serving(self) -> int:
        """Guests counted up right now (its `contribution` to ``guests_up``)."""
        return len(self.guest_ids) - self._booting if self.share.serving else 0

    def withdraw(self) -> None:
        """Remove this host's contribution from the levels (before an architecture change)."""
        self.share.withdraw(len(self.guest_ids), self._booting)
