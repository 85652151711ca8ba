"""Guests' own device-emulation processes (architectures whose table says
``guest_processes``, e.g. kvm's one QEMU process per guest).

A process crash (``guest_process_fault``, per guest, on the host's competing clocks) takes
down that guest alone: it is down for ``crash_detection`` + ``guests.boot_time`` while the
process is restarted, with no operator, and its host and the other guests carry on. The
incident (cause ``guest_process``) has a blast radius of one guest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.agents.host import Host


class GuestProcess:
    """The fault clock of one guest's process on one host (a key of `FaultClocks.due`:
    equal for the same host and guest, so the clock can be disarmed when the guest leaves)."""

    __slots__ = ("guest", "host")

    def __init__(self, host: Host, guest: int) -> None:
        self.host = host
        self.guest = guest

    def __call__(self) -> None:
        ProcessRestart(self.host, self.guest)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, GuestProcess) and other.host is self.host
                and other.guest == self.guest)  # fmt: skip

    def __hash__(self) -> int:
        return hash((id(self.host), self.guest))


class ProcessRestart:
    """A guest's process crashed: the guest is down until the process is restarted and
    the guest has booted again."""

    __slots__ = ("guest", "host", "incident", "timer")

    def __init__(self, host: Host, guest: int) -> None:
        self.host = host
        self.guest = guest
        model = host.model
        self.incident = model.accounts.open_incident(Cause.GUEST_PROCESS)
        host.restarts[guest] = self
        host.count_booting(1)
        model.accounts.guest_time.start_booting(host.index, [guest])
        self.incident.lose(host.architecture, 1, self)
        model.accounts.commit_incident(self.incident)
        draws = model.draws
        hours = draws.sample(host.arch.crash_detection) + draws.sample(
            model.config.guests.boot_time
        )
        self.timer = model.engine.schedule(self.finish, after=hours)
        model.log.guests([guest], "up", "down", Cause.GUEST_PROCESS)

    def finish(self, resume: bool = True) -> None:
        """The guest is back (``resume``: its process's clock starts again); or its host
        goes down now and the guest will boot with it."""
        host = self.host
        self.timer.cancel()
        del host.restarts[self.guest]
        host.count_booting(-1)
        host.model.accounts.guest_time.stop_booting(host.index, [self.guest])
        self.incident.release(self, host.model.engine.now)
        if resume:
            host.model.log.guests([self.guest], "down", "up", Cause.GUEST_PROCESS)
            host.start_guest_processes([self.guest])
