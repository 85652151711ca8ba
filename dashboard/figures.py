"""What the dashboard shows: a plain-data view of the fleet taken under the runner's lock,
and the Plotly figures drawn from it outside the lock.

`take_view` and `rack_links` read only the fleet's public state; every other function
here is a pure function of a `FleetView`, so it is tested without a server.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from twin import Fleet
from twin.agents import UP_STATES, ComponentState, HostState
from twin.architectures import BEHAVIOURS
from twin.topology import NodeKind

UNREACHABLE = "unreachable"
"""The heatmap's one state of its own: a host that is up for its hypervisor but cut off
from the network (its guests run but their users cannot reach them)."""

STATES: tuple[str, ...] = (*(s.value for s in HostState), UNREACHABLE)
"""Host states as the heatmap shows them: the twin's `HostState`, then ``unreachable``."""

STATE_COLOURS: dict[str, str] = {
    HostState.RUNNING: "#2ca02c",
    HostState.DEGRADED: "#f2c80f",
    HostState.DRAINING: "#7fc8f8",
    HostState.MAINTENANCE: "#1f77b4",
    HostState.REBOOTING: "#ff7f0e",
    HostState.CRASHED: "#d62728",
    HostState.HW_FAILED: "#7b0000",
    UNREACHABLE: "#9467bd",
}
"""A colour per host state (a state the twin adds later is drawn in `OTHER_COLOUR`)."""
OTHER_COLOUR = "#888888"
FLEET_COLOUR = "#333333"
ARCHITECTURE_PALETTE = (
    "#d62728", "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e",
)  # fmt: skip
"""Colours given to the behaviour table's architectures in its order (then round again)."""
HIT_COLOUR = "#000000"
"""The outline of hosts, racks and components an injection hit, until it is over."""
UP_COLOUR, DOWN_COLOUR = "#2ca02c", "#d62728"
MAX_POINTS = 1500
"""Points drawn per availability series; longer histories are thinned evenly."""
EVENT_ROWS = 15


@dataclass
class HostCell:
    """One host as the heatmap shows it."""

    name: str
    rack: str
    architecture: str
    state: str
    guests: int
    cluster: str = ""


@dataclass(frozen=True)
class Hits:
    """What the injections being watched hit: drawn outlined until they are over."""

    hosts: frozenset[str] = frozenset()
    racks: frozenset[str] = frozenset()
    components: frozenset[str] = frozenset()

    def __or__(self, other: Hits) -> Hits:
        return Hits(self.hosts | other.hosts, self.racks | other.racks,
                    self.components | other.components)  # fmt: skip


@dataclass
class FleetView:
    """A consistent copy of what the dashboard shows, taken at one simulated instant."""

    time: float
    metrics: dict[str, float]
    architectures: list[str]
    samples: list[tuple[float, str, float]]
    racks: list[str]
    hosts: list[HostCell]
    components: dict[str, str]
    events: list[tuple[float, str, str, str, str | None]]
    incidents: list[tuple[str, int]]
    operators: list[str]
    tickets_waiting: int
    rack_links: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    spines: dict[str, list[str]] = field(default_factory=dict)
    datastores: dict[str, list[str]] = field(default_factory=dict)
    """Each shared datastore's racks (the racks of the hosts whose guests it holds)."""
    hits: Hits = field(default_factory=Hits)
    guest_downtime: list[float] = field(default_factory=list)
    """Each guest's own downtime so far, minutes per guest-year (`guest_downtimes`)."""


# -- the vocabulary: names come from the twin's tables and enums, never from literals ----


def architecture_names() -> list[str]:
    """Every architecture of the behaviour table, in its order."""
    return list(BEHAVIOURS)


def architecture_colour(name: str) -> str:
    """The colour of an architecture (or of the fleet, ``*``) in every view: the palette's
    colour at the architecture's place in the behaviour table, so a new one just works."""
    names = architecture_names()
    if name not in names:
        return FLEET_COLOUR if name == "*" else OTHER_COLOUR
    return ARCHITECTURE_PALETTE[names.index(name) % len(ARCHITECTURE_PALETTE)]


def label(value: Any) -> str:
    """The name of a state or a cause as the twin writes it, enum member or plain string."""
    return str(getattr(value, "value", value))


def host_state(host: Any) -> str:
    """What the heatmap calls a host's state: its own, or ``unreachable`` when the network
    has cut off a host that is otherwise up."""
    if host.state in UP_STATES and not host.reachable:
        return UNREACHABLE
    return label(host.state)


