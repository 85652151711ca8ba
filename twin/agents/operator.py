"""Operators and their ticket queue.

A ticket waits for a free operator (highest priority first, FIFO within a
priority); the operator answers after ``response_time`` and stays busy until
the task ends. Tasks are small objects with a ``kind``, a ``priority`` and a
``work`` method that returns how long the operator is busy after answering.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Protocol

import mesa

from twin.accounting import Ticket
from twin.agents.host import HostState
from twin.config import Distribution
from twin.dates import in_business_hours, week_offset
from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.agents.component import Component
    from twin.agents.host import Host
    from twin.fleet import Fleet


class Priority(IntEnum):
    """Ticket priorities: lower is more urgent. Shared infrastructure comes first."""

    POWER = 0
    NETWORK = 1
    HOST = 2
    UPDATE = 3


class OperatorState(StrEnum):
    IDLE = "idle"
    RESPONDING = "responding"
    WORKING = "working"


class Task(Protocol):
    kind: str
    priority: Priority
    arch: str | None

    def work(self, operator: Operator) -> float | None:
        """Start the task (the operator has just answered); return its duration in hours,
        or None when the task will call ``operator.release()`` itself."""
        ...

    def done(self) -> None:
        """The task's duration is over."""
        ...


@dataclass
class RebootHost:
    """Reboot a crashed host: busy for the reboot."""

    host: Host
    kind: str = "reboot"
    priority: Priority = Priority.HOST

    @property
    def arch(self) -> str:
        return self.host.architecture

    def work(self, operator: Operator) -> float:
        return self.host.begin_reboot()

    def done(self) -> None:
        pass


@dataclass
class RepairHardware:
    """Repair a failed server (SPEC 3): the host is down for the whole ``hardware.repair``
    from the operator's answer, then boots by itself; the operator is busy only for its
    hands-on part (``hardware.hands_on``, at most the repair; ``repair``: all of it, the
    machine-repairman queue). The rest is waiting for parts, which holds nobody.

    Draw order: the repair, then (unless it is the whole repair) the hands-on time."""

    host: Host
    kind: str = "hardware_repair"
    priority: Priority = Priority.HOST
    waiting: float = 0.0  # hours of the repair left after the hands-on part

    @property
    def arch(self) -> str:
        return self.host.architecture

    def work(self, operator: Operator) -> float:
        draws, hardware = self.host.model.draws, self.host.model.config.hardware
        repair = draws.sample(hardware.repair)
        if hardware.hands_on_is_whole_repair:
            return repair
        hands_on = min(draws.sample(hardware.hands_on), repair)
        self.waiting = repair - hands_on
        return hands_on

    def done(self) -> None:
        self.host.wait_for_parts(self.waiting)


@dataclass
class RepairComponent:
    """Repair a failed switch or power feed: busy for the repair."""

    component: Component
    kind: str = "component_repair"
    priority: Priority = Priority.NETWORK
    arch: str | None = None

    def work(self, operator: Operator) -> float:
        return self.component.model.draws.sample(self.component.repair)

    def done(self) -> None:
        self.component.restore()


