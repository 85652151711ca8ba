"""The dashboard's callbacks: plain functions of the live runner and the controls' values
(tested without a browser), and `register`, which wires them to the page.

Every name that arrives from the browser (a config, a host, a rack, a driver, an update)
is checked against a list the server computed; nothing from a request becomes a path.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, html
from pydantic import ValidationError

from dashboard import figures
from dashboard.layout import SPEEDS, fleet_options, microkernel_share
from dashboard.live import LiveFleet
from twin.config.schema import (
    ConvertArchitecture,
    DriverRegression,
    HostCrash,
    Injection,
    PowerLoss,
    StartCampaign,
    TorFault,
)

VIEW_OUTPUTS = (
    "play", "status", "kpis", "availability", "heatmap", "topology", "incidents", "blast",
    "operators", "events",
)  # fmt: skip
"""The page's parts each refresh fills, in the order `refresh` returns them."""
FIGURES = frozenset({"availability", "heatmap", "topology", "incidents", "blast", "operators"})


EVENT_COLUMNS = ("time (h)", "entity", "from", "to", "cause")


def kpi_cards(view: figures.FleetView) -> list[dbc.Col]:
    """One card per KPI: the fleet's value, then each architecture's."""
    cards = []
    for kpi in figures.kpis(view):
        lines = [
            html.Div([html.Span(f"{scope}: ", className="text-muted"), html.B(value)],
                     className="small")
            for scope, value in kpi["values"]
        ]  # fmt: skip
        cards.append(dbc.Col(dbc.Card(dbc.CardBody(
            [html.Div(kpi["title"], className="fw-semibold mb-1"), *lines]
        ), className="kpi h-100"), md=3))  # fmt: skip
    return cards


def events_table(rows: list[dict[str, Any]]) -> dbc.Table:
    """The latest state changes as a compact table, newest first."""
    head = html.Thead(html.Tr([html.Th(c) for c in EVENT_COLUMNS]))
    body = html.Tbody([html.Tr([html.Td(row[c]) for c in EVENT_COLUMNS]) for row in rows])
    return dbc.Table([head, body], size="sm", striped=True, className="small mb-0")


def refresh(live: LiveFleet) -> tuple[Any, ...]:
    """Everything the page shows, for one tick of the interval (in `VIEW_OUTPUTS` order)."""
    view = live.view()
    state = live.state
    status = (
        f"t = {view.time / 24:,.2f} days · {state.source} · seed {state.seed} · "
        f"{'playing' if state.playing else 'paused'} at {state.speed:g} h/s"
        + (f" · {state.message}" if state.message else "")
    )
    return (
        "Pause" if state.playing else "Play",
        status,
        kpi_cards(view),
        figures.availability_figure(view),
        figures.heatmap_figure(view),
        figures.topology_figure(view),
        figures.incidents_figure(view),
        figures.blast_radius_figure(view),
        figures.operators_figure(view),
        events_table(figures.events_rows(view)),
    )


def toggle_play(live: LiveFleet) -> str:
    """Play when paused, pause when playing; returns the button's new label."""
    live.set_playing(not live.state.playing)
    return "Pause" if live.state.playing else "Play"


def set_speed(live: LiveFleet, speed: Any) -> str:
    """Take a speed only from the offered list (simulated hours per second)."""
    if speed not in SPEEDS:
        return f"refused: speed {speed!r} is not offered"
    live.set_speed(float(speed))
    return f"speed {speed:g} h/s"


def reset(live: LiveFleet, source: Any, seed: Any) -> tuple[Any, ...]:
    """Start over with the picked config or scenario and seed; returns the message, the
    fault controls' new options and values, and the mix slider's position."""
    try:
        seed_value = int(seed)
    except (TypeError, ValueError):
        seed_value = -1
    if seed_value < 0:
        message = f"refused: seed {seed!r} is not a whole number >= 0"
    elif not isinstance(source, str):
        message = f"refused: {source!r} is not an offered config or scenario"
    else:
        message = live.reset(source, seed_value)
    opts = fleet_options(live)
    values = [o[0]["value"] if o else None for o in opts.values()]
    return (message, *opts.values(), *values, round(microkernel_share(live), 2))