def host_cell(host: Any, cluster: str) -> HostCell:
    """A host as the heatmap shows it."""
    state = host_state(host)
    return HostCell(host.name, host.rack, host.architecture, state, host.guest_count, cluster)


def cluster_names(fleet: Fleet) -> dict[str, str]:
    """Each host's HA/DRS cluster (`Fleet.clusters`), named by its key: ``pod0/monolithic``."""
    names: dict[str, str] = {}
    for key, hosts in fleet.clusters.items():
        name = "/".join(map(label, key)) if isinstance(key, tuple) else label(key)
        names |= {h.name: name for h in hosts}
    return names


def take_view(
    fleet: Fleet, guest_names: frozenset[str] = frozenset(), hits: Hits | None = None
) -> FleetView:
    """Copy what the dashboard shows out of the fleet; call it holding the runner's lock.

    Guest state changes are left out of the event table (a host crash logs one per guest).
    """
    events: list[tuple[float, str, str, str, str | None]] = []
    for event in reversed(fleet.events):
        if event[1] not in guest_names:
            t, entity, frm, to, cause = event
            events.append((t, entity, label(frm), label(to), cause and label(cause)))
            if len(events) == EVENT_ROWS:
                break
    topo = fleet.topology
    clusters = cluster_names(fleet)
    return FleetView(
        time=fleet.time,
        metrics=fleet.metrics(),
        architectures=list(fleet.architectures),
        samples=[(s.time, s.scope, s.guest_availability_so_far) for s in fleet.samples],
        racks=list(topo.racks),
        hosts=[host_cell(h, clusters.get(h.name, "")) for h in fleet.hosts],
        components={name: label(c.state) for name, c in fleet.components.items()},
        events=events,
        incidents=[(label(i.cause), i.blast_radius) for i in fleet.incidents],
        operators=[label(o.state) for o in fleet.operators.operators],
        tickets_waiting=fleet.operators.waiting,
        hits=hits or Hits(),
        guest_downtime=guest_downtimes(fleet),
    )


Links = tuple[dict[str, tuple[list[str], list[str]]], dict[str, list[str]], dict[str, list[str]]]
"""Each rack's (ToRs, power feeds), each ToR's spines, and each datastore's racks."""


def rack_links(fleet: Fleet) -> Links:
    """Each rack's ToRs and power feeds, each ToR's spines and each shared datastore's
    racks: the topology view's edges. Computed once per fleet (the graph does not change
    while it runs; a datastore's hosts are those placed on it when the fleet was built)."""
    topo = fleet.topology
    links = {r: (topo.tors_of_rack(r), topo.feeds_of_rack(r)) for r in topo.racks}
    spines = {
        tor: sorted(n for n in topo.graph.neighbors(tor) if topo.kind(n) is NodeKind.SPINE)
        for tors, _ in links.values()
        for tor in tors
    }
    datastores = {
        name: list(dict.fromkeys(host.rack for host in hosts))
        for name, hosts in fleet.infrastructure.datastore_hosts.items()
    }
    return links, spines, datastores


# -- KPI cards ----------------------------------------------------------------------------


def nines(availability: float) -> float:
    """Availability in nines: 0.999 is 3 nines; a perfect record is shown as infinity."""
    return math.inf if availability >= 1.0 else -math.log10(1.0 - availability)


def scope_metric(metrics: dict[str, float], scope: str, name: str) -> float:
    """One metric for the fleet (``*``) or one architecture."""
    return metrics.get(name if scope == "*" else f"by_architecture.{scope}.{name}", 0.0)


def incident_count(metrics: dict[str, float], scope: str) -> int:
    prefix = "incidents." if scope == "*" else f"by_architecture.{scope}.incidents."
    return int(sum(v for k, v in metrics.items() if k.startswith(prefix)))


def kpis(view: FleetView) -> list[dict[str, Any]]:
    """The KPI cards: a title and one formatted value per scope (fleet first)."""
    scopes = ["*", *view.architectures]

    def availability(scope: str) -> str:
        a = scope_metric(view.metrics, scope, "guest_availability")
        n = nines(a)
        return f"{a:.5%} ({'∞' if math.isinf(n) else f'{n:.2f}'} nines)"

    rows = {
        "Guest availability": availability,
        "Guest downtime (min/year)": lambda s: (
            f"{scope_metric(view.metrics, s, 'guest_downtime_min_per_year'):,.1f}"
        ),
        "Incidents": lambda s: f"{incident_count(view.metrics, s):,d}",
        "Degraded host time (min/year)": lambda s: (
            f"{scope_metric(view.metrics, s, 'degraded_min_per_year'):,.1f}"
        ),
    }
    return [
        {"title": title, "values": [("fleet" if s == "*" else s, fmt(s)) for s in scopes]}
        for title, fmt in rows.items()
    ]


