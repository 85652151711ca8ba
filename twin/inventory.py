"""A real fleet's host inventory (``hosts.inventory``): build the fleet exactly as listed.

The inventory is a CSV with one row per host::

    host,rack,pod,site,architecture[,cpu,memory_gb,drivers,cluster]
    esx-001,r01,p1,dc1,monolithic,64,512,nic;storage,prod-a

``architecture`` may be blank: the host then gets one from ``hosts.architecture_mix``.
``drivers`` lists the host's driver types (``;``-separated); when the column is present it
replaces the ``share`` of each ``drivers:`` entry. ``cluster`` names a host's HA/DRS cluster
(one pod, one architecture, within its product limit); hosts left blank are grouped by
``hosts.cluster_size``. The fabric around the hosts (spines per
pod, top-of-rack switches and power feeds per rack) follows the ``topology:`` counts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import networkx as nx

from twin.config import ARCHITECTURES, ConfigError
from twin.config.schema import TopologyConfig

REQUIRED = ("host", "rack", "pod", "site", "architecture")
WHERE = "hosts.inventory"


def _number(value: str, column: str, row: int) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(WHERE, f"row {row}: {column} {value!r} is not a number") from None
    if not number > 0:
        raise ConfigError(WHERE, f"row {row}: {column} must be > 0 (got {value})")
    return number


def read_inventory(path: Path) -> list[dict[str, object]]:
    """The inventory's rows, checked: required columns, unique hosts, known architectures,
    each rack in one pod and each pod in one site."""
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    except FileNotFoundError:
        raise ConfigError(WHERE, f"file not found: {path}") from None
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ConfigError(WHERE, f"{path}: missing column(s) {', '.join(missing)} "
                          f"(expected {', '.join(REQUIRED)})")  # fmt: skip
    if not rows:
        raise ConfigError(WHERE, f"{path}: no hosts listed")
    hosts: list[dict[str, object]] = []
    seen: set[str] = set()
    rack_home: dict[str, tuple[str, str]] = {}
    pod_site: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        name, rack, pod, site = row["host"], row["rack"], row["pod"], row["site"]
        for column in ("host", "rack", "pod", "site"):
            if not row[column]:
                raise ConfigError(WHERE, f"row {n}: {column} is empty")
        if name in seen:
            raise ConfigError(WHERE, f"row {n}: duplicate host {name!r}")
        seen.add(name)
        arch = row["architecture"]
        if arch and arch not in ARCHITECTURES:
            raise ConfigError(WHERE, f"row {n}: host {name!r} has architecture {arch!r}, "
                              f"expected one of {', '.join(ARCHITECTURES)} (or blank)")  # fmt: skip
        if rack_home.setdefault(rack, (pod, site)) != (pod, site):
            home_pod, home_site = rack_home[rack]
            where = f"it is in pod {home_pod!r} of site {home_site!r}"
            raise ConfigError(WHERE, f"row {n}: unknown rack {rack!r} in pod {pod!r} of site "
                              f"{site!r} ({where})")  # fmt: skip
        if pod_site.setdefault(pod, site) != site:
            raise ConfigError(WHERE, f"row {n}: pod {pod!r} is in site {pod_site[pod]!r}, "
                              f"not {site!r}")  # fmt: skip
        host: dict[str, object] = {"name": name, "rack": rack, "pod": pod, "site": site}
        if arch:
            host["architecture"] = arch
        for column in ("cpu", "memory_gb"):
            if row.get(column):
                host[column] = _number(row[column], column, n)
        if row.get("cluster"):
            host["cluster"] = row["cluster"]
        if "drivers" in columns:
            host["drivers"] = ";".join(d.strip() for d in row["drivers"].split(";") if d.strip())
        hosts.append(host)
    return hosts


def inventory_graph(hosts: list[dict[str, object]], cfg: TopologyConfig) -> nx.Graph:
    """The fleet graph around listed hosts: a core, ``cfg.spines`` spines per pod, and
    ``cfg.tors_per_rack`` switches and ``cfg.power_feeds_per_rack`` feeds per rack."""
    from twin.topology import NodeKind

    g = nx.Graph()
    g.add_node("core", kind=NodeKind.CORE)
    for host in hosts:
        pod, rack, site = str(host["pod"]), str(host["rack"]), host["site"]
        spines = [f"spine-{pod}-{k}" for k in range(cfg.spines)]
        if spines[0] not in g:
            for spine in spines:
                g.add_node(spine, kind=NodeKind.SPINE, pod=pod, site=site)
                g.add_edge("core", spine)
        tors = [f"tor-{rack}-{k}" for k in range(cfg.tors_per_rack)]
        feeds = [f"pdu-{rack}-{k}" for k in range(cfg.power_feeds_per_rack)]
        if tors[0] not in g:
            for tor in tors:
                g.add_node(tor, kind=NodeKind.TOR, rack=rack, pod=pod, site=site)
                g.add_edges_from((tor, spine) for spine in spines)
            for feed in feeds:
                g.add_node(feed, kind=NodeKind.POWER, rack=rack, pod=pod, site=site)
        attrs = {k: v for k, v in host.items() if k != "name"}
        g.add_node(str(host["name"]), kind=NodeKind.HOST, **attrs)
        g.add_edges_from((str(host["name"]), n) for n in [*tors, *feeds])
    return g


def write_inventory(path: Path, hosts: list[dict[str, object]]) -> None:
    """Write an inventory CSV (``host, rack, pod, site, architecture``)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUIRED)
        for h in hosts:
            writer.writerow([h["name"], h["rack"], h["pod"], h["site"], h.get("architecture", "")])
