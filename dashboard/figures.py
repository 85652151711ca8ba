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

STATES = (
    "running",
    "degraded",
    "draining",
    "maintenance",
    "rebooting",
    "crashed",
    "hw_failed",
    "unreachable",
)
"""Host states as the heatmap shows them; ``unreachable`` is a running host cut off from
the network (its guests are up for the hypervisor but not for their users)."""

STATE_COLOURS = {
    "running": "#2ca02c",
    "degraded": "#f2c80f",
    "draining": "#7fc8f8",
    "maintenance": "#1f77b4",
    "rebooting": "#ff7f0e",
    "crashed": "#d62728",
    "hw_failed": "#7b0000",
    "unreachable": "#9467bd",
}
ARCH_COLOURS = {"*": "#333333", "monolithic": "#d62728", "microkernel": "#1f77b4"}
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


def host_state(host: Any) -> str:
    """What the heatmap calls a host's state: its own, or ``unreachable`` when the network
    has cut off a host that is otherwise up."""
    state = str(host.state.value)
    if state in ("running", "degraded", "draining") and not host.reachable:
        return "unreachable"
    return state


def take_view(fleet: Fleet, guest_names: frozenset[str] = frozenset()) -> FleetView:
    """Copy what the dashboard shows out of the fleet; call it holding the runner's lock.

    Guest state changes are left out of the event table (a host crash logs one per guest).
    """
    events: list[tuple[float, str, str, str, str | None]] = []
    for event in reversed(fleet.events):
        if event[1] not in guest_names:
            events.append(event)
            if len(events) == EVENT_ROWS:
                break
    topo = fleet.topology
    return FleetView(
        time=fleet.time,
        metrics=fleet.metrics(),
        architectures=list(fleet.architectures),
        samples=[(s[0], s[1], s[7]) for s in fleet.samples],
        racks=list(topo.racks),
        hosts=[
            HostCell(h.name, h.rack, h.architecture, host_state(h), h.guest_count)
            for h in fleet.hosts
        ],
        components={name: c.state.value for name, c in fleet.components.items()},
        events=events,
        incidents=[(i.cause, i.blast_radius) for i in fleet.incidents],
        operators=[str(o.state.value) for o in fleet.operators.operators],
        tickets_waiting=fleet.operators.waiting,
    )


Links = tuple[dict[str, tuple[list[str], list[str]]], dict[str, list[str]]]
"""Each rack's (ToRs, power feeds), and each ToR's spines."""


def rack_links(fleet: Fleet) -> Links:
    """Each rack's ToRs and power feeds, and each ToR's spines: the topology view's edges.
    Computed once per fleet (the graph does not change while it runs)."""
    topo = fleet.topology
    links = {r: (topo.tors_of_rack(r), topo.feeds_of_rack(r)) for r in topo.racks}
    spines = {
        tor: sorted(n for n in topo.graph.neighbors(tor) if topo.kind(n).value == "spine")
        for tors, _ in links.values()
        for tor in tors
    }
    return links, spines


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
            "line": {"color": ARCH_COLOURS.get(scope, "#888")},
        })  # fmt: skip
    return figure(
        traces, "Availability over time",
        xaxis={"title": {"text": "simulated days"}, "gridcolor": "#eee"},
        yaxis={"title": {"text": "guest availability to date"}, "tickformat": ".3%",
               "gridcolor": "#eee"},
        legend={"orientation": "h", "y": -0.25},
        margin={"l": 80, "r": 10, "t": 40, "b": 35},
    )  # fmt: skip


