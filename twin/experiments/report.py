"""One self-contained HTML report of a results directory (``twin report``).

The page holds plotly.js inline, so it opens offline and can be mailed as one file. A
sweep is there to show how the answer moves with what was swept, so the report leads with
the headline metrics against each swept key (one line per arm with its 95 % confidence
band), then, per cell (arm x grid point): downtime split into planned (updates) and
unplanned, incidents by cause, the blast-radius distribution, delivered capacity and
headroom, and availability over time by architecture; then the per-cell table.

Every arm keeps one colour in every figure. Cells are listed down the y axis, one line of
text each, so their names are never rotated or cut however many there are; figures grow
with what they show, and legends sit beside the plot with room for every entry.

Downtime is not broken down by cause in the metrics (SPEC 4 gives the total and its
planned part), so causes are shown as incident counts.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from twin.config import ConfigError, validate_config
from twin.experiments.footprint import fleet_counts
from twin.experiments.sweep import (
    CELL_METRICS,
    MANIFEST,
    PARTS,
    SUMMARY,
    TIMESERIES,
    SweepRefused,
    cell_summary,
    consolidate,
    guest_downtime_by_cell,
    point_label,
)
from twin.vocabulary import CAUSES

REPORT = "report.html"
REPORT_MARKER = "twin report</title>"
"""In the head of every report page: an older report may be replaced."""
SCOPE_NAMES = {"*": "fleet"}
HEADLINE = {
    "guest_availability": "guest availability",
    "guest_downtime_min_per_year": "guest downtime (min per guest-year)",
    "incidents": "incidents per replication",
    "effective_capacity": "effective capacity (guest-equivalents)",
}
"""The metrics drawn against each swept key, with their axis titles."""
TITLES = {
    "availability": "Guest availability by arm and grid point (mean and 95 % CI)",
    "downtime": "Guest downtime, planned (updates, hatched) and unplanned (minutes per "
    "guest-year, mean)",
    "incidents": "Incidents by cause (mean per replication)",
    "blast": "Blast radius: guests lost per incident (per-replication mean, p95 and max)",
    "capacity": "Capacity and headroom: capacity delivered (mean and 95 % CI) and spare "
    "capacity planned",
    "over_time": "Guest availability to date over time, by architecture (mean over replications)",
    "guest_downtime": "Each guest's own downtime (minutes per guest-year, guests of every "
    "replication; pick a cell on the right)",
}
ROW_PX = 30
"""Height of one cell's row in a per-cell figure: one line of tick text and its bar."""
LEGEND_ROW_PX = 22
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
BAND_ALPHA = 0.18
LOG_SPREAD = 100.0
"""A metric whose cell means span more than this factor is drawn on a log axis (when every
confidence band stays above 0, which a log axis cannot show)."""
LEGEND = {"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"}


def _label(point_text: str) -> str:
    return point_label(json.loads(point_text))