class Operator(mesa.Agent):
    """An engineer who answers one ticket at a time."""

    model: Fleet

    def __init__(self, model: Fleet, name: str, index: int, team: OperatorTeam) -> None:
        super().__init__(model)
        self.name = name
        self.index = index
        self.team = team
        self.state = OperatorState.IDLE
        self.task: Task | None = None
        self.ticket: Ticket | None = None

    def take(self, task: Task, ticket: Ticket) -> None:
        model = self.model
        self.task, self.ticket = task, ticket
        ticket.taken = model.engine.now
        self._set(OperatorState.RESPONDING)
        model.engine.after(self.team.response_time(), self._answer)

    def _answer(self) -> None:
        self._set(OperatorState.WORKING)
        assert self.task is not None
        model = self.model
        if model.draws.chance(model.config.operators.error_prob):
            reboot_the_wrong_host(model, self.task)
        duration = self.task.work(self)
        if duration is not None:
            model.engine.schedule(self._finish, after=duration)

    def release(self) -> None:
        """A task of open-ended length (an update batch) is over."""
        self._finish()

    def _finish(self) -> None:
        task, ticket = self.task, self.ticket
        assert task is not None and ticket is not None
        ticket.closed = self.model.engine.now
        self._set(OperatorState.IDLE)
        self.task = self.ticket = None
        task.done()
        self.team.free(self)

    def _set(self, state: OperatorState) -> None:
        model = self.model
        busy_before = self.state is not OperatorState.IDLE
        busy_after = state is not OperatorState.IDLE
        if busy_before != busy_after and self.task is not None:
            arch = self.task.arch or "-"
            delta = 1.0 if busy_after else -1.0
            model.accounts.ledger.add("operators_busy", arch, delta, model.engine.now)
        if model.log.enabled:
            task = self.task.kind if self.task else None
            model.log.state(self.name, self.state.value, state.value, task)
        self.state = state


def reboot_the_wrong_host(model: Fleet, task: Task) -> None:
    """An operator's mistake: the wrong host is rebooted, a running neighbour in the
    rack of the task's host (or, for other tasks, a running host drawn at random)."""
    target = getattr(task, "host", None)
    pool: list[Host] = []
    hosts = model.hosts
    if target is not None:
        neighbours = (hosts[i] for i in model.topology.rack_hosts[target.rack])
        pool = [h for h in neighbours if h.is_up and h is not target]
    if not pool:
        draws = (hosts[i] for i in model.rng.integers(len(hosts), size=16))
        pool = [h for h in draws if h.is_up and h is not target][:1]
    if not pool:
        return
    victim = pool[int(model.rng.integers(len(pool)))]
    incident = model.accounts.open_incident(Cause.OPERATOR_ERROR)
    victim.go_down(HostState.REBOOTING, Cause.OPERATOR_ERROR, incident)
    victim.begin_reboot()


class OperatorTeam:
    """The on-shift operators and the queue of tickets waiting for them."""

    def __init__(self, model: Fleet, count: int, prefix: str = "") -> None:
        self.model = model
        self.operators = [Operator(model, f"{prefix}op{i}", i, self) for i in range(count)]
        self._idle = list(range(count))  # a heap: the lowest-numbered free operator answers
        self.tickets: list[Ticket] = []
        self._queue: list[tuple[int, int, Task, Ticket]] = []
        self._seq = itertools.count()
        self._week_offset = week_offset(model.config.start_date)

    update_priority = Priority.UPDATE

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def response_time(self) -> Distribution:
        """Who answers now: the shift in business hours (Mon-Fri 09:00-17:00 on the
        calendar of ``start_date``) or around the clock, otherwise the slower on-call
        engineer."""
        ops = self.model.config.operators
        if ops.shift == "24x7" or in_business_hours(self.model.engine.now, self._week_offset):
            return ops.response_time
        return ops.oncall_response_time

    def open(self, task: Task) -> Ticket:
        ticket = Ticket(
            kind=task.kind,
            priority=int(task.priority),
            opened=self.model.engine.now,
            arch=task.arch,
        )
        self.tickets.append(ticket)
        heapq.heappush(self._queue, (int(task.priority), next(self._seq), task, ticket))
        self.dispatch()
        return ticket

    def dispatch(self) -> None:
        """Hand waiting tickets to free operators, most urgent first."""
        while self._queue and self._idle:
            operator = self.operators[heapq.heappop(self._idle)]
            _, _, task, ticket = heapq.heappop(self._queue)
            operator.take(task, ticket)

    def free(self, operator: Operator) -> None:
        """An operator finished a task and takes the next ticket, if any."""
        heapq.heappush(self._idle, operator.index)
        self.dispatch()

    def request_reboot(self, host: Host) -> None:
        self.open(RebootHost(host))

    def request_hardware_repair(self, host: Host) -> None:
        self.open(RepairHardware(host))

    def request_repair(self, component: Component) -> None:
        self.open(RepairComponent(component, priority=component.priority))