# -- figures ------------------------------------------------------------------------------
# Figures are plain dicts in Plotly's JSON shape: Dash sends them as they are, without
# plotly.py's validation, which would cost more than the rest of a refresh together.

Figure = dict[str, Any]


def figure(data: list[dict[str, Any]], title: str, height: int = 300, **layout: Any) -> Figure:
    """A figure with the dashboard's common layout; ``uirevision`` keeps zoom across ticks."""
    base = {
        "title": {"text": title}, "height": height, "uirevision": "keep",
        "margin": {"l": 50, "r": 10, "t": 40, "b": 35},
        "paper_bgcolor": "white", "plot_bgcolor": "white",
    }  # fmt: skip
    return {"data": data, "layout": base | layout}


def thin(points: list[Any], limit: int = MAX_POINTS) -> list[Any]:
    """Every k-th point so that at most ``limit`` remain, always keeping the latest."""
    if len(points) <= limit:
        return points
    step = math.ceil(len(points) / limit)
    return [*points[:-1:step], points[-1]]


def availability_figure(view: FleetView) -> Figure:
    """Guest availability to date over simulated time, one line per architecture."""
    traces = []
    for scope in ["*", *view.architectures]:
        points = thin([(t, a) for t, s, a in view.samples if s == scope])
        traces.append({
            "type": "scatter", "mode": "lines", "name": "fleet" if scope == "*" else scope,
            "x": [t / 24.0 for t, _ in points], "y": [a for _, a in points],
            "line": {"color": architecture_colour(scope)},
        })  # fmt: skip
    return figure(
        traces, "Availability over time",
        xaxis={"title": {"text": "simulated days"}, "gridcolor": "#eee"},
        yaxis={"title": {"text": "guest availability to date"}, "tickformat": ".3%",
               "gridcolor": "#eee"},
        legend={"orientation": "h", "y": -0.25},
        margin={"l": 80, "r": 10, "t": 40, "b": 35},
    )  # fmt: skip


GROUPINGS = ("rack", "cluster")
"""What the heatmap's rows can be: racks, or HA/DRS clusters (`Fleet.clusters`)."""


def heatmap_rows(view: FleetView, group: str = "rack") -> dict[str, list[HostCell]]:
    """The heatmap's rows in order: every rack (an empty one too), or every cluster."""
    rows: dict[str, list[HostCell]] = {r: [] for r in view.racks} if group == "rack" else {}
    for cell in view.hosts:
        rows.setdefault(cell.rack if group == "rack" else cell.cluster, []).append(cell)
    return rows


def hit_outline(x0: float, x1: float, row: int, name: str) -> dict[str, Any]:
    """A black frame around heatmap cells ``x0..x1`` of ``row``: what an injection hit."""
    return {
        "type": "rect", "xref": "x", "yref": "y", "name": name,
        "x0": x0 - 0.5, "x1": x1 + 0.5, "y0": row - 0.5, "y1": row + 0.5,
        "line": {"color": HIT_COLOUR, "width": 3},
    }  # fmt: skip


def runs(flags: list[bool]) -> list[tuple[int, int]]:
    """The first and last index of each run of consecutive true flags."""
    out: list[tuple[int, int]] = []
    for j, flag in enumerate(flags):
        if flag and out and out[-1][1] == j - 1:
            out[-1] = (out[-1][0], j)
        elif flag:
            out.append((j, j))
    return out


