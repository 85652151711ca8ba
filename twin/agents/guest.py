"""A guest VM: its demand, its host and (optionally) the service it is a replica of."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import mesa

if TYPE_CHECKING:
    from twin.agents.host import Host
    from twin.fleet import Fleet
    from twin.services import Service


class GuestState(StrEnum):
    UP = "up"
    DOWN = "down"
    MIGRATING = "migrating"


class Guest(mesa.Agent):
    """A virtual machine. Its availability follows its host's: the fleet accounts for
    guests per host (no per-guest events for host-level incidents), and a guest's
    state is read from its host. ``booting`` while it restarts on a new host
    after an HA restart; ``migrating`` while it is live-migrated (it stays up)."""

    model: Fleet

    def __init__(
        self,
        model: Fleet,
        name: str,
        cpu: float,
        memory_gb: float,
        service: Service | None = None,
    ) -> None:
        super().__init__(model)
        self.name = name
        self.cpu = cpu
        self.memory_gb = memory_gb
        self.service = service
        self.host: Host | None = None
        self.counted_up = False

    @property
    def booting(self) -> bool:
        """Restarted on its host by HA and still booting there."""
        host = self.host
        return host is not None and any(
            self in arrival.placed.get(host, ()) for arrival in host.arrivals
        )

    @property
    def up(self) -> bool:
        return self.host is not None and self.host.serving and not self.booting

    @property
    def migrating(self) -> bool:
        """Being live-migrated away from its host (it stays up meanwhile)."""
        evacuation = self.host.evacuation if self.host is not None else None
        return evacuation is not None and self in evacuation.guests

    @property
    def state(self) -> GuestState:
        if not self.up:
            return GuestState.DOWN
        return GuestState.MIGRATING if self.migrating else GuestState.UP

    def __repr__(self) -> str:
        return f"Guest({self.name} on {self.host.name if self.host else None}, {self.state})"
