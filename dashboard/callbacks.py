"""The dashboard's callbacks: plain functions of the live runner and the controls' values
(tested without a browser), and `register`, which wires them to the page.

Every name that arrives from the browser (a config, a host, a rack, a driver, an update)
is checked against a list the server computed; nothing from a request becomes a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, html
from pydantic import ValidationError

from dashboard import figures
from dashboard.layout import MIX_SHARE, SPEEDS, fleet_options
from dashboard.live import WATCH_SPEED, LiveFleet, WatchMode
from twin.config import parse_duration
from twin.config.schema import (
    DriverRegression,
    HostCrash,
    Injection,
    PowerLoss,
    StartCampaign,
    TorFault,
)

VIEW_OUTPUTS = (
    "play", "status", "kpis", "availability", "heatmap", "topology", "incidents", "blast",
    "operators", "guest-downtime", "events",
)  # fmt: skip
"""The page's parts each refresh fills, in the order `refresh` returns them."""
FIGURES = frozenset({"availability", "heatmap", "topology", "incidents", "blast", "operators",
                     "guest-downtime"})  # fmt: skip


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


def status_line(live: LiveFleet, time: float) -> str:
    """Where the run is: simulated time, source, seed, clock, the injections watched."""
    state = live.state
    parts = [
        f"t = {time / 24:,.2f} days", state.source, f"seed {state.seed}",
        f"{'playing' if state.playing else 'paused'} at {state.clock_speed:g} h/s",
    ]  # fmt: skip
    parts += [f"watching {w.action} on {w.target} {w.length}" for w in state.watches]
    if state.message:
        parts.append(state.message)
    return " · ".join(parts)


