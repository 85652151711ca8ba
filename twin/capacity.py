"""Capacity: the free cpu and memory of every host, and where guests fit.

`Capacity` is the one owner of the per-host arrays (free cpu, free memory, and the room
of hosts accepting guests, -inf where a host does not accept); hosts take and give back
capacity through it, and migration planning reads and reserves through it.

`spread_alike` and `spread_each` are the fast paths of spread planning: each computes
what placing guests one by one on the host with most free cpu would, in about one step per
guest. `tests/test_engine.py` checks both against that plain one-by-one reference.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from twin.agents.guest import Guest
    from twin.agents.host import Host


class Capacity:
    """Free cpu and memory per host (by `Host.index`), and the room of accepting hosts.

    ``guest_kind`` is the (cpu, memory) of every guest but the service replicas.
    """

    __slots__ = ("free_cpu", "free_memory", "guest_kind", "room")

    def __init__(
        self, cpu: Sequence[float], memory: Sequence[float], guest_kind: tuple[float, float]
    ) -> None:
        self.free_cpu = np.array(cpu, dtype=float)
        self.free_memory = np.array(memory, dtype=float)
        self.room = np.full(len(self.free_cpu), -math.inf)  # free cpu where accepting
        self.guest_kind = guest_kind

    def take(self, host: int, cpu: float, memory_gb: float, accepting: bool) -> None:
        """Host ``host`` holds ``cpu`` and ``memory_gb`` more (less when negative)."""
        self.free_cpu[host] -= cpu
        self.free_memory[host] -= memory_gb
        if accepting:
            self.room[host] = self.free_cpu[host]

    def set_accepting(self, host: int, accepting: bool) -> None:
        self.room[host] = self.free_cpu[host] if accepting else -math.inf

    def candidates(
        self, members: np.ndarray, room: np.ndarray, order: np.ndarray
    ) -> tuple[list[int], list[float], list[float]]:
        """Host indices, free cpu and free memory of ``members[order]``, as plain lists."""
        chosen = members[order]
        return chosen.tolist(), room[order].tolist(), self.free_memory[chosen].tolist()

    def write_back(self, hosts: list[int], cpu: list[float], memory: list[float]) -> None:
        """Store what planning left free on these hosts (accepting ones: room too)."""
        free_cpu, free_memory, room = self.free_cpu, self.free_memory, self.room
        for i, c, m in zip(hosts, cpu, memory, strict=True):
            free_cpu[i] = room[i] = c
            free_memory[i] = m


def spread_alike(
    cpu: list[float], memory: list[float], need_cpu: float, need_memory: float, counts: list[int]
) -> tuple[list[dict[int, int]], int]:
    """How many identical guests each candidate (by position, sorted by free cpu, most
    first) takes when each guest goes to the one with most free cpu now, taking its
    capacity: for the guests leaving each host in turn (``counts``), candidates in
    first-use order; and how many guests found no room (once one finds none, no later
    guest does).

    For identical guests the hosts used come back, with less room, in the order they
    were used, so the heap of `spread_each` is a queue here: a merge of two sorted runs,
    carried on from one leaving host to the next as if each were planned after the other.
    """
    plans: list[dict[int, int]] = []
    used: deque[int] = deque()
    pulled = short = 0
    cpu.append(-math.inf)  # a sentinel past the last candidate: never pulled past
    for count in counts:
        taken: dict[int, int] = {}
        plans.append(taken)
        while count:
            if used and cpu[used[0]] >= cpu[pulled]:
                k = used.popleft()
            else:
                k = pulled
                pulled += 1
            free = cpu[k]
            if free < need_cpu:
                break  # the host with most free cpu has too little: so have all the others
            if memory[k] >= need_memory:
                cpu[k] = free - need_cpu
                memory[k] -= need_memory
                taken[k] = taken.get(k, 0) + 1
                used.append(k)
                count -= 1
        if count:
            short = count + sum(counts[len(plans) :])
            plans += [{} for _ in counts[len(plans) :]]
            break
    cpu.pop()
    return plans, short


def spread_each(
    cpu: list[float],
    memory: list[float],
    guests: Sequence[Guest],
    hosts: list[Host],
    keeps_apart: Callable[[Guest, Host], bool],
) -> list[int]:
    """Like `spread_alike` for guests of any size or service (position -1: no room).

    ``keeps_apart`` says whether a host keeps a guest apart from its service's other
    replicas. Candidates are pulled into a heap only when they have more free cpu than its
    top, so about one host per guest is ever pulled."""
    where: list[int] = []
    heap: list[tuple[float, int]] = []  # (-free cpu, position)
    pulled, n = 0, len(cpu)
    for guest in guests:
        skipped, k = [], -1
        while True:
            while pulled < n and (not heap or cpu[pulled] > -heap[0][0]):
                heapq.heappush(heap, (-cpu[pulled], pulled))
                pulled += 1
            if not heap:
                k = -1
                break
            entry = heapq.heappop(heap)
            k = entry[1]
            if (cpu[k] >= guest.cpu and memory[k] >= guest.memory_gb
                    and keeps_apart(guest, hosts[k])):  # fmt: skip
                cpu[k] -= guest.cpu
                memory[k] -= guest.memory_gb
                heapq.heappush(heap, (-cpu[k], k))
                break
            skipped.append(entry)
        where.append(k)
        for entry in skipped:
            heapq.heappush(heap, entry)
    return where