def conversion(current: float, target: float) -> ConvertArchitecture | None:
    """The conversion that takes the fleet's microkernel share from ``current`` to about
    ``target``: a share of the hosts not yet on the architecture moving towards it."""
    if abs(target - current) < 1e-9:
        return None
    if target > current:
        share = (target - current) / (1.0 - current)
        return ConvertArchitecture(action="convert_architecture", at=0, share=share,
                                   to="microkernel")  # fmt: skip
    share = (current - target) / current
    return ConvertArchitecture(action="convert_architecture", at=0, share=share, to="monolithic")


def injection_for(
    trigger: str | None,
    host: Any,
    rack: Any,
    driver: Any,
    driver_share: Any,
    driver_multiplier: Any,
    campaign: Any,
) -> Injection | str:
    """The injection a fault button asks for, or why it cannot be made. Pydantic checks
    the shape; `LiveFleet.inject` then checks the names against the running fleet."""
    try:
        match trigger:
            case "crash":
                return HostCrash(action="host_crash", at=0, host=str(host))
            case "tor":
                return TorFault(action="tor_fault", at=0, rack=str(rack))
            case "power":
                return PowerLoss(action="power_loss", at=0, rack=str(rack))
            case "driver-push":
                return DriverRegression(
                    action="driver_regression", at=0, driver=str(driver),
                    share=float(driver_share), fault_multiplier=float(driver_multiplier),
                )  # fmt: skip
            case "campaign-start":
                return StartCampaign(action="start_campaign", at=0, update=str(campaign))
    except ValidationError as err:
        first = err.errors()[0]
        return f"refused: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    except (TypeError, ValueError) as err:
        return f"refused: {err}"
    return f"refused: unknown action {trigger!r}"


def act(live: LiveFleet, trigger: str | None, *values: Any) -> str:
    """Carry out a fault button's injection, or the architecture-mix conversion."""
    if trigger == "apply-mix":
        target = values[-1]
        if not isinstance(target, int | float) or not 0 <= target <= 1:
            return f"refused: mix {target!r} is not a share in [0, 1]"
        spec = conversion(microkernel_share(live), float(target))
        return "mix unchanged" if spec is None else live.inject(spec)
    spec = injection_for(trigger, *values[:-1])
    if isinstance(spec, str):
        return spec
    return live.inject(spec)


def register(app: Dash, live: LiveFleet) -> None:
    """Wire the plain functions above to the page's components."""

    @app.callback([Output(name, "figure" if name in FIGURES else "children")
                   for name in VIEW_OUTPUTS], Input("tick", "n_intervals"))  # fmt: skip
    def _refresh(_: int) -> tuple[Any, ...]:
        return refresh(live)

    @app.callback(Output("play", "children", allow_duplicate=True), Input("play", "n_clicks"),
                  prevent_initial_call=True)  # fmt: skip
    def _play(_: int) -> str:
        return toggle_play(live)

    @app.callback(Output("reset-message", "children", allow_duplicate=True),
                  Input("speed", "value"), prevent_initial_call=True)  # fmt: skip
    def _speed(speed: Any) -> str:
        return set_speed(live, speed)

    @app.callback(
        [Output("reset-message", "children"), *(Output(n, "options") for n in
         ("host", "rack", "driver", "campaign")), *(Output(n, "value") for n in
         ("host", "rack", "driver", "campaign")), Output("mix", "value")],
        Input("reset", "n_clicks"), State("source", "value"), State("seed", "value"),
        prevent_initial_call=True,
    )  # fmt: skip
    def _reset(_: int, source: Any, seed: Any) -> tuple[Any, ...]:
        return reset(live, source, seed)

    @app.callback(
        Output("action-message", "children"),
        [Input(n, "n_clicks") for n in
         ("crash", "tor", "power", "driver-push", "campaign-start", "apply-mix")],
        [State(n, "value") for n in
         ("host", "rack", "driver", "driver-share", "driver-mult", "campaign", "mix")],
        prevent_initial_call=True,
    )  # fmt: skip
    def _act(*args: Any) -> str:
        return act(live, ctx.triggered_id, *args[6:])
