"""A guest VM: its demand, its host and (optionally) the service it is a replica of."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from twin.agents.host import Host
    from twin.fleet import Fleet


class GuestState(StrEnum):
    UP = "up"
    DOWN = "down"
    MIGRATING = "migrating"


class Guest(mesa.Agent):
    """A virtual machine. Its availability follows its host's: the fleet accounts for
    guests per host (no per-guest events for host-level incidents), and a guest's
    state is read from its host."""

    model: Fleet

    def __init__(
        self,
        model: Fleet,
        name: str,
        cpu: float,
        memory_gb: float,
        service: str | None = None,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.cpu = cpu
        self.memory_gb = memory_gb
        self.service = service
        self.host: Host | None = None

    @property
    def state(self) -> GuestState:
        return GuestState.UP if self.host is not None and self.host.serving else GuestState.DOWN

    def place_on(self, host: Host) -> None:
        self.host = host
        host.guests.append(self)

    def __repr__(self) -> str:
        return f"Guest({self.name} on {self.host.name if self.host else None}, {self.state})"