def load_run(run_dir: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The manifest, summary and time series of a ``twin sweep`` or ``twin run --out``
    directory; a sweep whose parts are newer than its tables is consolidated first."""
    manifest_path = run_dir / MANIFEST
    if not manifest_path.is_file():
        raise SweepRefused(f"{run_dir}: no {MANIFEST}, not a results directory")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as err:
        raise SweepRefused(f"{manifest_path}: cannot read: {err}") from None
    summary_path = run_dir / SUMMARY
    if manifest.get("kind") == "twin-sweep":
        parts = list((run_dir / PARTS).glob("*.parquet"))
        newest = max((p.stat().st_mtime for p in parts), default=0.0)
        if not summary_path.exists() or newest > summary_path.stat().st_mtime:
            consolidate(run_dir)
    if not summary_path.is_file():
        raise SweepRefused(f"{run_dir}: no {SUMMARY}")
    summary = pd.read_parquet(summary_path)
    if summary.empty:
        raise SweepRefused(f"{run_dir}: no finished replication yet")
    series_path = run_dir / TIMESERIES
    timeseries = pd.read_parquet(series_path) if series_path.is_file() else pd.DataFrame()
    for frame in (summary, timeseries):  # a `twin run --out` directory: one cell
        if not frame.empty and "arm" not in frame:
            frame.insert(0, "point", "{}")
            frame.insert(0, "arm", manifest.get("name") or "run")
    return manifest, summary, timeseries


# ---------------------------------------------------------------------------------------------
# what every figure shares: arm colours, cell labels, heights


def arm_colours(arms: Sequence[str]) -> dict[str, str]:
    """One colour per arm, in arm order, the same in every figure of the report."""
    from plotly.colors import qualitative

    palette = qualitative.Plotly if len(arms) <= len(qualitative.Plotly) else qualitative.Dark24
    return {arm: palette[i % len(palette)] for i, arm in enumerate(arms)}


def _rgba(colour: str, alpha: float) -> str:
    colour = colour.lstrip("#")
    red, green, blue = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def cell_label(arm: str, point: str) -> str:
    """A cell as one line of text: its arm, and its grid point when there is a grid."""
    return arm if point == "{}" else f"{arm} · {_label(point)}"


def _cells_height(cells: int, legend_entries: int = 0) -> int:
    """Room for one row per cell (and for every legend entry beside the plot)."""
    return max(320, 150 + ROW_PX * cells, 150 + LEGEND_ROW_PX * legend_entries)


def _arm_legend(fig: Any, colours: Mapping[str, str], arms: Sequence[str]) -> None:
    """Legend entries naming each arm's colour, for figures whose traces are not per arm."""
    import plotly.graph_objects as go

    for arm in arms:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=arm,
                legendgroup=arm,
                marker={"color": colours[arm], "size": 12, "symbol": "square"},
            )
        )


def _per_cell_layout(fig: Any, title: str, labels: Sequence[str], legend_entries: int) -> None:
    """Cells down the y axis in plan order (first at the top), horizontal, never cut."""
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=list(reversed(labels)),
        automargin=True,
        type="category",
    )
    fig.update_xaxes(automargin=True)
    fig.update_layout(
        title=title,
        height=_cells_height(len(labels), legend_entries),
        legend=LEGEND,
        margin={"r": 20},
    )


# ---------------------------------------------------------------------------------------------
# the headline metrics against each swept key


def _physical(metric: str, values: pd.Series) -> pd.Series:
    """A confidence bound kept inside the metric's physical range: [0, 1] for an
    availability, >= 0 for counts, durations and capacities."""
    return values.clip(0.0, 1.0 if metric.endswith("availability") else None)