def heatmap_figure(view: FleetView) -> Figure:
    """Racks as rows, hosts as cells coloured by state; hover names host, architecture,
    state and guests. ``customdata`` carries the same per cell, for tests and tools."""
    by_rack: dict[str, list[HostCell]] = {r: [] for r in view.racks}
    for cell in view.hosts:
        by_rack.setdefault(cell.rack, []).append(cell)
    width = max((len(c) for c in by_rack.values()), default=0)
    code = {s: i for i, s in enumerate(STATES)}
    z: list[list[int | None]] = []
    custom: list[list[list[Any]]] = []
    for rack in view.racks:
        cells = by_rack[rack]
        pad = width - len(cells)
        z.append([code[c.state] for c in cells] + [None] * pad)
        custom.append(
            [[c.name, c.architecture, c.state, c.guests] for c in cells] + [["", "", "", 0]] * pad
        )
    n = len(STATES)
    scale: list[list[Any]] = []
    for i, state in enumerate(STATES):
        scale += [[i / n, STATE_COLOURS[state]], [(i + 1) / n, STATE_COLOURS[state]]]
    trace = {
        "type": "heatmap", "z": z, "y": view.racks, "customdata": custom,
        "zmin": -0.5, "zmax": n - 0.5, "colorscale": scale, "xgap": 1, "ygap": 1,
        "colorbar": {"tickvals": list(range(n)), "ticktext": list(STATES), "thickness": 12},
        "hovertemplate": "%{customdata[0]} (%{y})<br>%{customdata[1]}<br>%{customdata[2]}"
                         "<br>%{customdata[3]} guests<extra></extra>",
    }  # fmt: skip
    return figure(
        [trace], "Hosts by rack", height=max(260, 60 + 18 * len(view.racks)),
        yaxis={"autorange": "reversed", "title": {"text": "rack"}, "type": "category"},
        xaxis={"title": {"text": "slot"}, "showgrid": False},
    )  # fmt: skip


def topology_figure(view: FleetView) -> Figure:
    """Core, spines, ToRs, racks and power feeds; switches and feeds red when down, racks
    coloured by the share of their hosts serving."""
    serving: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for cell in view.hosts:
        total[cell.rack] += 1
        serving[cell.rack] += cell.state in ("running", "degraded", "draining")
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
    pos["core"] = ((len(racks) - 1) / 2, 4.0)
    edges: list[tuple[str, str]] = [("core", s) for s in spine_x]
    edges += [(t, s) for t, spines in view.spines.items() for s in spines]
    for rack, (tors, feeds) in view.rack_links.items():
        edges += [(rack, t) for t in tors] + [(rack, f) for f in feeds]
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
         "text": [f"{n}: {view.components.get(n, 'up')}" for n in parts],
         "marker": {"size": 10, "symbol": "square",
                    "color": [DOWN_COLOUR if view.components.get(n) == "down" else UP_COLOUR
                              for n in parts]}},
        {"type": "scatter", "mode": "markers", "x": [pos[r][0] for r in racks],
         "y": [1.0] * len(racks), "hoverinfo": "text",
         "text": [f"{r}: {serving[r]}/{total[r]} hosts serving" for r in racks],
         "marker": {"size": 18, "color": share, "cmin": 0, "cmax": 1,
                    "colorscale": [[0, DOWN_COLOUR], [0.5, "#ff7f0e"], [1, UP_COLOUR]]}},
    ]  # fmt: skip
    return figure(
        traces, "Topology (racks: share of hosts serving)", showlegend=False,
        xaxis={"visible": False},
        yaxis={"tickvals": [0, 1, 2, 3, 4], "ticktext": ["power", "racks", "ToR", "spine", "core"],
               "showgrid": False, "zeroline": False, "range": [-0.5, 4.5]},
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
    title (as the metrics compute them): who gets the worst of it."""
    import numpy as np

    from twin.slo import downtime_percentiles

    p = downtime_percentiles(np.asarray(minutes_per_year, dtype=float))
    title = "Each guest's downtime"
    if p:
        title += " (p50 {:.1f}, p90 {:.1f}, p99 {:.1f} min/yr)".format(*p.values())
    hist = {"type": "histogram", "x": list(minutes_per_year), "marker": {"color": "#457b9d"},
            "nbinsx": 50}  # fmt: skip
    return figure(
        [hist], title,
        xaxis={"title": {"text": "downtime (minutes per guest-year)"}},
        yaxis={"title": {"text": "guests"}, "type": "log"},
    )  # fmt: skip
