"""Where things go when the fleet is built: architectures onto racks or hosts, guests
onto hosts, drivers onto a share of hosts (pure functions of their inputs and an rng),
and the clusters guests may move in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from twin.config import ConfigError

if TYPE_CHECKING:
    from twin.agents.host import Host


def largest_remainder(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` items by ``shares`` into whole counts that sum to ``total``."""
    names = list(shares)
    exact = np.array([shares[n] * total for n in names], dtype=float)
    counts = np.floor(exact).astype(int)
    remainder = total - int(counts.sum())
    for i in np.argsort(-(exact - counts), kind="stable")[:remainder]:
        counts[i] += 1
    return dict(zip(names, (int(c) for c in counts), strict=True))


def assign_architectures(
    host_racks: Sequence[str],
    mix: Mapping[str, float],
    assign: str,
    rng: np.random.Generator,
) -> list[str]:
    """An architecture per host: whole racks in rack order (``by_rack``), or hosts drawn
    at random (``random``), in proportions as close to ``mix`` as whole units allow."""
    if assign == "by_rack":
        racks = list(dict.fromkeys(host_racks))
        counts = largest_remainder(len(racks), mix)
        rack_arch: dict[str, str] = {}
        names = iter(racks)
        for arch, count in counts.items():
            for _ in range(count):
                rack_arch[next(names)] = arch
        return [rack_arch[r] for r in host_racks]
    counts = largest_remainder(len(host_racks), mix)
    pool = [arch for arch, count in counts.items() for _ in range(count)]
    return [pool[i] for i in rng.permutation(len(pool))]


def hosts_with_share(n_hosts: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted) of ``round(share * n_hosts)`` hosts drawn without replacement."""
    k = round(share * n_hosts)
    return np.sort(rng.choice(n_hosts, size=k, replace=False))


def place_guests(
    n_hosts: int,
    per_host: int,
    guest_cpu: float,
    guest_memory: float,
    host_cpu: float,
    host_memory: float,
    policy: str,
) -> np.ndarray:
    """Host index of each of ``per_host * n_hosts`` identical guests.

    ``spread`` gives every host the same load; ``pack`` fills hosts in order up to
    their cpu and memory capacity, leaving the rest empty.
    """
    total = per_host * n_hosts
    if policy == "spread":
        return np.repeat(np.arange(n_hosts), per_host)
    fit = int(min(host_cpu // guest_cpu, host_memory // guest_memory))
    if fit <= 0 and total:
        raise ConfigError("guests.cpu", "a guest does not fit on a host")
    return np.arange(total) // max(fit, 1)


class Clusters:
    """The groups of hosts guests may move among: same pod, same architecture (a VM does
    not live-migrate between hypervisors), in host order."""

    def __init__(self, hosts: Sequence[Host]) -> None:
        self.groups: dict[tuple[str, str], list[Host]] = {}
        for host in hosts:
            self.groups.setdefault(self.key(host), []).append(host)
        self._index()

    @staticmethod
    def key(host: Host) -> tuple[str, str]:
        return (host.pod, host.architecture)

    def of(self, host: Host) -> list[Host]:
        """The hosts a guest of ``host`` may move to (``host`` among them)."""
        return self.groups[self.key(host)]

    def indices(self, host: Host) -> np.ndarray:
        """Indices of `of` ``host``, for vectorised capacity look-ups."""
        return self._indices[self.key(host)]

    def items(self) -> Iterable[tuple[tuple[str, str], list[Host]]]:
        return self.groups.items()

    def leave(self, host: Host) -> None:
        """``host`` is about to change architecture: out of its cluster."""
        self.groups[self.key(host)].remove(host)

    def join(self, host: Host) -> None:
        self.groups.setdefault(self.key(host), []).append(host)
        self._index()

    def _index(self) -> None:
        self._indices = {
            key: np.array([h.index for h in hosts], dtype=int) for key, hosts in self.groups.items()
        }
