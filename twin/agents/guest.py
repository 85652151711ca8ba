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
    state is read from its host. ``booting`` while it restarts on a new host after an
    HA restart; ``migrating`` while it is live-migrated (it stays up).

    Hosts hold their guests by ``index`` (`Host.guest_ids`), so moving a block of guests
    never touches the guests themselves. A replica keeps its host on itself (its
    service's anti-affinity reads it at every plan); any other guest's host is looked
    up in the fleet's guest map (`Fleet.host_of`)."""

    model: Fleet

    def __init__(
        self,
        model: Fleet,
        index: int,
        name: str,
        cpu: float,
        memory_gb: float,
        service: Service | None = None,
    ) -> None:
        super().__init__(model)
        self.index = index
        self.name = name
        self.cpu = cpu
        self.memory_gb = memory_gb
        self.service = service
        self.counted_up = False
        self._host: Host | None = None  # kept for replicas only

    @property
    def host(self) -> Host | None:
        if self.service is not None:
            return self._host
        return self.model.host_of(self.index)

    @property
    def booting(self) -> bool:
        """Not up yet on its host: restarted there by HA and still booting, or its own
        device-emulation process restarting."""
        host = self.host
        return host is not None and (self.index in host.restarts or any(
            self.index in arrival.placed.get(host, ()) for arrival in host.arrivals
        ))  # fmt: skip

    @property
    def up(self) -> bool:
        host = self.host
        return host is not None and host.serving and not self.booting

    @property
    def migrating(self) -> bool:
        """Being live-migrated away from its host (it stays up meanwhile)."""
        host = self.host
        evacuation = host.evacuation if host is not None else None
        return evacuation is not None and self.index in evacuation.guest_ids

    @property
    def state(self) -> GuestState:
        if not self.up:
            return GuestState.DOWN
        return GuestState.MIGRATING if self.migrating else GuestState.UP

    def __repr__(self) -> str:
        host = self.host
        return f"Guest({self.name} on {host.name if host else None}, {self.state})"
