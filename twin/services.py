"""Services: replica groups of guests that are up while a quorum of replicas is up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.accounting import Level

if TYPE_CHECKING:
    from twin.agents.guest import Guest
    from twin.agents.host import Host


class Service:
    """A named replica group with a quorum and an anti-affinity rule (host, rack, none).

    ``replicas_up`` is kept exact by the hosts (each replica's up/down change is
    reported), and ``available`` integrates the time with at least ``quorum`` up.
    """

    def __init__(self, name: str, quorum: int, anti_affinity: str) -> None:
        self.name = name
        self.quorum = quorum
        self.anti_affinity = anti_affinity
        self.replicas: list[Guest] = []
        self.replicas_up = 0
        self.available = Level()

    def conflicts(self, guest: Guest, target: Host) -> bool:
        """Whether placing ``guest`` on ``target`` would break the anti-affinity rule."""
        for other in self.replicas:
            if other is guest or other.host is None:
                continue
            if self.anti_affinity == "host" and other.host is target:
                return True
            if self.anti_affinity == "rack" and other.host.rack == target.rack:
                return True
        return False

    def replica_changed(self, up: bool, now: float) -> None:
        was = self.replicas_up >= self.quorum
        self.replicas_up += 1 if up else -1
        now_ok = self.replicas_up >= self.quorum
        if was != now_ok:
            self.available.add(1.0 if now_ok else -1.0, now)

    def availability(self, now: float) -> float:
        return self.available.integral_until(now) / now if now > 0 else 1.0
