"""Where things go when the fleet is built: architectures onto racks or hosts, guests
onto hosts, drivers onto a share of hosts (pure functions of their inputs and an rng),
and the clusters guests may move in."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from twin.architectures import BEHAVIOURS
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


def form_clusters(pods_archs: Sequence[tuple[str, str]], size: Mapping[str, int]) -> list[int]:
    """The cluster number of each host (by position, counted within its pod and
    architecture) when hosts are grouped by (pod, architecture), in host order, into as
    few clusters of at most ``size[architecture]`` as cover each group, dealt round-robin:
    sizes as even as whole hosts allow (64 hosts by 48: two of 32, not 48 + 16), and each
    cluster spans the racks of its group, so a rack's power or ToR outage is a partial
    failure of several clusters, not the loss of one."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(pods_archs):
        groups.setdefault(key, []).append(i)
    number = [0] * len(pods_archs)
    for members in groups.values():
        parts = -(-len(members) // size[pods_archs[members[0]][1]])
        for k, i in enumerate(members):
            number[i] = k % parts
    return number


def ha_reserve(
    cpu: Sequence[float], memory: Sequence[float], policy: str, tolerated: int, cpu_share: float
) -> tuple[float, float]:
    """The cpu and memory HA admission control keeps free in a cluster of hosts of these
    sizes: the ``tolerated`` largest hosts' (``host_failures``; all of them when the
    cluster is that small), ``cpu_share`` of its cpu (``percentage``), or nothing."""
    if policy == "host_failures":
        return (math.fsum(sorted(cpu, reverse=True)[:tolerated]),
                math.fsum(sorted(memory, reverse=True)[:tolerated]))  # fmt: skip
    if policy == "percentage":
        return cpu_share * math.fsum(cpu), 0.0
    return 0.0, 0.0


class Clusters:
    """The HA / DRS clusters: the groups of hosts guests may move among, each inside one pod
    and one architecture (a VM does not live-migrate between hypervisors) and at most
    ``hosts.cluster_size`` hosts (the product's limit caps that: `Behaviour.cluster_limit`).

    Clusters have stable names, ``<pod>/<architecture>/<k>`` when formed here, or the
    ``cluster`` an inventory gives a host; `groups` maps each name to its hosts, in host
    order (the public read API, for the dashboard's grouping too)."""

    def __init__(self, hosts: Sequence[Host], size: int) -> None:
        self.size = size
        self.groups: dict[str, list[Host]] = {}
        formed = [h for h in hosts if h.cluster is None]
        limits = {arch: min(size, b.cluster_limit) for arch, b in BEHAVIOURS.items()}
        numbers = form_clusters([(h.pod, h.architecture) for h in formed], limits)
        for host, number in zip(formed, numbers, strict=True):
            host.cluster = f"{host.pod}/{host.architecture}/{number}"
        for host in hosts:
            self.groups.setdefault(self.key(host), []).append(host)
        self._index()

    @staticmethod
    def key(host: Host) -> str:
        """The name of ``host``'s cluster."""
        return host.cluster

    def of(self, host: Host) -> list[Host]:
        """The hosts a guest of ``host`` may move to (``host`` among them)."""
        return self.groups[self.key(host)]

    def indices(self, host: Host) -> np.ndarray:
        """Indices of `of` ``host``, for vectorised capacity look-ups."""
        return self._indices[self.key(host)]

    def items(self) -> Iterable[tuple[str, list[Host]]]:
        return self.groups.items()

    def leave(self, host: Host) -> None:
        """``host`` is about to change architecture: out of its cluster."""
        self.groups[self.key(host)].remove(host)

    def join(self, host: Host) -> None:
        """``host`` (converted to another architecture) joins the smallest cluster of its pod
        and new architecture with room, or a new one."""
        limit = min(self.size, host.behaviour.cluster_limit)
        same = [(len(hosts), name) for name, hosts in self.groups.items()
                if hosts and hosts[0].pod == host.pod
                and hosts[0].architecture == host.architecture and len(hosts) < limit]  # fmt: skip
        if same:
            host.cluster = min(same)[1]
        else:
            k = sum(name.startswith(f"{host.pod}/{host.architecture}/") for name in self.groups)
            host.cluster = f"{host.pod}/{host.architecture}/{k}"
        self.groups.setdefault(host.cluster, []).append(host)
        self._index()

    def _index(self) -> None:
        self._indices = {
            key: np.array([h.index for h in hosts], dtype=int) for key, hosts in self.groups.items()
        }
