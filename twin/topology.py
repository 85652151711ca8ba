"""The fleet's physical graph: sites, pods, racks, switches, power feeds and hosts.

The graph is plain NetworkX with a ``kind`` attribute on every node (see `NodeKind`).
It is built from the ``topology:`` section of a config, or read from a GraphML or
node-link JSON file. Reachability of hosts is a pure function of which switches
are down; the fleet recomputes it only when a switch changes state.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import networkx as nx
import numpy as np

from twin.config import ConfigError
from twin.config.schema import TopologyConfig


class NodeKind(StrEnum):
    """What a node of the fleet graph is."""

    CORE = "core"
    SPINE = "spine"
    TOR = "tor"
    HOST = "host"
    POWER = "power"
    STORAGE = "storage"


SWITCH_KINDS = frozenset({NodeKind.CORE, NodeKind.SPINE, NodeKind.TOR})


@dataclass
class Topology:
    """A fleet graph with the indexes the engine needs, built once.

    Hosts are numbered 0..n-1 in a stable order; every per-host array in the
    engine uses that numbering.
    """

    graph: nx.Graph
    hosts: list[str] = field(init=False)
    host_rack: list[str] = field(init=False)
    host_pod: list[str] = field(init=False)
    host_site: list[str] = field(init=False)
    racks: list[str] = field(init=False)
    rack_hosts: dict[str, list[int]] = field(init=False)
    switches: list[str] = field(init=False)
    feeds: list[str] = field(init=False)
    host_feeds: list[tuple[str, ...]] = field(init=False)
    feed_hosts: dict[str, list[int]] = field(init=False)
    _uplink_groups: dict[frozenset[str], list[int]] = field(init=False)
    _switch_graph: nx.Graph = field(init=False)
    _cores: list[str] = field(init=False)

    def __post_init__(self) -> None:
        g = self.graph
        kind = nx.get_node_attributes(g, "kind")
        self.hosts = sorted((n for n, k in kind.items() if k == NodeKind.HOST), key=_natural)
        self._cores = [n for n, k in kind.items() if k == NodeKind.CORE]
        self.switches = [n for n, k in kind.items() if k in (NodeKind.SPINE, NodeKind.TOR)]
        self.feeds = [n for n, k in kind.items() if k == NodeKind.POWER]
        self.host_rack = [str(g.nodes[h].get("rack", "")) for h in self.hosts]
        self.host_pod = [str(g.nodes[h].get("pod", "")) for h in self.hosts]
        self.host_site = [str(g.nodes[h].get("site", "")) for h in self.hosts]
        self.racks = sorted(set(self.host_rack), key=_natural)
        self.rack_hosts = defaultdict(list)
        for i, rack in enumerate(self.host_rack):
            self.rack_hosts[rack].append(i)
        self.rack_hosts = dict(self.rack_hosts)
        self.host_feeds = []
        self.feed_hosts = {f: [] for f in self.feeds}
        self._uplink_groups = defaultdict(list)
        for i, h in enumerate(self.hosts):
            nbrs = list(g.neighbors(h))
            feeds = tuple(n for n in nbrs if kind.get(n) == NodeKind.POWER)
            self.host_feeds.append(feeds)
            for f in feeds:
                self.feed_hosts[f].append(i)
            uplinks = frozenset(n for n in nbrs if kind.get(n) in SWITCH_KINDS)
            self._uplink_groups[uplinks].append(i)
        self._switch_graph = g.subgraph(n for n, k in kind.items() if k in SWITCH_KINDS).copy()

    @property
    def n_hosts(self) -> int:
        return len(self.hosts)

    def kind(self, node: str) -> NodeKind:
        return NodeKind(self.graph.nodes[node]["kind"])

    def rack_of_switch(self, switch: str) -> str | None:
        rack = self.graph.nodes[switch].get("rack")
        return None if rack is None else str(rack)

    def tors_of_rack(self, rack: str) -> list[str]:
        return [
            n
            for n, d in self.graph.nodes(data=True)
            if d.get("kind") == NodeKind.TOR and str(d.get("rack")) == rack
        ]

    def feeds_of_rack(self, rack: str) -> list[str]:
        return sorted({f for i in self.rack_hosts.get(rack, []) for f in self.host_feeds[i]})

    def reachable_hosts(self, down_switches: Iterable[str]) -> np.ndarray:
        """Which hosts have a path of up switches to a core switch (a bool per host).

        A host with no switch neighbour at all is taken as directly attached and
        always reachable.
        """
        down = set(down_switches)
        up_graph = nx.restricted_view(self._switch_graph, down, [])
        reached: set[str] = set()
        for core in self._cores:
            if core not in down and core not in reached:
                reached |= nx.node_connected_component(up_graph, core)
        result = np.zeros(self.n_hosts, dtype=bool)
        for uplinks, members in self._uplink_groups.items():
            if not uplinks or uplinks & reached:
                result[members] = True
        return result

    def powered_hosts(self, down_feeds: Iterable[str]) -> np.ndarray:
        """Which hosts have at least one live power feed (hosts without feeds always do)."""
        down = set(down_feeds)
        return np.array([not f or any(x not in down for x in f) for f in self.host_feeds])


def _natural(name: str) -> tuple:
    """Sort key that orders h2 before h10."""
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return (head, int(tail) if tail else -1, name)


def build_topology(
    cfg: TopologyConfig, inventory: str | None = None, site: int | None = None
) -> Topology:
    """Build the fleet graph described by a ``topology:`` section (or read ``file``), or
    around the hosts of an ``inventory`` CSV (see `twin.inventory`).

    With ``site``, only that site of the generated fabric (and the core), its racks and
    hosts named as in the whole fleet: a site that shares nothing, to be run apart."""
    if inventory:
        from twin.inventory import inventory_graph, read_inventory

        return Topology(inventory_graph(read_inventory(Path(inventory)), cfg))
    if cfg.file:
        return load_topology(Path(cfg.file))
    g = nx.Graph()
    g.add_node("core", kind=NodeKind.CORE)
    sites = range(cfg.sites) if site is None else [site]
    rack_index = sites[0] * cfg.pods * cfg.racks_per_pod
    host_index = rack_index * cfg.hosts_per_rack
    for s in sites:
        for p in range(cfg.pods):
            pod = f"s{s}p{p}"
            spines = [f"spine-{pod}-{k}" for k in range(cfg.spines)]
            for spine in spines:
                g.add_node(spine, kind=NodeKind.SPINE, pod=pod, site=s)
                g.add_edge("core", spine)
            storage = f"san-{pod}"
            g.add_node(storage, kind=NodeKind.STORAGE, pod=pod, site=s)
            g.add_edges_from((storage, spine) for spine in spines)
            for _ in range(cfg.racks_per_pod):
                rack = f"r{rack_index}"
                rack_index += 1
                tors = [f"tor-{rack}-{k}" for k in range(cfg.tors_per_rack)]
                feeds = [f"pdu-{rack}-{k}" for k in range(cfg.power_feeds_per_rack)]
                for tor in tors:
                    g.add_node(tor, kind=NodeKind.TOR, rack=rack, pod=pod, site=s)
                    g.add_edges_from((tor, spine) for spine in spines)
                for feed in feeds:
                    g.add_node(feed, kind=NodeKind.POWER, rack=rack, pod=pod, site=s)
                for _ in range(cfg.hosts_per_rack):
                    host = f"h{host_index}"
                    host_index += 1
                    g.add_node(host, kind=NodeKind.HOST, rack=rack, pod=pod, site=s)
                    g.add_edges_from((host, tor) for tor in tors)
                    g.add_edges_from((host, feed) for feed in feeds)
    return Topology(g)


def load_topology(path: Path) -> Topology:
    """Read a fleet graph from GraphML (``.graphml``) or node-link JSON (anything else).

    Every node needs a ``kind`` in `NodeKind`; hosts need a ``rack`` (or get the rack
    of their top-of-rack switch). Errors name ``topology.file`` and what is wrong.
    """
    where = "topology.file"
    try:
        if path.suffix.lower() == ".graphml":
            g = nx.Graph(nx.read_graphml(path))
        else:
            g = nx.node_link_graph(json.loads(path.read_text()), edges="links")
    except FileNotFoundError as err:
        raise ConfigError(where, f"file not found: {path}") from err
    except Exception as err:  # any parse failure is a user error here
        raise ConfigError(where, f"cannot read {path}: {err}".splitlines()[0]) from err
    g = nx.relabel_nodes(g, {n: str(n) for n in g.nodes})
    kinds = {k.value for k in NodeKind}
    for node, data in g.nodes(data=True):
        kind = data.get("kind")
        if kind not in kinds:
            raise ConfigError(
                where, f"node {node!r} has kind {kind!r}, expected one of {sorted(kinds)}"
            )
        data["kind"] = NodeKind(kind)
    for node, data in g.nodes(data=True):
        if data["kind"] == NodeKind.HOST and "rack" not in data:
            tors = [n for n in g.neighbors(node) if g.nodes[n]["kind"] == NodeKind.TOR]
            if not tors or "rack" not in g.nodes[tors[0]]:
                raise ConfigError(where, f"host {node!r} has no rack and no top-of-rack switch")
            data["rack"] = g.nodes[tors[0]]["rack"]
    if not any(d["kind"] == NodeKind.CORE for _, d in g.nodes(data=True)):
        raise ConfigError(where, "the graph has no node of kind 'core'")
    if not any(d["kind"] == NodeKind.HOST for _, d in g.nodes(data=True)):
        raise ConfigError(where, "the graph has no node of kind 'host'")
    return Topology(g)


def write_topology(topology: Topology, path: Path) -> None:
    """Write the graph as GraphML or node-link JSON, by the file's suffix."""
    g = nx.Graph()
    for node, data in topology.graph.nodes(data=True):
        g.add_node(node, **{k: (str(v) if k == "kind" else v) for k, v in data.items()})
    g.add_edges_from(topology.graph.edges)
    if path.suffix.lower() == ".graphml":
        nx.write_graphml(g, path)
    else:
        path.write_text(json.dumps(nx.node_link_data(g, edges="links"), indent=1))