def _is_number(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def sweep_figure(stats: pd.DataFrame, key: str, colours: Mapping[str, str]) -> Any:
    """The headline metrics against one swept key: per arm a line of means with its 95 % CI
    band; the other swept keys, if any, held at each of their values (one dash each)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    points = [json.loads(p) for p in stats["point"]]
    frame = stats.assign(
        _x=[p.get(key) for p in points],
        _other=[point_label({k: v for k, v in p.items() if k != key}) for p in points],
    )
    others = list(dict.fromkeys(frame["_other"]))
    numeric = _is_number(list(frame["_x"]))
    metrics = [m for m in HEADLINE if m in stats]
    fig = make_subplots(
        rows=(len(metrics) + 1) // 2,
        cols=2,
        subplot_titles=[HEADLINE[m] for m in metrics],
        horizontal_spacing=0.12,
        vertical_spacing=0.16,
    )
    for i, metric in enumerate(metrics):
        row, col = i // 2 + 1, i % 2 + 1
        for (arm, other), group in frame.groupby(["arm", "_other"], sort=False):
            colour, dash = colours[arm], DASHES[others.index(other) % len(DASHES)]
            x = list(group["_x"]) if numeric else [str(v) for v in group["_x"]]
            low, high = (
                _physical(metric, group[f"{metric}_ci95_{end}"]) for end in ("low", "high")
            )
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=list(high) + list(low)[::-1],
                    mode="lines",
                    fill="toself",
                    fillcolor=_rgba(colour, BAND_ALPHA),
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=arm,
                ),
                row=row,
                col=col,
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=group[metric],
                    mode="lines+markers",
                    name=arm,
                    legendgroup=arm,
                    showlegend=i == 0 and other == others[0],
                    line={"color": colour, "dash": dash},
                    marker={"size": 7},
                    hovertemplate=f"{arm} · {other}<br>{key}=%{{x}}<br>%{{y}}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(
            title_text=key,
            row=row,
            col=col,
            automargin=True,
            type="linear" if numeric else "category",
        )
        if metric == "guest_availability":
            fig.update_yaxes(tickformat=".5f", row=row, col=col)
        means, lows = frame[metric].dropna(), frame[f"{metric}_ci95_low"].dropna()
        spread = means.max() / means.min() if len(lows) and lows.min() > 0 else 0.0
        if metric != "guest_availability" and spread > LOG_SPREAD:  # else small ones lie at 0
            fig.update_yaxes(type="log", dtick=1, row=row, col=col)
        fig.update_yaxes(automargin=True, row=row, col=col)
    if len(others) > 1:  # what each dash means
        for j, other in enumerate(others):
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="lines",
                    name=other,
                    legendgroup="dash",
                    legendgrouptitle_text="other keys" if j == 0 else None,
                    line={"color": "#555", "dash": DASHES[j % len(DASHES)]},
                )
            )
    rows = (len(metrics) + 1) // 2
    entries = len(colours) + (len(others) + 1 if len(others) > 1 else 0)
    fig.update_layout(
        title=f"Headline metrics against {key} (mean and 95 % CI band per arm)",
        height=max(200 + 340 * rows, 150 + LEGEND_ROW_PX * entries),
        legend=LEGEND,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# per cell


def availability_figure(cells: pd.DataFrame, colours: Mapping[str, str]) -> Any:
    """Guest availability of each cell, mean and 95 % CI, coloured by arm."""
    import plotly.graph_objects as go

    fig = go.Figure()
    labels = [cell_label(a, p) for a, p in zip(cells["arm"], cells["point"], strict=True)]
    frame = cells.assign(_label=labels)
    for arm, group in frame.groupby("arm", sort=False):
        mean = group["guest_availability"]
        fig.add_trace(
            go.Scatter(
                y=group["_label"],
                x=mean,
                name=str(arm),
                legendgroup=str(arm),
                mode="markers",
                marker={"size": 11, "color": colours[arm]},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": _physical("availability", group["guest_availability_ci95_high"])
                    - mean,
                    "arrayminus": mean
                    - _physical("availability", group["guest_availability_ci95_low"]),
                },
            )
        )
    low = float(_physical("availability", cells["guest_availability_ci95_low"]).min())
    high = float(cells["guest_availability_ci95_high"].max())
    pad = max((high - low) * 0.15, 1e-6)
    _per_cell_layout(fig, TITLES["availability"], labels, len(colours))
    fig.update_xaxes(
        title_text="guest availability", tickformat=".5f", range=[low - pad, min(1.0, high) + pad]
    )  # zoom on the nines
    return fig


def _cell_means(summary: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Per-cell means of ``columns`` with the cell's arm and one-line label, plan order."""
    means = summary.groupby(["arm", "point"], sort=False)[list(columns)].mean().reset_index()
    return means.assign(
        _label=[cell_label(a, p) for a, p in zip(means["arm"], means["point"], strict=True)]
    )


def downtime_figure(summary: pd.DataFrame, colours: Mapping[str, str]) -> Any:
    """Each cell's downtime: unplanned solid, planned (updates) hatched, in the arm's colour."""
    import plotly.graph_objects as go

    means = _cell_means(summary, ["guest_downtime_min_per_year", "planned_downtime_min_per_year"])
    planned = means["planned_downtime_min_per_year"]
    unplanned = (means["guest_downtime_min_per_year"] - planned).clip(lower=0)
    bar_colours = [colours[a] for a in means["arm"]]
    fig = go.Figure(
        [
            go.Bar(
                y=means["_label"],
                x=unplanned,
                name="unplanned",
                orientation="h",
                marker={"color": bar_colours},
                showlegend=False,
            ),
            go.Bar(
                y=means["_label"],
                x=planned,
                name="planned (updates)",
                orientation="h",
                marker={"color": bar_colours, "pattern": {"shape": "/", "solidity": 0.5}},
                showlegend=False,
            ),
        ]
    )
    _arm_legend(fig, colours, list(colours))
    _per_cell_layout(fig, TITLES["downtime"], list(means["_label"]), len(colours))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="minutes per guest-year")
    return fig