def heatmap_figure(view: FleetView, group: str = "rack") -> Figure:
    """Racks (or clusters) as rows, hosts as cells coloured by state, what an injection hit
    outlined; hover names host, architecture, state, guests, rack and cluster.
    ``customdata`` carries the same per cell, for tests and tools."""
    rows = heatmap_rows(view, group)
    width = max((len(c) for c in rows.values()), default=0)
    code = {s: i for i, s in enumerate(STATES)}
    z: list[list[int | None]] = []
    custom: list[list[list[Any]]] = []
    shapes: list[dict[str, Any]] = []
    for i, (row, cells) in enumerate(rows.items()):
        pad = width - len(cells)
        z.append([code.get(c.state) for c in cells] + [None] * pad)
        custom.append(
            [[c.name, c.architecture, c.state, c.guests, c.rack, c.cluster] for c in cells]
            + [["", "", "", 0, "", ""]] * pad
        )
        if group == "rack" and row in view.hits.racks:
            shapes.append(hit_outline(0, width - 1, i, f"hit: {row}"))
            continue
        shapes += [hit_outline(j0, j1, i, "hit: " + ", ".join(c.name for c in cells[j0:j1 + 1]))
                   for j0, j1 in runs([c.name in view.hits.hosts for c in cells])]  # fmt: skip
    n = len(STATES)
    scale: list[list[Any]] = []
    for i, state in enumerate(STATES):
        colour = STATE_COLOURS.get(state, OTHER_COLOUR)
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    trace = {
        "type": "heatmap", "z": z, "y": list(rows), "customdata": custom,
        "zmin": -0.5, "zmax": n - 0.5, "colorscale": scale, "xgap": 1, "ygap": 1,
        "colorbar": {"tickvals": list(range(n)), "ticktext": list(STATES), "thickness": 12},
        "hovertemplate": "%{customdata[0]} (rack %{customdata[4]}, cluster %{customdata[5]})"
                         "<br>%{customdata[1]}<br>%{customdata[2]}"
                         "<br>%{customdata[3]} guests<extra></extra>",
    }  # fmt: skip
    title = f"Hosts by {group}" + (" · outlined: hit by an injection" if shapes else "")
    left = 30 + 7 * max((len(r) for r in rows), default=0)  # row names are never cut
    return figure(
        [trace], title, height=max(260, 60 + 18 * len(rows)), shapes=shapes,
        margin={"l": left, "r": 10, "t": 40, "b": 35},
        yaxis={"autorange": "reversed", "title": {"text": group}, "type": "category"},
        xaxis={"title": {"text": "slot"}, "showgrid": False},
    )  # fmt: skip


def topology_figure(view: FleetView) -> Figure:
    """Core, spines, ToRs, racks, power feeds and shared datastores; switches, feeds and
    datastores red when down, racks coloured by the share of their hosts serving."""
    serving: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for cell in view.hosts:
        total[cell.rack] += 1
        serving[cell.rack] += cell.state in UP_STATES
    pos: dict[str, tuple[float, float]] = {}
    racks = view.racks
    for i, rack in enumerate(racks):
        pos[rack] = (float(i), 1.0)
        tors, feeds = view.rack_links.get(rack, ([], []))
        for k, tor in enumerate(tors):
            pos[tor] = (i + (k - (len(tors) - 1) / 2) * 0.3, 2.0)
        for k, feed in enumerate(feeds):
            pos[feed] = (i + (k - (len(feeds) - 1) / 2) * 0.3, 0.0)
    spine_x: dict[str, list[float]] = {}
    for tor, spines in view.spines.items():
        for spine in spines:
            spine_x.setdefault(spine, []).append(pos.get(tor, (0.0, 0.0))[0])
    for spine, xs in spine_x.items():
        pos[spine] = (sum(xs) / len(xs), 3.0)
    for datastore, its_racks in view.datastores.items():
        xs = [pos[r][0] for r in its_racks if r in pos]
        if xs:
            pos[datastore] = (sum(xs) / len(xs), -1.0)
    pos["core"] = ((len(racks) - 1) / 2, 4.0)
    edges: list[tuple[str, str]] = [("core", s) for s in spine_x]
    edges += [(t, s) for t, spines in view.spines.items() for s in spines]
    for rack, (tors, feeds) in view.rack_links.items():
        edges += [(rack, t) for t in tors] + [(rack, f) for f in feeds]
    edges += [(r, d) for d, its_racks in view.datastores.items() for r in its_racks]
    ex: list[float | None] = []
    ey: list[float | None] = []
    for a, b in edges:
        if a in pos and b in pos:
            ex += [pos[a][0], pos[b][0], None]
            ey += [pos[a][1], pos[b][1], None]
    parts = [n for n in pos if n not in total]
    share = [serving[r] / total[r] if total[r] else 1.0 for r in racks]
    traces = [
        {"type": "scatter", "mode": "lines", "x": ex, "y": ey, "hoverinfo": "skip",
         "line": {"color": "#bbb", "width": 1}},
        {"type": "scatter", "mode": "markers", "x": [pos[n][0] for n in parts],
         "y": [pos[n][1] for n in parts], "hoverinfo": "text",
         "text": [f"{n}: {view.components.get(n, ComponentState.UP.value)}" for n in parts],
         "marker": {"size": 10, "symbol": "square",
                    "color": [DOWN_COLOUR if view.components.get(n) == ComponentState.DOWN
                              else UP_COLOUR for n in parts]}},
        {"type": "scatter", "mode": "markers", "x": [pos[r][0] for r in racks],
         "y": [1.0] * len(racks), "hoverinfo": "text",
         "text": [f"{r}: {serving[r]}/{total[r]} hosts serving" for r in racks],
         "marker": {"size": 18, "color": share, "cmin": 0, "cmax": 1,
                    "colorscale": [[0, DOWN_COLOUR], [0.5, "#ff7f0e"], [1, UP_COLOUR]]}},
    ]  # fmt: skip
    hit = [n for n in pos if n in view.hits.racks or n in view.hits.components]
    if hit:
        traces.append({
            "type": "scatter", "mode": "markers", "name": "hit by an injection",
            "x": [pos[n][0] for n in hit], "y": [pos[n][1] for n in hit],
            "text": [f"{n}: hit by an injection" for n in hit], "hoverinfo": "text",
            "marker": {"size": 30, "symbol": "circle-open", "color": HIT_COLOUR,
                       "line": {"color": HIT_COLOUR, "width": 3}},
        })  # fmt: skip
    title = "Topology (racks: share of hosts serving)" + (" · ringed: hit" if hit else "")
    return figure(
        traces, title, showlegend=False,
        xaxis={"visible": False},
        yaxis={"tickvals": [-1, 0, 1, 2, 3, 4],
               "ticktext": ["storage", "power", "racks", "ToR", "spine", "core"],
               "showgrid": False, "zeroline": False, "range": [-1.5, 4.5]},
    )  # fmt: skip


