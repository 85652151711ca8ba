"""The page: run controls, fault injection, KPI cards and the fleet's views."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.figures import GROUPINGS, architecture_colour
from dashboard.live import WATCH_SPEED, LiveFleet, WatchMode

REFRESH_MS = 1000
SPEEDS = [0.25, 1, 6, 12, 24, 72, 168]
"""Simulated hours per wall-clock second the speed picker offers."""
MIX_SHARE = "mix-share"
"""The type of the architecture-mix inputs' ids: ``{"type": MIX_SHARE, "architecture": a}``."""
WATCH_MODES = {
    WatchMode.SLOW: f"slow to {WATCH_SPEED:g} h/s until it is over",
    WatchMode.PAUSE: "pause on it",
}
"""What the clock does when an injection hits, as the toggle offers it."""


def fleet_options(live: LiveFleet) -> dict[str, list[dict[str, str]]]:
    """The names the fault controls offer, from the fleet now running."""
    with live.lock:
        fleet = live.fleet
        return {
            "host": [{"label": f"{h.name} ({h.rack}, {h.architecture})", "value": h.name}
                     for h in fleet.hosts],
            "rack": [{"label": r, "value": r} for r in fleet.topology.racks],
            "driver": [{"label": d, "value": d}
                       for d in sorted({d.name for d in fleet.config.drivers})],
            "campaign": [{"label": c, "value": c} for c in fleet.campaigns],
        }  # fmt: skip


def _first(options: list[dict[str, str]]) -> str | None:
    return options[0]["value"] if options else None


def _labelled(label: str, control: Any) -> html.Div:
    return html.Div([dbc.Label(label, className="small mb-0"), control], className="mb-2")


def mix_controls(live: LiveFleet) -> html.Div:
    """One share input per architecture of the behaviour table, in its colour, set to the
    fleet's mix now; the shares are normalised when applied."""
    return html.Div([
        dbc.InputGroup([
            dbc.InputGroupText(arch, style={"color": architecture_colour(arch),
                                            "fontWeight": 600, "minWidth": "7.5em"}),
            dbc.Input(id={"type": MIX_SHARE, "architecture": arch}, type="number", min=0,
                      step=0.05, value=round(share, 2)),
        ], size="sm", className="mb-1")
        for arch, share in live.mix_now().items()
    ])  # fmt: skip


def run_controls(live: LiveFleet) -> dbc.Card:
    """Play/pause, speed, the config or scenario and its seed, and the architecture mix."""
    return dbc.Card(dbc.CardBody([
        html.H6("Run"),
        dbc.ButtonGroup([
            dbc.Button("Pause" if live.state.playing else "Play", id="play", color="primary",
                       n_clicks=0),
            dbc.Button("Reset", id="reset", color="secondary", n_clicks=0),
        ], className="mb-2"),
        _labelled("Speed (simulated hours per second)", dcc.Dropdown(
            id="speed", options=[{"label": f"{s:g} h/s", "value": s} for s in SPEEDS],
            value=live.state.speed, clearable=False)),
        _labelled("Config or scenario", dcc.Dropdown(
            id="source", options=[{"label": n, "value": n} for n in live.sources],
            value=live.state.source, clearable=False)),
        _labelled("Seed", dbc.Input(id="seed", type="number", value=live.state.seed, min=0)),
        _labelled("Architecture mix (shares of hosts, normalised)", mix_controls(live)),
        dbc.Button("Convert hosts to this mix", id="apply-mix", size="sm", n_clicks=0),
        html.Div(id="reset-message", className="small text-muted mt-2"),
    ]))  # fmt: skip


def fault_controls(live: LiveFleet) -> dbc.Card:
    """Fault injection: the same injections a scenario's timeline uses, fired now."""
    opts = fleet_options(live)
    return dbc.Card(dbc.CardBody([
        html.H6("Inject"),
        _labelled("When an injection hits", dbc.RadioItems(
            id="watch-mode", options=[{"label": t, "value": m} for m, t in WATCH_MODES.items()],
            value=live.state.watch_mode, className="small")),
        _labelled("Host", dcc.Dropdown(id="host", options=opts["host"],
                                       value=_first(opts["host"]), clearable=False)),
        dbc.Button("Crash host", id="crash", color="danger", size="sm", n_clicks=0,
                   className="mb-2"),
        _labelled("Rack", dcc.Dropdown(id="rack", options=opts["rack"],
                                       value=_first(opts["rack"]), clearable=False)),
        _labelled("Outage length (30m, 4h, 2d; empty: until an operator repairs it)",
                  dbc.Input(id="duration", type="text", placeholder="until repaired",
                            debounce=False)),
        dbc.ButtonGroup([
            dbc.Button("Fail ToR", id="tor", color="danger", size="sm", n_clicks=0),
            dbc.Button("Cut rack power", id="power", color="danger", size="sm", n_clicks=0),
        ], className="mb-2"),
        _labelled("Driver", dcc.Dropdown(id="driver", options=opts["driver"],
                                         value=_first(opts["driver"]), clearable=False)),
        _labelled("Share of hosts", dcc.Slider(id="driver-share", min=0, max=1, step=0.05,
                                               value=0.25, marks={0: "0", 1: "1"})),
        _labelled("Fault rate x", dbc.Input(id="driver-mult", type="number", value=10, min=1)),
        dbc.Button("Push buggy driver", id="driver-push", color="warning", size="sm",
                   n_clicks=0, className="mb-2"),
        _labelled("Update campaign", dcc.Dropdown(id="campaign", options=opts["campaign"],
                                                  value=_first(opts["campaign"]), clearable=False)),
        dbc.Button("Start campaign", id="campaign-start", color="warning", size="sm",
                   n_clicks=0),
    ]))  # fmt: skip


def _graph(graph_id: str) -> dcc.Graph:
    return dcc.Graph(id=graph_id, config={"displayModeBar": False})


def build_layout(live: LiveFleet) -> dbc.Container:
    """The whole page; every view is filled by the refresh callback on each tick."""
    return dbc.Container([
        dcc.Interval(id="tick", interval=REFRESH_MS, n_intervals=0),
        html.H3("Fleet twin — live", className="mt-3"),
        html.Div(id="status", className="text-muted mb-1"),
        html.Div(id="action-message", className="small fw-semibold mb-2",
                 style={"minHeight": "1.5em"}),
        dbc.Row([
            dbc.Col([run_controls(live), html.Div(className="mb-3"), fault_controls(live)],
                    md=3),
            dbc.Col([
                dbc.Row(id="kpis", className="g-2 mb-2"),
                dbc.Row([dbc.Col(_graph("availability"), md=6),
                         dbc.Col([dbc.RadioItems(
                             id="heatmap-group", inline=True, value=GROUPINGS[0],
                             options=[{"label": f"hosts by {g}", "value": g} for g in GROUPINGS],
                             className="small"), _graph("heatmap")], md=6)]),
                dbc.Row([dbc.Col(_graph("topology"), md=12)]),
                dbc.Row([dbc.Col(_graph("incidents"), md=4), dbc.Col(_graph("blast"), md=4),
                         dbc.Col(_graph("operators"), md=4)]),
                dbc.Row([dbc.Col(_graph("guest-downtime"), md=12)]),
                html.H6("Latest events", className="mt-2"),
                html.Div(id="events"),
            ], md=9),
        ]),
    ], fluid=True)  # fmt: skip
