"""The calibration report: every fit drawn against the data, in one self-contained HTML file.

For each cause, two panels: the Kaplan-Meier survival curve of the time between faults
(right-censored) and of the repair time, each with the survival function of every fitted
family (the AIC-best one solid). Plotly's JavaScript is inlined, so the file opens offline.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from twin.calibration.calibrate import Calibration
from twin.calibration.fitting import Fit, Sample, kaplan_meier


def _panel(fig: go.Figure, row: int, col: int, sample: Sample | None, fits: list[Fit]) -> None:
    if sample is None or not fits:
        return
    t, surv = kaplan_meier(sample)
    fig.add_trace(go.Scatter(x=np.concatenate([[0], t]), y=np.concatenate([[1], surv]),
                             mode="lines", line={"shape": "hv", "color": "black"},
                             name="Kaplan-Meier (data)", showlegend=row == 1 and col == 1),
                  row=row, col=col)  # fmt: skip
    grid = np.geomspace(max(float(sample.times.min()), 1e-3), float(sample.times.max()), 200)
    for i, fit in enumerate(fits):
        fig.add_trace(go.Scatter(x=grid, y=fit.frozen().sf(grid), mode="lines",
                                 line={"dash": "solid" if i == 0 else "dot"},
                                 name=f"{fit.family} (AIC {fit.aic:.1f})", legendgroup=fit.family,
                                 showlegend=False, hovertext=fit.family),
                      row=row, col=col)  # fmt: skip
    fig.update_xaxes(type="log", title_text="hours", row=row, col=col)
    fig.update_yaxes(title_text="survival", range=[0, 1.02], row=row, col=col)


def calibration_figure(calibration: Calibration) -> go.Figure:
    """Survival curves, data against fits: one row per cause (faults left, repairs right)."""
    causes = list(calibration.causes.values())
    titles = []
    for c in causes:
        best_fault = c.fault.family if c.fault else "too few events"
        best_repair = c.repair.family if c.repair else "too few events"
        titles += [f"{c.cause}: time between faults ({c.count}; best {best_fault})",
                   f"{c.cause}: repair time (best {best_repair})"]  # fmt: skip
    fig = make_subplots(rows=max(len(causes), 1), cols=2, subplot_titles=titles,
                        vertical_spacing=0.25 / max(len(causes), 1))  # fmt: skip
    for row, cause in enumerate(causes, start=1):
        _panel(fig, row, 1, cause.fault_sample, cause.faults)
        _panel(fig, row, 2, cause.repair_sample, cause.repairs)
    fig.update_layout(height=320 * max(len(causes), 1), width=1100, template="plotly_white")
    return fig


def _describe(fit: Fit | None) -> str:
    if fit is None:
        return "too few events"
    return f"{fit.family}, mean {fit.frozen().mean():.4g} h, KS {fit.ks_distance:.3f}"


def write_calibration_report(calibration: Calibration, path: Path) -> Path:
    """Write the report (a table of fits and the survival figure) to ``path``."""
    log = calibration.log
    rows = []
    for c in calibration.causes.values():
        rate = f"{c.rate.mean:.3g} ({c.rate.ci95_low:.3g}-{c.rate.ci95_high:.3g})"
        cells = [c.cause, str(c.count), rate, _describe(c.fault), _describe(c.repair)]
        rows.append("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
    lanl = (
        "<p>Data: failure records released by Los Alamos National Laboratory (LA-UR-05-7318). "
        "These are HPC cluster nodes, not hypervisor hosts.</p>"
        if "LANL" in log.source
        else ""
    )
    trend = calibration.trend
    figure = calibration_figure(calibration).to_html(full_html=False, include_plotlyjs=True)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Calibration: {html.escape(log.source)}</title>
<style>body{{font-family:sans-serif;margin:2em}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}</style>
</head><body>
<h1>Calibration of {html.escape(log.source)}</h1>
<p>Window {log.window_start:%Y-%m-%d} to {log.window_end:%Y-%m-%d}: {calibration.hosts} hosts,
{calibration.exposure_hours:,.0f} host-hours in service. Fits are maximum likelihood with
right-censoring; the family is chosen by AIC; KS is the largest gap between the Kaplan-Meier
and fitted survival curves. Laplace trend test over all faults: U = {trend.statistic:.2f},
p = {trend.p_value:.2g}{" (a trend: the rate is not constant)" if trend.significant else ""}.</p>
{lanl}
<table><tr><th>cause</th><th>count</th><th>per host-year (95 % CI)</th>
<th>time between faults</th><th>repair time</th></tr>{"".join(rows)}</table>
{figure}
</body></html>"""
    path.write_text(page)
    return path