def incidents_figure(view: FleetView) -> Figure:
    """Incidents so far, by cause."""
    counts = Counter(cause for cause, _ in view.incidents)
    causes = sorted(counts, key=lambda c: -counts[c])
    bar = {"type": "bar", "x": causes, "y": [counts[c] for c in causes],
           "marker": {"color": "#1f77b4"}}  # fmt: skip
    return figure([bar], "Incidents by cause", yaxis={"title": {"text": "incidents"}})


def blast_radius_figure(view: FleetView) -> Figure:
    """How many guests each incident took down."""
    hist = {"type": "histogram", "x": [r for _, r in view.incidents],
            "marker": {"color": "#ff7f0e"}}  # fmt: skip
    return figure(
        [hist], "Blast radius",
        xaxis={"title": {"text": "guests lost per incident"}},
        yaxis={"title": {"text": "incidents"}},
    )  # fmt: skip


def operators_figure(view: FleetView) -> Figure:
    """Operators by state now, and the tickets waiting for one."""
    counts = Counter(view.operators)
    labels = [*sorted(counts), "tickets waiting"]
    values = [*(counts[s] for s in sorted(counts)), view.tickets_waiting]
    util = view.metrics.get("operator_utilization", 0.0)
    bar = {"type": "bar", "x": labels, "y": values, "marker": {"color": "#9467bd"}}
    return figure([bar], f"Operators (utilisation so far {util:.1%})")


def events_rows(view: FleetView) -> list[dict[str, Any]]:
    """The latest state changes, newest first, as table rows."""
    return [
        {"time (h)": round(t, 3), "entity": e, "from": f, "to": to, "cause": c or ""}
        for t, e, f, to, c in view.events
    ]


def guest_downtimes(fleet: Fleet) -> list[float]:
    """Each guest's own downtime so far, minutes per guest-year (read it under the
    runner's lock, with `take_view`)."""
    from twin.slo import guest_downtimes as per_guest

    return per_guest(fleet.guest_books()).tolist()


def guest_downtime_figure(minutes_per_year: list[float]) -> Figure:
    """A histogram of each guest's own downtime (`guest_downtimes`), p50/p90/p99 in the
    title (as the metrics compute them): who gets the worst of it. Binned here, so that a
    refresh sends 50 bars and not one number per guest."""
    import numpy as np

    from twin.slo import downtime_percentiles

    minutes = np.asarray(minutes_per_year, dtype=float)
    p = downtime_percentiles(minutes)
    title = "Each guest's downtime"
    if p:
        title += " (p50 {:.1f}, p90 {:.1f}, p99 {:.1f} min/yr)".format(*p.values())
    counts, edges = np.histogram(minutes, bins=50 if minutes.size else 1)
    bars = {
        "type": "bar",
        "x": ((edges[:-1] + edges[1:]) / 2).tolist(),
        "y": counts.tolist(),
        "width": float(edges[1] - edges[0]),
        "marker": {"color": "#457b9d"},
        "hovertemplate": "%{y} guests near %{x:.1f} min/yr<extra></extra>",
    }
    return figure(
        [bars], title,
        xaxis={"title": {"text": "downtime (minutes per guest-year)"}},
        yaxis={"title": {"text": "guests"}, "type": "log"},
    )  # fmt: skip
