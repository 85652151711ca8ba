"""What a host does when its links to shared infrastructure change: its last power feed,
its paths to the core, its datastore.

`Links` is that part of `Host` (a mixin: its state lives in the host's slots). A host
without power goes down and boots by itself when power returns; a host cut off from the
core (isolated) or from its datastore (all paths down) keeps running while its guests are
unavailable, and an isolated one may hand them to HA (`ha.isolation_response`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.agents.host_state import HostState
from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.accounting import Incident
    from twin.fleet import Fleet


class Links:
    """A host's power, network and datastore."""

    __slots__ = ()

    model: Fleet
    state: HostState
    powered: bool
    reachable: bool
    storage_ok: bool
    guest_ids: object
    _waiting_for_power: bool

    if TYPE_CHECKING:

        def refresh(self) -> None: ...
        def go_down(self, state: HostState, cause: str, incident: Incident) -> None: ...
        def begin_reboot(self, duration: float | None = None) -> float: ...
        def _cancel_timers(self) -> None: ...
        def _set_state(self, state: HostState, cause: str | None) -> None: ...
        def schedule_ha_restart(self) -> None: ...
        def cancel_ha_restart(self) -> None: ...

        @property
        def is_up(self) -> bool: ...

        @property
        def guests_serving(self) -> int: ...

    def lose_power(self, incident: Incident) -> None:
        """Its last live power feed failed: down at once; it boots by itself on return."""
        self.powered = False
        if self.is_up:
            self.go_down(HostState.CRASHED, Cause.POWER, incident)
            self._waiting_for_power = True
        elif self.state is HostState.REBOOTING:
            self._cancel_timers()
            self._waiting_for_power = True
            self._set_state(HostState.CRASHED, Cause.POWER)

    def regain_power(self) -> None:
        self.powered = True
        if self._waiting_for_power:
            self._waiting_for_power = False
            self.begin_reboot()

    def set_reachable(self, reachable: bool, incident: Incident | None = None) -> None:
        """A switch on its path changed state; a running host reacts to its isolation."""
        self._link_changed("reachable", reachable, incident)
        if self.is_up:
            self.isolation_changed()

    def set_storage(self, ok: bool, incident: Incident | None = None) -> None:
        """Its datastore failed (all paths down: its guests hang, the host runs) or is back
        (they resume where they were, with no boot)."""
        self._link_changed("storage_ok", ok, incident)

    def _link_changed(self, link: str, up: bool, incident: Incident | None) -> None:
        before = self.guests_serving
        setattr(self, link, up)
        self.refresh()
        if incident is not None:
            incident.touch(self, before - self.guests_serving, False)

    def isolation_changed(self) -> None:
        """This running host lost (or regained) every path to the core. With
        ``isolation_response: power_off`` its guests are powered off and HA restarts them
        on reachable hosts of the cluster; with ``leave_on`` they wait for the network."""
        if self.reachable:
            self.cancel_ha_restart()
        elif self.model.config.guests.ha.isolation_response == "power_off" and self.guest_ids:
            self.schedule_ha_restart()
