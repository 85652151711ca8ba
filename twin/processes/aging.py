"""Software aging (SPEC 3): a two-phase fault clock on a host's competing clocks.

After each boot the hypervisor (or parent OS) runs for ``aging.onset`` until it is in an
aged state (leaked memory, fragmented heaps, stale handles), and ``aging.failure`` later it
crashes, cause ``aging``, on the host-crash timeline. Every reboot, planned or not, resets
it: the host's clocks are drawn afresh when it comes back, so a reboot before the crash is
rejuvenation (an ``updates`` campaign of ``scope: reboot`` does it on a schedule).

The two phases are two clocks of the host's `FaultClocks`: the onset is a source drawn at
every boot like any other; when it fires, it arms the failure clock, which the host's
going down (for any reason) stops with the others. With exponential phases the time from
boot to crash is hypoexponential, the SRN model of the sourced row (Nguyen, Kim, Park
2014); any other laws may be given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.agents.clocks import Fire
    from twin.agents.host import Host
    from twin.config.distributions import Distribution


class Aging:
    """One host's aging: the onset clock's ``fire`` (a source of its competing clocks)
    arms the failure clock, whose ``fire`` crashes the host."""

    __slots__ = ("host",)

    def __init__(self, host: Host) -> None:
        self.host = host

    def sources(self) -> list[tuple[Fire, Distribution]]:
        """The onset clock, drawn at every boot; none when aging is off."""
        aging = self.host.arch.aging
        return [] if aging.never else [(self.on_aged, aging.onset)]

    def on_aged(self) -> None:
        """The host is aged: its failure clock starts now."""
        host = self.host
        model = host.model
        model.log.state(f"{host.name}/aging", "fresh", "aged", Cause.AGING)
        host.clocks.arm(
            self.on_failure, model.engine.now + model.draws.sample(host.arch.aging.failure)
        )

    def on_failure(self) -> None:
        """The aged software fails: a host crash."""
        self.host.crash(Cause.AGING)
