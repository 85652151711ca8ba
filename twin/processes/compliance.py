"""Patch compliance of an update campaign (SPEC 4 ``patch_compliance``, ``updates_missed``).

A campaign's *latest release* is the one it rolls now (release 0, what the hosts were
built with, until the first). Its `Compliance` books two levels per architecture in the
fleet's ledger: ``patch_scope`` (hosts in the campaign's scope) and ``patched`` (those of
them on its latest release), so ``patch_compliance`` is the ratio of their time integrals,
pooled over campaigns. It also counts, as ``updates_missed``, each host update a release
skipped: the host was down (or busy with another release) at its turn, went down during
its update, or was never reached because the next release came first; and, as
``releases_superseded``, each release still rolling when the next was due.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.accounting import Ledger
    from twin.agents.host import Host
    from twin.engine import Engine

SCOPE, PATCHED = "patch_scope", "patched"
MISSED, SUPERSEDED = "updates_missed", "releases_superseded"
"""Ledger quantities: two levels (time-integrated) and two counts (their value)."""
FLEET_WIDE = "-"
"""The ledger's architecture for a count that belongs to no one architecture."""


class Compliance:
    """Which hosts in one campaign's scope run its latest release."""

    __slots__ = ("engine", "ledger", "patched", "scope")

    def __init__(self, engine: Engine, ledger: Ledger, hosts: list[Host]) -> None:
        self.engine = engine
        self.ledger = ledger
        self.scope: dict[Host, str] = {}  # host -> the architecture its levels are booked in
        self.patched: set[Host] = set()
        self._enter(hosts)
        for host in hosts:  # release 0: every host runs what it was built with
            self.installed(host)

    def new_release(self, hosts: list[Host]) -> None:
        """A release starts rolling over ``hosts`` (the scope now): nobody runs it yet."""
        now, add = self.engine.now, self.ledger.add
        for host, arch in self.scope.items():
            add(SCOPE, arch, -1.0, now)
            if host in self.patched:
                add(PATCHED, arch, -1.0, now)
        self.scope, self.patched = {}, set()
        self._enter(hosts)

    def _enter(self, hosts: list[Host]) -> None:
        now = self.engine.now
        for host in hosts:
            self.scope[host] = host.architecture
            self.ledger.add(SCOPE, host.architecture, 1.0, now)

    def installed(self, host: Host) -> None:
        """``host`` now runs the latest release."""
        arch = self.scope.get(host)
        if arch is not None and host not in self.patched:
            self.patched.add(host)
            self.ledger.add(PATCHED, arch, 1.0, self.engine.now)

    def missed(self, host: Host) -> None:
        """The latest release skipped ``host``."""
        self.ledger.add(MISSED, host.architecture, 1.0, self.engine.now)

    def superseded(self, unreached: list[Host], arch: str | None) -> None:
        """The next release is due before this one reached ``unreached``: each is a missed
        update, and the release one superseded (counted for ``arch``, None: fleet-wide)."""
        for host in unreached:
            self.missed(host)
        self.ledger.add(SUPERSEDED, arch or FLEET_WIDE, 1.0, self.engine.now)
