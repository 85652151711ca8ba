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
from twin.agents.component import datastore_of
from twin.capacity import Capacity
from twin.config import ConfigError
from twin.placement import (
    Clusters,
    assign_architectures,
    ha_reserve,
    hosts_with_share,
    place_guests,
)
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
        host = Host(fleet, name, i, topo.host_rack[i], topo.host_pod[i], arch,
                    float(node.get("cpu", cfg.hosts.cpu)),
                    float(node.get("memory_gb", cfg.hosts.memory_gb)))  # fmt: skip
        if node.get("cluster"):  # as an inventory lists it
            host.cluster = str(node["cluster"])
        fleet.hosts.append(host)
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
    fleet.clusters = Clusters(fleet.hosts, cfg.hosts.cluster_size)
    check_clusters(fleet.clusters)
    for n, spec in enumerate(cfg.services):
        service = Service(spec.name, spec.quorum, spec.anti_affinity)
        fleet.services[spec.name] = service
        for r in range(spec.replicas):
            guest = Guest(fleet, len(fleet.guests), f"{spec.name}-{r}", spec.cpu,
                          spec.memory_gb, service)  # fmt: skip
            service.replicas.append(guest)
            fleet.guests.append(guest)
            _place_replica(fleet, guest, f"services.{n}")
    check_admission(fleet)


def check_clusters(clusters: Clusters) -> None:
    """Each cluster (as an inventory lists them) in one pod and one architecture, and
    within the architecture's product limit."""
    for name, hosts in clusters.items():
        homes = {(h.pod, h.architecture) for h in hosts}
        if len(homes) > 1:
            raise ConfigError("hosts.inventory", f"cluster {name!r} spans pods or "
                              f"architectures: {sorted(homes)}")  # fmt: skip
        limit = hosts[0].behaviour.cluster_limit if hosts else 0
        if len(hosts) > limit:
            raise ConfigError("hosts.inventory", f"cluster {name!r} has {len(hosts)} hosts, "
                              f"more than {hosts[0].architecture}'s limit of {limit}")  # fmt: skip


def check_admission(fleet: Fleet) -> None:
    """HA admission control: the guests placed at build must leave each cluster's reserve
    free (vSphere refuses a power-on that would eat into it). A cluster no larger than the
    host failures it should tolerate (a lone host, say) has nowhere to restart guests on,
    so nothing to reserve for: it is exempt."""
    ha = fleet.config.guests.ha
    ac = ha.admission_control
    if not ha.enabled or ac.policy == "none":
        return
    capacity = fleet.capacity
    tolerated = ac.host_failures_tolerated if ac.policy == "host_failures" else 1
    for name, hosts in fleet.clusters.items():
        if len(hosts) <= tolerated:
            continue
        index = [h.index for h in hosts]
        cpu, memory = [h.cpu for h in hosts], [h.memory_gb for h in hosts]
        reserve_cpu, reserve_memory = ha_reserve(
            cpu, memory, ac.policy, ac.host_failures_tolerated, ac.cpu_reserved
        )
        free_cpu = float(capacity.free_cpu[index].sum())
        free_memory = float(capacity.free_memory[index].sum())
        if free_cpu < reserve_cpu - 1e-9 or free_memory < reserve_memory - 1e-9:
            raise ConfigError(
                "guests.ha.admission_control",
                f"cluster {name} leaves {free_cpu:g} cpu / {free_memory:g} GB free, less than "
                f"the HA reserve of {reserve_cpu:g} cpu / {reserve_memory:g} GB ({ac.policy})",
            )


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
    """A failing component for every switch and power feed of the graph, and for every
    shared datastore (one per pod or per cluster, ``storage.scope``)."""
    processes, topo = fleet.config.component_processes, fleet.topology
    for name in [*topo.switches, *topo.feeds]:
        kind = topo.kind(name)
        fault, repair = processes[kind]
        fleet.components[name] = Component(fleet, name, kind, fault, repair)
    fault, repair = processes[NodeKind.STORAGE]
    for name in dict.fromkeys(datastore_of(h, fleet.config.storage.scope) for h in fleet.hosts):
        fleet.components[name] = Component(fleet, name, NodeKind.STORAGE, fault, repair)