def refresh(live: LiveFleet, group: Any = "rack") -> tuple[Any, ...]:
    """Everything the page shows, for one tick of the interval (in `VIEW_OUTPUTS` order);
    the heatmap's rows are racks, or clusters when ``group`` asks for them."""
    view = live.view()
    state = live.state
    status = status_line(live, view.time)
    return (
        "Pause" if state.playing else "Play",
        status,
        kpi_cards(view),
        figures.availability_figure(view),
        figures.heatmap_figure(view, group if group in figures.GROUPINGS else "rack"),
        figures.topology_figure(view),
        figures.incidents_figure(view),
        figures.blast_radius_figure(view),
        figures.operators_figure(view),
        figures.guest_downtime_figure(view.guest_downtime),
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


def set_watch_mode(live: LiveFleet, mode: Any) -> str:
    """Slow down on an injection, or pause on it; anything else is refused."""
    if mode not in tuple(WatchMode):
        return f"refused: watch mode {mode!r} is not offered"
    live.set_watch_mode(WatchMode(mode))
    return (f"on an injection: slow to {WATCH_SPEED:g} h/s" if mode == WatchMode.SLOW
            else "on an injection: pause")  # fmt: skip


def reset(live: LiveFleet, source: Any, seed: Any) -> tuple[Any, ...]:
    """Start over with the picked config or scenario and seed; returns the message, the
    fault controls' new options and values, the mix inputs' values, and an empty action
    message (a reset clears what the last run said)."""
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
    mix = [round(share, 2) for share in live.mix_now().values()]
    return (message, *opts.values(), *values, mix, "")


def mix_target(ids: Sequence[Any], values: Sequence[Any]) -> dict[str, float] | str:
    """The architecture mix the share inputs ask for, normalised to sum to 1, or why it
    cannot be: a share that is not a number >= 0, no share above 0, or an unknown name."""
    known = figures.architecture_names()
    if len(ids) != len(values):
        return "refused: the mix inputs sent do not match their names"
    shares: dict[str, float] = {}
    for id_, value in zip(ids, values, strict=True):
        name = id_.get("architecture") if isinstance(id_, dict) else None
        if name not in known:
            return f"refused: {name!r} is not an architecture of the behaviour table"
        if value is None or value == "":
            value = 0.0
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            return f"refused: {name} share {value!r} is not a number >= 0"
        shares[name] = float(value)
    total = sum(shares.values())
    if not total > 0:
        return "refused: give at least one architecture a share above 0"
    return {name: shares.get(name, 0.0) / total for name in known}


@dataclass
class Controls:
    """The fault controls' values as the browser sent them (checked before use)."""

    host: Any = None
    rack: Any = None
    duration: Any = None
    driver: Any = None
    driver_share: Any = None
    driver_multiplier: Any = None
    campaign: Any = None


CONTROLS = ("host", "rack", "duration", "driver", "driver-share", "driver-mult", "campaign")
"""The page's fault controls, in `Controls` order."""
TRIGGERS = ("crash", "tor", "power", "driver-push", "campaign-start", "apply-mix")
"""The buttons that change the fleet."""


def outage_length(duration: Any) -> float | None:
    """Hours of an outage typed as ``30m``, ``4h`` or ``2d`` (None when left empty: an
    operator repairs it). Raises ValueError for anything else, or for a length of 0."""
    if duration is None or not str(duration).strip():
        return None
    hours = parse_duration(str(duration).strip())
    if hours <= 0:
        raise ValueError(f"duration: an outage lasts more than 0 (got {duration!r})")
    return hours


def injection_for(trigger: str | None, controls: Controls) -> Injection | str:
    """The injection a fault button asks for, or why it cannot be made. Pydantic checks
    the shape; `LiveFleet.inject` then checks the names against the running fleet."""
    c = controls
    try:
        match trigger:
            case "crash":
                return HostCrash(action="host_crash", at=0, host=str(c.host))
            case "tor":
                return TorFault(action="tor_fault", at=0, rack=str(c.rack),
                                duration=outage_length(c.duration))  # fmt: skip
            case "power":
                return PowerLoss(action="power_loss", at=0, rack=str(c.rack),
                                 duration=outage_length(c.duration))  # fmt: skip
            case "driver-push":
                return DriverRegression(
                    action="driver_regression", at=0, driver=str(c.driver),
                    share=float(c.driver_share), fault_multiplier=float(c.driver_multiplier),
                )  # fmt: skip
            case "campaign-start":
                return StartCampaign(action="start_campaign", at=0, update=str(c.campaign))
    except ValidationError as err:
        first = err.errors()[0]
        return f"refused: {'.'.join(map(str, first['loc']))}: {first['msg']}"
    except (TypeError, ValueError) as err:
        return f"refused: {err}"
    return f"refused: unknown action {trigger!r}"


def act(
    live: LiveFleet,
    trigger: str | None,
    controls: Controls,
    mix_ids: Sequence[Any] = (),
    mix_values: Sequence[Any] = (),
) -> str:
    """Carry out a fault button's injection, or convert hosts to the mix the inputs ask for."""
    if trigger == "apply-mix":
        target = mix_target(mix_ids, mix_values)
        return target if isinstance(target, str) else live.convert_mix(target)
    spec = injection_for(trigger, controls)
    if isinstance(spec, str):
        return spec
    return live.inject(spec)


def register(app: Dash, live: LiveFleet) -> None:
    """Wire the plain functions above to the page's components."""
    mix = {"type": MIX_SHARE, "architecture": ALL}

    @app.callback([Output(name, "figure" if name in FIGURES else "children")
                   for name in VIEW_OUTPUTS], Input("tick", "n_intervals"),
                  Input("heatmap-group", "value"))  # fmt: skip
    def _refresh(_: int, group: Any) -> tuple[Any, ...]:
        return refresh(live, group)

    @app.callback(Output("play", "children", allow_duplicate=True), Input("play", "n_clicks"),
                  prevent_initial_call=True)  # fmt: skip
    def _play(_: int) -> str:
        return toggle_play(live)

    @app.callback(Output("reset-message", "children", allow_duplicate=True),
                  Input("speed", "value"), prevent_initial_call=True)  # fmt: skip
    def _speed(speed: Any) -> str:
        return set_speed(live, speed)

    @app.callback(Output("action-message", "children", allow_duplicate=True),
                  Input("watch-mode", "value"), prevent_initial_call=True)  # fmt: skip
    def _watch_mode(mode: Any) -> str:
        return set_watch_mode(live, mode)

    @app.callback(
        [Output("reset-message", "children"), *(Output(n, "options") for n in
         ("host", "rack", "driver", "campaign")), *(Output(n, "value") for n in
         ("host", "rack", "driver", "campaign")), Output(mix, "value"),
         Output("action-message", "children", allow_duplicate=True)],
        Input("reset", "n_clicks"), State("source", "value"), State("seed", "value"),
        prevent_initial_call=True,
    )  # fmt: skip
    def _reset(_: int, source: Any, seed: Any) -> tuple[Any, ...]:
        return reset(live, source, seed)

    @app.callback(
        Output("action-message", "children"),
        [Input(n, "n_clicks") for n in TRIGGERS],
        [State(n, "value") for n in CONTROLS], State(mix, "id"), State(mix, "value"),
        prevent_initial_call=True,
    )  # fmt: skip
    def _act(*args: Any) -> str:
        states = args[len(TRIGGERS) :]
        mix_ids, mix_values = states[len(CONTROLS) :]
        return act(live, ctx.triggered_id, Controls(*states[: len(CONTROLS)]), mix_ids, mix_values)
