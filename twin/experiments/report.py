"""One self-contained HTML report of a results directory (``twin report``).

The page holds plotly.js inline, so it opens offline and can be mailed as one file:
guest availability per arm and grid point with 95 % confidence intervals, downtime split
into planned (updates) and unplanned, incidents by cause, the blast-radius distribution,
availability over time by architecture, and the per-cell summary table.

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

from twin.experiments.sweep import (
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
SCOPE_NAMES = {"*": "fleet"}
TITLES = {
    "availability": "Guest availability by arm and grid point (mean and 95 % CI)",
    "downtime": "Guest downtime, planned (updates) and unplanned (minutes per guest-year, mean)",
    "incidents": "Incidents by cause (mean per replication)",
    "blast": "Blast radius: guests lost per incident (per-replication mean, p95 and max)",
    "over_time": "Guest availability to date over time, by architecture (mean over replications)",
    "guest_downtime": "Each guest's own downtime (minutes per guest-year, guests of every "
    "replication; pick a cell on the right)",
}


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


def _cells(summary: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Each row's arm and grid-point label: a plot's two-level x axis."""
    return list(summary["arm"]), [_label(p) for p in summary["point"]]


def availability_figure(cells: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    one_point = cells["point"].nunique() == 1  # no grid: the arms go along the x axis
    for arm, group in cells.groupby("arm", sort=False):
        mean = group["guest_availability"]
        fig.add_trace(
            go.Scatter(
                x=[arm] if one_point else [_label(p) for p in group["point"]],
                y=mean,
                name=str(arm),
                mode="markers",
                marker={"size": 10},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": group["guest_availability_ci95_high"] - mean,
                    "arrayminus": mean - group["guest_availability_ci95_low"],
                },
            )
        )
    low = float(cells["guest_availability_ci95_low"].min())
    high = float(cells["guest_availability_ci95_high"].max())
    pad = max((high - low) * 0.15, 1e-6)
    fig.update_layout(
        title=TITLES["availability"],
        scattermode="group",
        xaxis_title="arm" if one_point else "grid point",
        yaxis_title="guest availability",
        yaxis_tickformat=".6f",
        yaxis_range=[low - pad, min(1.0, high) + pad],  # zoom on the nines, not on 0..1
    )
    return fig


def downtime_figure(summary: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    means = summary.groupby(["arm", "point"], sort=False)[
        ["guest_downtime_min_per_year", "planned_downtime_min_per_year"]
    ].mean()
    arms = [a for a, _ in means.index]
    points = [_label(p) for _, p in means.index]
    planned = means["planned_downtime_min_per_year"]
    unplanned = (means["guest_downtime_min_per_year"] - planned).clip(lower=0)
    fig = go.Figure(
        [
            go.Bar(x=[arms, points], y=unplanned, name="unplanned"),
            go.Bar(x=[arms, points], y=planned, name="planned (updates)"),
        ]
    )
    fig.update_layout(
        title=TITLES["downtime"], barmode="stack", yaxis_title="minutes per guest-year"
    )
    return fig


def incidents_figure(summary: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    columns = [f"incidents.{c}" for c in CAUSES if f"incidents.{c}" in summary]
    means = summary.groupby(["arm", "point"], sort=False)[columns].mean()
    x = [[a for a, _ in means.index], [_label(p) for _, p in means.index]]
    fig = go.Figure([go.Bar(x=x, y=means[c], name=c.split(".", 1)[1]) for c in columns])
    fig.update_layout(
        title=TITLES["incidents"], barmode="stack", yaxis_title="incidents per replication"
    )
    return fig


def blast_radius_figure(summary: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    arms, points = _cells(summary)
    fig = go.Figure(
        [
            go.Box(x=[arms, points], y=summary[f"blast_radius_{stat}"], name=stat, boxpoints="all")
            for stat in ("mean", "p95", "max")
            if f"blast_radius_{stat}" in summary
        ]
    )
    fig.update_layout(title=TITLES["blast"], boxmode="group", yaxis_title="guests per incident")
    return fig


def over_time_figure(timeseries: pd.DataFrame) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    scopes = list(dict.fromkeys(timeseries["architecture"]))
    scopes.sort(key=lambda s: s != "*")  # the fleet first, then architectures as sampled
    fig = make_subplots(
        rows=len(scopes),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[SCOPE_NAMES.get(s, s) for s in scopes],
    )
    mean = (
        timeseries.groupby(["arm", "point", "architecture", "time"], sort=False)[
            "guest_availability_to_date"
        ]
        .mean()
        .reset_index()
    )
    for row, scope in enumerate(scopes, start=1):
        for (arm, point), group in mean[mean["architecture"] == scope].groupby(
            ["arm", "point"], sort=False
        ):
            name = arm if point == "{}" else f"{arm} · {_label(point)}"
            fig.add_trace(
                go.Scatter(
                    x=group["time"] / 24.0,
                    y=group["guest_availability_to_date"],
                    name=name,
                    legendgroup=name,
                    showlegend=row == 1,
                    mode="lines",
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(title_text="availability", tickformat=".5f", row=row, col=1)
    fig.update_xaxes(title_text="days", row=len(scopes), col=1)
    fig.update_layout(title=TITLES["over_time"], height=300 * len(scopes) + 120)
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
    cells = cell_summary(summary)
    figures = {
        "availability": availability_figure(cells),
        "downtime": downtime_figure(summary),
        "incidents": incidents_figure(summary),
        "blast": blast_radius_figure(summary),
    }
    if not timeseries.empty:
        figures["over_time"] = over_time_figure(timeseries)
    if guest_downtime and any(guest_downtime.values()):
        labelled = {f"{arm} {_label(point)}".removesuffix(" -"): values
                    for (arm, point), values in guest_downtime.items()}  # fmt: skip
        figures["guest_downtime"] = guest_downtime_figure(labelled)
    slo_costs = slo_cost_table_html(summary)
    if slo_costs:
        slo_costs = (
            "<h2>SLO, per-guest downtime and cost per year (mean ± 95 % CI)</h2>" + slo_costs
        )
    divs = []
    for i, (name, fig) in enumerate(figures.items()):
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=i == 0,
            div_id=f"figure-{name}",
            config={"displaylogo": False},
        )
        divs.append(f'<div class="figure">{div}</div>')
    note = (
        "<p class='meta'>Downtime is not split by cause in the metrics, only into planned "
        "(update) and unplanned minutes; causes are shown as incident counts.</p>"
    )
    title = html.escape(f"{manifest.get('name', 'results')}: twin report")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n"
        + _header(manifest, summary)
        + "<h2>Summary (mean ± 95 % CI half-width over replications)</h2>"
        + summary_table_html(cells)
        + slo_costs
        + note
        + "\n".join(divs)
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
