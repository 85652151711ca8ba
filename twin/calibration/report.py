"""The calibration report: every fit drawn against the data, in one self-contained HTML file.

For each cause, two panels: the Kaplan-Meier survival curve of the time between faults
(right-censored) and of the repair time, each with the survival function of every fitted
family (the chosen one solid), one colour per family across every panel and each family
named in the legend. Poor fits are flagged in the table. Plotly's JavaScript is inlined, so
the file opens offline.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from twin.calibration.calibrate import Calibration
from twin.calibration.fitting import FAMILIES, POOR_FIT_KS, Fit, Sample, kaplan_meier

COLOURS = dict(zip(FAMILIES, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"), strict=True))
"""One colour per fitted family, the same in every panel and in the legend."""


def _panel(fig: go.Figure, row: int, col: int, sample: Sample | None, fits: list[Fit],
           named: set[str]) -> None:  # fmt: skip
    """One panel; ``named`` holds the legend entries already shown (each shown once)."""
    if sample is None or not fits:
        return
    t, surv = kaplan_meier(sample)
    fig.add_trace(go.Scatter(x=np.concatenate([[0], t]), y=np.concatenate([[1], surv]),
                             mode="lines", line={"shape": "hv", "color": "black"},
                             name="Kaplan-Meier (data)", legendgroup="data",
                             showlegend="data" not in named), row=row, col=col)  # fmt: skip
    named.add("data")
    grid = np.geomspace(max(float(sample.times.min()), 1e-3), float(sample.times.max()), 200)
    for i, fit in enumerate(fits):
        fig.add_trace(go.Scatter(x=grid, y=fit.frozen().sf(grid), mode="lines",
                                 line={"dash": "solid" if i == 0 else "dot",
                                       "color": COLOURS.get(fit.family)},
                                 name=fit.family, legendgroup=fit.family,
                                 showlegend=fit.family not in named,
                                 hovertext=f"{fit.family} (AIC {fit.aic:.1f})"),
                      row=row, col=col)  # fmt: skip
        named.add(fit.family)
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
    named: set[str] = set()
    for row, cause in enumerate(causes, start=1):
        _panel(fig, row, 1, cause.fault_sample, cause.faults, named)
        _panel(fig, row, 2, cause.repair_sample, cause.repairs, named)
    fig.update_layout(height=320 * max(len(causes), 1), width=1100, template="plotly_white")
    return fig


def _describe(fit: Fit | None) -> str:
    if fit is None:
        return "too few events"
    text = f"{fit.family}, {fit.kept()}, KS {fit.ks_distance:.3f}"
    return f"{text}: POOR FIT" if fit.poor else text


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
right-censoring; the family is chosen by AIC among the fits that keep the data's mean
(repair times) or its fault count over the time at risk (censored times between faults),
within 95 % sampling error, since availability is a rate times a mean repair; KS is
the largest gap between the Kaplan-Meier and fitted survival curves, and a fit with KS above
{POOR_FIT_KS} or a lost mean is marked POOR FIT. {html.escape(trend.reading)}</p>
{lanl}
<table><tr><th>cause</th><th>count</th><th>per host-year (95 % CI)</th>
<th>time between faults</th><th>repair time</th></tr>{"".join(rows)}</table>
{figure}
</body></html>"""
    path.write_text(page)
    return path
