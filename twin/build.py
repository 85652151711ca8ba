"""Building a fleet's world from its config: hosts on the topology, their drivers, the
guests and service replicas placed on them, and the shared components that fail.

Each step is a function of the fleet under construction (its config, topology and
generator); the order of the steps, and of the draws inside them, is part of what makes a
run a pure function of its seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from twin.agents import Component, Driver, Guest, Host
from twin.capacity import Capacity
from twin.config import ConfigError
from twin.placement import Clusters, assign_architectures, hosts_with_share, place_guests
from twin.processes.migration import allows
from twin.services import Service
from twin.topology import NodeKind

if TYPE_CHECKING:
    from twin.fleet import Fleet


def build_world(fleet: Fleet) -> None:
    """Hosts, drivers, guests and replicas, clusters, components (in that order)."""
    build_hosts(fleet)
    install_drivers(fleet)
    place_guests_and_replicas(fleet)
    build_components(fleet)


def build_hosts(fleet: Fleet) -> None:
    """A host per host node of the topology (its architecture from the node, as an
    inventory gives it, or from the mix), and the capacity they hold."""
    cfg, topo = fleet.config, fleet.topology
    groups: list[list[str]] = [topo.host_rack]  # with operators.per_site: the mix per site
    if cfg.operators.per_site:
        by_site: dict[str, list[str]] = {}
        for site, rack in zip(topo.host_site, topo.host_rack, strict=True):
            by_site.setdefault(site, []).append(rack)
        groups = list(by_site.values())
    mix, assign = cfg.hosts.architecture_mix, cfg.hosts.assign
    archs = [a for racks in groups for a in assign_architectures(racks, mix, assign, fleet.rng)]
    for i, name in enumerate(topo.hosts):
        node = topo.graph.nodes[name]
        arch = node.get("architecture", archs[i])
        fleet.hosts.append(
            Host(fleet, name, i, topo.host_rack[i], topo.host_pod[i], arch,
                 float(node.get("cpu", cfg.hosts.cpu)),
                 float(node.get("memory_gb", cfg.hosts.memory_gb)))
        )  # fmt: skip
    fleet.hosts_by_name = {h.name: h for h in fleet.hosts}
    fleet.capacity = Capacity(
        [h.cpu for h in fleet.hosts],
        [h.memory_gb for h in fleet.hosts],
        (cfg.guests.cpu, cfg.guests.memory_gb),  # every guest but the service replicas
    )


def install_drivers(fleet: Fleet) -> None:
    """Each driver type on ``share`` of the hosts (or on the hosts an inventory lists)."""
    cfg, topo = fleet.config, fleet.topology
    listed = [topo.graph.nodes[h].get("drivers") for h in topo.hosts]  # from an inventory
    for spec in cfg.drivers:
        chosen = (
            hosts_with_share(len(fleet.hosts), spec.share, fleet.rng)
            if any(d is None for d in listed)
            else [i for i, d in enumerate(listed) if spec.name in str(d).split(";")]
        )
        for i in chosen:
            host = fleet.hosts[i]
            host.drivers.append(Driver(fleet, host, spec.name, spec.fault))


def place_guests_and_replicas(fleet: Fleet) -> None:
    """The per-host guests by the placement policy, then the service replicas; the
    clusters guests may later move in (same pod, same architecture)."""
    cfg = fleet.config
    g = cfg.guests
    where = place_guests(
        len(fleet.hosts), g.per_host, g.cpu, g.memory_gb, cfg.hosts.cpu, cfg.hosts.memory_gb,
        g.placement,
    )  # fmt: skip
    for j, i in enumerate(where):  # `Host.add_guest`, for all of them at once
        fleet.guests.append(Guest(fleet, j, f"g{j}", g.cpu, g.memory_gb))
        fleet.hosts[i].guest_ids.append(j)
    placed = np.bincount(np.asarray(where, dtype=int), minlength=len(fleet.hosts))
    fleet.capacity.free_cpu -= placed * g.cpu
    fleet.capacity.free_memory -= placed * g.memory_gb
    fleet.clusters = Clusters(fleet.hosts)
    for n, spec in enumerate(cfg.services):
        service = Service(spec.name, spec.quorum, spec.anti_affinity)
        fleet.services[spec.name] = service
        for r in range(spec.replicas):
            guest = Guest(fleet, len(fleet.guests), f"{spec.name}-{r}", spec.cpu,
                          spec.memory_gb, service)  # fmt: skip
            service.replicas.append(guest)
            fleet.guests.append(guest)
            _place_replica(fleet, guest, f"services.{n}")


def _place_replica(fleet: Fleet, guest: Guest, where: str) -> None:
    """Place a service replica by the placement policy, honouring anti-affinity."""
    hosts = fleet.hosts
    if fleet.config.guests.placement == "spread":
        hosts = sorted(hosts, key=lambda h: (-h.cpu_free, h.index))
    target = next((h for h in hosts if allows(guest, h)), None)
    if target is None:
        raise ConfigError(where, f"no host can take replica {guest.name} "
                          "(capacity or anti-affinity)")  # fmt: skip
    target.add_guest(guest)


def build_components(fleet: Fleet) -> None:
    """A failing component for every switch and power feed of the graph."""
    net, topo = fleet.config.network, fleet.topology
    processes = {
        NodeKind.TOR: (net.tor_fault, net.tor_repair),
        NodeKind.SPINE: (net.spine_fault, net.spine_repair),
        NodeKind.POWER: (net.power_fault, net.power_repair),
    }
    for name in [*topo.switches, *topo.feeds]:
        kind = topo.kind(name)
        fault, repair = processes[kind]
        fleet.components[name] = Component(fleet, name, kind, fault, repair)