def incidents_figure(summary: pd.DataFrame) -> Any:
    """Each cell's incidents, stacked by cause (the colours here are causes, not arms)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    columns = [f"incidents.{c}" for c in CAUSES  # a cause no cell saw adds no bar
               if f"incidents.{c}" in summary and summary[f"incidents.{c}"].any()]  # fmt: skip
    means = _cell_means(summary, columns)
    fig = go.Figure(
        [
            go.Bar(
                y=means["_label"],
                x=means[c],
                name=c.split(".", 1)[1],
                orientation="h",
                marker={
                    "color": qualitative.Pastel[i % len(qualitative.Pastel)],
                    "line": {"color": "#444", "width": 0.5},
                },
                legendgrouptitle_text="cause" if i == 0 else None,
                legendgroup="cause",
            )
            for i, c in enumerate(columns)
        ]
    )
    _per_cell_layout(fig, TITLES["incidents"], list(means["_label"]), len(columns) + 1)
    fig.update_layout(barmode="stack", legend_traceorder="grouped")
    fig.update_xaxes(title_text="incidents per replication")
    return fig


def blast_radius_figure(summary: pd.DataFrame, colours: Mapping[str, str]) -> Any:
    """Per cell, the per-replication mean, p95 and max of guests lost per incident."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    stats = [s for s in ("mean", "p95", "max") if f"blast_radius_{s}" in summary]
    labels = [cell_label(a, p) for a, p in zip(summary["arm"], summary["point"], strict=True)]
    frame = summary.assign(_label=labels)
    fig = make_subplots(
        rows=1,
        cols=len(stats),
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=[f"{s} per replication" for s in stats],
    )
    for col, stat in enumerate(stats, start=1):
        for arm, group in frame.groupby("arm", sort=False):
            fig.add_trace(
                go.Box(
                    y=group["_label"],
                    x=group[f"blast_radius_{stat}"],
                    name=str(arm),
                    orientation="h",
                    boxpoints="all",
                    legendgroup=str(arm),
                    showlegend=col == 1,
                    marker={"color": colours[arm], "size": 4},
                    line={"color": colours[arm]},
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="guests per incident", row=1, col=col)
    _per_cell_layout(fig, TITLES["blast"], list(dict.fromkeys(labels)), len(colours))
    return fig


def _headroom(config: Mapping[str, Any]) -> dict[str, float] | None:
    """Spare cpu and memory of a cell's fleet as planned (1 - guest demand / host supply),
    and in hosts' worth; ``None`` when the config does not say how many hosts there are."""
    try:
        fleet = validate_config(dict(config))
    except ConfigError:
        return None
    counts = fleet_counts(fleet)
    if counts is None or not counts[0]:
        return None
    hosts, _ = counts
    per_host = fleet.guests.per_host * hosts
    services = fleet.services
    cpu = per_host * fleet.guests.cpu + sum(s.replicas * s.cpu for s in services)
    memory = per_host * fleet.guests.memory_gb + sum(s.replicas * s.memory_gb for s in services)
    cpu_share = 1 - cpu / (hosts * fleet.hosts.cpu)
    memory_share = 1 - memory / (hosts * fleet.hosts.memory_gb)
    return {
        "cpu": cpu_share,
        "memory": memory_share,
        "hosts": hosts * min(cpu_share, memory_share),
        "guests": counts[1],
    }


def cell_configs(manifest: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """Each cell's fleet config from the manifest, keyed by (arm, point JSON)."""
    from twin.experiments.sweep import point_json

    if "cells" in manifest:
        return {(c["arm"], point_json(c["point"])): c["config"] for c in manifest["cells"]}
    if "config" in manifest:
        return {(manifest.get("name") or "run", "{}"): manifest["config"]}
    return {}


def capacity_figure(
    cells: pd.DataFrame, manifest: Mapping[str, Any], colours: Mapping[str, str]
) -> Any:
    """Capacity delivered (effective capacity per guest placed: what downtime and I/O
    overhead leave) beside the headroom planned (the share of cpu and memory no guest
    asks for: what absorbs a failed host)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    configs = cell_configs(manifest)
    labels = [cell_label(a, p) for a, p in zip(cells["arm"], cells["point"], strict=True)]
    rooms = [
        _headroom(configs.get((a, p), {}))
        for a, p in zip(cells["arm"], cells["point"], strict=True)
    ]
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[
            "capacity delivered (share of guests placed)",
            "headroom planned (spare share; hatched: memory)",
        ],
    )
    bar_colours = [colours[a] for a in cells["arm"]]
    guests = [r["guests"] if r else float("nan") for r in rooms]
    share = cells["effective_capacity"] / guests
    fig.add_trace(
        go.Scatter(
            y=labels,
            x=share,
            mode="markers",
            showlegend=False,
            marker={"color": bar_colours, "size": 11},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": cells["effective_capacity_ci95_high"] / guests - share,
                "arrayminus": share - cells["effective_capacity_ci95_low"] / guests,
            },
            hovertemplate="%{y}<br>%{x:.4f} of the guests' capacity<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for resource, pattern in (("cpu", ""), ("memory", "/")):
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[r[resource] if r else None for r in rooms],
                orientation="h",
                name=f"spare {resource}",
                showlegend=False,
                marker={"color": bar_colours, "pattern": {"shape": pattern, "solidity": 0.5}},
                customdata=[round(r["hosts"], 1) if r else None for r in rooms],
                hovertemplate=f"%{{y}}<br>spare {resource} %{{x:.1%}} "
                "(%{customdata} hosts' worth)<extra></extra>",
            ),
            row=1,
            col=2,
        )
    _arm_legend(fig, colours, list(colours))
    _per_cell_layout(fig, TITLES["capacity"], labels, len(colours))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="effective capacity / guests", row=1, col=1)
    fig.update_xaxes(title_text="spare share of the fleet", tickformat=".0%", row=1, col=2)
    return fig


def over_time_figure(timeseries: pd.DataFrame, colours: Mapping[str, str]) -> Any:
    """Availability to date over time, one panel per scope; colour = arm, dash = grid point,
    every line named in the legend."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    scopes = list(dict.fromkeys(timeseries["architecture"]))
    scopes.sort(key=lambda s: s != "*")  # the fleet first, then architectures as sampled
    fig = make_subplots(
        rows=len(scopes),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[SCOPE_NAMES.get(s, s) for s in scopes],
    )
    mean = (
        timeseries.groupby(["arm", "point", "architecture", "time"], sort=False)[
            "guest_availability_to_date"
        ]
        .mean()
        .reset_index()
    )
    points = list(dict.fromkeys(mean["point"]))
    lines = mean[["arm", "point"]].drop_duplicates()
    for row, scope in enumerate(scopes, start=1):
        for (arm, point), group in mean[mean["architecture"] == scope].groupby(
            ["arm", "point"], sort=False
        ):
            first = point == next(p for a, p in lines.itertuples(index=False) if a == arm)
            fig.add_trace(
                go.Scatter(
                    x=group["time"] / 24.0,
                    y=group["guest_availability_to_date"],
                    name=arm if point == "{}" else _label(point),
                    legendgroup=arm,
                    legendgrouptitle_text=arm if first and point != "{}" else None,
                    showlegend=row == 1,
                    mode="lines",
                    line={"color": colours[arm], "dash": DASHES[points.index(point) % len(DASHES)]},
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(
            title_text="availability", tickformat=".5f", automargin=True, row=row, col=1
        )
    fig.update_xaxes(title_text="days", row=len(scopes), col=1)
    fig.update_layout(
        title=TITLES["over_time"],
        legend=LEGEND,
        height=max(
            320 * len(scopes) + 120, 150 + LEGEND_ROW_PX * (len(lines) + lines["arm"].nunique())
        ),
    )
    return fig


def _number(value: float, digits: int) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def _ci(row: pd.Series, metric: str, digits: int) -> str:
    mean, low, high = row[metric], row[f"{metric}_ci95_low"], row[f"{metric}_ci95_high"]
    if pd.isna(mean):
        return ""
    half = (high - low) / 2
    return _number(mean, digits) if half == 0 else f"{mean:.{digits}f} ± {half:.{digits}f}"


def summary_table_html(cells: pd.DataFrame) -> str:
    """The per-cell table: mean ± 95 % CI half-width over replications."""
    head = (
        "arm",
        "grid point",
        "replications",
        "guest availability",
        "downtime (min/guest-year)",
        "incidents per replication",
        "blast radius max",
    )
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for _, row in cells.iterrows():
        values = (
            row["arm"],
            _label(row["point"]),
            str(row["replications"]),
            _ci(row, "guest_availability", 6),
            _ci(row, "guest_downtime_min_per_year", 1),
            _ci(row, "incidents", 2),
            _ci(row, "blast_radius_max", 1),
        )
        lines.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } td:first-child, td:nth-child(2) { text-align: left; }
.meta { color: #555; } .figure { margin: 2em 0; }
"""


def _header(manifest: dict[str, Any], summary: pd.DataFrame) -> str:
    scenario = manifest.get("scenario") or {}
    facts = {
        "source": manifest.get("source"),
        "scenario hash": manifest.get("scenario_hash") or manifest.get("config_hash"),
        "replications finished": f"{len(summary)} of {manifest.get('tasks', len(summary))}",
        "seeding": manifest.get("seeding"),
        "versions": ", ".join(f"{k} {v}" for k, v in (manifest.get("versions") or {}).items()),
    }
    items = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in facts.items() if v
    )
    failures = manifest.get("failures") or []
    failed = "".join(
        f"<li>{html.escape(f['key'])} ({html.escape(f['task'])}): {html.escape(f['error'])}</li>"
        for f in failures
    )
    question = scenario.get("question")
    return (
        f"<h1>{html.escape(str(manifest.get('name', 'results')))}</h1>"
        + (f"<p><i>{html.escape(question)}</i></p>" if question else "")
        + f'<ul class="meta">{items}</ul>'
        + (f"<h3>Failed tasks</h3><ul>{failed}</ul>" if failed else "")
    )


def render_report(
    manifest: dict[str, Any],
    summary: pd.DataFrame,
    timeseries: pd.DataFrame,
    guest_downtime: Mapping[tuple[str, str], Sequence[float]] | None = None,
) -> str:
    """The report page as one HTML string, plotly.js inline (no network needed to view it).
    ``guest_downtime``: each guest's own downtime per (arm, point), for its histogram."""
    cells = cell_summary(summary, (*CELL_METRICS, "effective_capacity"))
    arms = [a for a in manifest.get("arms") or [] if a in set(summary["arm"])]
    colours = arm_colours(arms or list(dict.fromkeys(summary["arm"])))
    keys = [k for k in manifest.get("sweep_keys") or [] if k]
    swept = {f"sweep-{i}": sweep_figure(cells, key, colours) for i, key in enumerate(keys)}
    figures = {
        "availability": availability_figure(cells, colours),
        "downtime": downtime_figure(summary, colours),
        "incidents": incidents_figure(summary),
        "blast": blast_radius_figure(summary, colours),
        "capacity": capacity_figure(cells, manifest, colours),
    }
    if not timeseries.empty:
        figures["over_time"] = over_time_figure(timeseries, colours)
    if guest_downtime and any(guest_downtime.values()):
        labelled = {f"{arm} {_label(point)}".removesuffix(" -"): values
                    for (arm, point), values in guest_downtime.items()}  # fmt: skip
        figures["guest_downtime"] = guest_downtime_figure(labelled)
    slo_costs = slo_cost_table_html(summary)
    if slo_costs:
        slo_costs = (
            "<h2>SLO, per-guest downtime and cost per year (mean ± 95 % CI)</h2>" + slo_costs
        )

    def divs(named: Mapping[str, Any], first: bool) -> str:
        return "\n".join(
            '<div class="figure">'
            + fig.to_html(
                full_html=False,
                include_plotlyjs=first and i == 0,
                div_id=f"figure-{name}",
                config={"displaylogo": False, "responsive": True},
            )
            + "</div>"
            for i, (name, fig) in enumerate(named.items())
        )

    note = (
        "<p class='meta'>Downtime is not split by cause in the metrics, only into planned "
        "(update) and unplanned minutes; causes are shown as incident counts.</p>"
    )
    title = html.escape(f"{manifest.get('name', 'results')}: twin report")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n"
        + _header(manifest, summary)
        + (f"<h2>Against what was swept</h2>{divs(swept, True)}" if swept else "")
        + "<h2>Summary (mean ± 95 % CI half-width over replications)</h2>"
        + summary_table_html(cells)
        + slo_costs
        + note
        + "<h2>Per arm and grid point</h2>"
        + divs(figures, not swept)
        + "\n</body></html>\n"
    )


def write_report(run_dir: Path, output: Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``output`` (default ``run_dir/report.html``)."""
    manifest, summary, timeseries = load_run(run_dir)
    downtime = guest_downtime_by_cell(run_dir) if manifest.get("kind") == "twin-sweep" else None
    output = run_dir / REPORT if output is None else output
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(render_report(manifest, summary, timeseries, downtime), encoding="utf-8")
    tmp.replace(output)
    return output


# ---------------------------------------------------------------------------------------------
# SLO and cost sections (issue 19): separate figures, called by `render_report` and
# `twin recommend`'s page


def pareto_figure(
    candidates: list[dict[str, Any]], max_breach: float, recommended: dict[str, Any] | None = None
) -> Any:
    """Cost against breach probability, one point per candidate of `twin recommend` (its
    JSON ``candidates``), with 95 % intervals, on a log cost axis; the cheapest-for-its-risk
    frontier and the SLO's ``max_breach`` line. Frontier points and the ``recommended``
    one are labelled, every point names itself on hover."""
    import plotly.graph_objects as go

    def label(c: dict[str, Any]) -> str:
        knobs = ", ".join(f"{k}={v}" for k, v in c["knobs"].items())
        return f"{c['arm']}: {knobs}" if c.get("arm") not in (None, "base") else knobs

    costed = [c for c in candidates if c["cost.total"] and c["slo_breach_probability"]]
    frontier, cheapest = [], math.inf
    for c in sorted(costed, key=lambda c: (c["slo_breach_probability"]["mean"],
                                           c["cost.total"]["mean"])):  # fmt: skip
        if c["cost.total"]["mean"] < cheapest:  # lower risk first: cheaper than all before
            frontier.append(c)
            cheapest = c["cost.total"]["mean"]
    fig = go.Figure()
    for meets, name, colour in ((True, "meets the SLO", "#2a9d8f"),
                                (False, "does not", "#e76f51")):  # fmt: skip
        chosen = [c for c in costed if c["meets"] is meets]
        if not chosen:
            continue
        breach = [c["slo_breach_probability"] for c in chosen]
        cost = [c["cost.total"] for c in chosen]
        best = [recommended is not None and recommended.items() <= ({"arm": c["arm"]}
                | c["knobs"]).items() for c in chosen]  # fmt: skip
        pairs = zip(chosen, best, strict=True)
        text = [("recommended: " if is_best else "") + label(c) if is_best or c in frontier
                else "" for c, is_best in pairs]  # fmt: skip
        fig.add_trace(go.Scatter(
            x=[b["mean"] for b in breach], y=[k["mean"] for k in cost], mode="markers+text",
            name=name, hovertext=[label(c) for c in chosen], text=text,
            textposition=[  # alternate above and below along the frontier, so labels part
                "bottom right" if c in frontier and frontier.index(c) % 2 else "top right"
                for c in chosen
            ],
            marker={"size": [16 if is_best else 10 for is_best in best], "color": colour,
                    "symbol": ["star" if is_best else "circle" for is_best in best]},
            error_x={"type": "data", "symmetric": False,
                     "array": [b["ci95_high"] - b["mean"] for b in breach],
                     "arrayminus": [b["mean"] - b["ci95_low"] for b in breach]},
            error_y={"type": "data", "symmetric": False,
                     "array": [k["ci95_high"] - k["mean"] for k in cost],
                     "arrayminus": [k["mean"] - k["ci95_low"] for k in cost]},
        ))  # fmt: skip
    if len(frontier) > 1:
        fig.add_trace(go.Scatter(
            x=[c["slo_breach_probability"]["mean"] for c in frontier],
            y=[c["cost.total"]["mean"] for c in frontier], mode="lines", name="Pareto frontier",
            line={"dash": "dot", "color": "#555"}, hoverinfo="skip",
        ))  # fmt: skip
    fig.add_vline(x=max_breach, line_dash="dash", line_color="#e76f51",
                  annotation_text=f"max breach {max_breach:g}")  # fmt: skip
    fig.update_layout(
        title="Candidates: cost per year against SLO breach probability (mean and 95 % CI)",
        xaxis_title="slo_breach_probability (share of guest-periods below target)",
        yaxis_title="cost.total per year (log)", yaxis_type="log", height=600,
    )  # fmt: skip
    return fig


def guest_downtime_figure(downtimes: Mapping[str, Sequence[float]]) -> Any:
    """A histogram of each guest's own downtime (minutes per guest-year) per label (an arm
    and grid point, or an architecture), one at a time with a menu to pick another (the
    first is shown); the values are one per guest (and replication), their p50, p90 and
    p99 in the legend."""
    import numpy as np
    import plotly.graph_objects as go

    from twin.slo import downtime_percentiles

    fig = go.Figure()
    labels = [label for label, values in downtimes.items() if len(values)]
    for i, label in enumerate(labels):
        x = np.asarray(downtimes[label], dtype=float)
        p = list(downtime_percentiles(x).values())
        name = f"{label}: p50 {p[0]:.1f}, p90 {p[1]:.1f}, p99 {p[2]:.1f}"
        fig.add_trace(go.Histogram(x=x, name=name, nbinsx=60, visible=i == 0,
                                   showlegend=True, marker_color="#457b9d"))  # fmt: skip
    buttons = [
        {"label": label, "method": "update",
         "args": [{"visible": [j == i for j in range(len(labels))]}]}
        for i, label in enumerate(labels)
    ]  # fmt: skip
    fig.update_layout(
        title=TITLES["guest_downtime"], bargap=0.02, legend={"x": 0, "y": -0.25},
        xaxis_title="downtime (minutes per guest-year)", yaxis_title="guests (log)",
        yaxis_type="log", height=520,
        updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.15,
                      "showactive": True}] if len(labels) > 1 else [],
    )  # fmt: skip
    return fig


SHORT_NAMES = {
    "slo_breach_probability": "breach probability",
    "error_budget_used": "error budget used",
    "guest_downtime_p50_min_per_year": "guest p50 min/yr",
    "guest_downtime_p90_min_per_year": "guest p90 min/yr",
    "guest_downtime_p99_min_per_year": "guest p99 min/yr",
    "cost.downtime": "cost: downtime",
    "cost.operators": "operators",
    "cost.hosts": "hosts",
    "cost.licenses": "licenses",
    "cost.total": "total",
}
COST_ROWS = ("cost.downtime", "cost.operators", "cost.hosts", "cost.licenses", "cost.total")
SLO_ROWS = (
    "slo_breach_probability",
    "error_budget_used",
    "guest_downtime_p50_min_per_year",
    "guest_downtime_p90_min_per_year",
    "guest_downtime_p99_min_per_year",
)


def slo_cost_table_html(summary: pd.DataFrame) -> str:
    """Per arm x grid point: the SLO, per-guest percentile and cost metrics present
    (mean ± 95 % CI half-width over replications); empty when there are none."""
    from twin.metrics import ci95

    metrics = [m for m in (*SLO_ROWS, *COST_ROWS) if m in summary]
    if not metrics:
        return ""
    head = ["arm", "grid point", *(SHORT_NAMES.get(m, m) for m in metrics)]
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for (arm, point), group in summary.groupby(["arm", "point"], sort=False):
        cells = [str(arm), _label(point)]
        for metric in metrics:
            values = group[metric].dropna()
            if not len(values):
                cells.append("")
                continue
            leaf = ci95(values)
            digits = 4 if metric == "slo_breach_probability" else 1 if "min" in metric else 2
            if metric.startswith("cost."):
                digits = 0
            half = (leaf["ci95_high"] - leaf["ci95_low"]) / 2
            cells.append(f"{leaf['mean']:,.{digits}f} ± {half:,.{digits}f}")
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)
