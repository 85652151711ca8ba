"""Tables of results for people: a leaf as ``mean ± half-width``, and ``twin compare``
with arms as rows (so no name is ever cut), as a rich table, CSV or Markdown."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from rich.table import Table

from twin.experiments.compare import Comparison

FORMATS = ("table", "csv", "markdown")


def format_leaf(leaf: dict[str, float]) -> str:
    """``mean ± half-width`` with decimals down to two significant digits of the
    half-width (so availabilities near 1 keep their nines); an interval clipped to its
    metric's range is not symmetric and reads ``mean [low, high]``."""
    mean, low, high = leaf["mean"], leaf["ci95_low"], leaf["ci95_high"]
    half = max(high - mean, mean - low)
    if half > 0:
        digits = min(9, max(2, 1 - math.floor(math.log10(half))))
        if math.isclose(high - mean, mean - low, rel_tol=1e-6, abs_tol=1e-15):
            return f"{mean:.{digits}f} ± {half:.{digits}f}"
        return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
    digits = 6 if 0 < abs(mean) < 1 else 2
    return f"{mean:.{digits}f}"


def comparison_frame(comparison: Comparison, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per metric x arm: the arm's mean and 95 % CI, and for a compared arm its
    control and the paired difference with its CI and ``significant`` flag."""
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        for arm in comparison.runs:
            leaf = comparison.leaf(arm, metric)
            control = comparison.controls.get(arm)
            diff = comparison.difference(arm, metric, control) if control else None
            rows.append(
                {
                    "metric": metric,
                    "arm": arm,
                    "mean": leaf["mean"] if leaf else math.nan,
                    "ci95_low": leaf["ci95_low"] if leaf else math.nan,
                    "ci95_high": leaf["ci95_high"] if leaf else math.nan,
                    "control": control or "",
                    "difference": diff["mean"] if diff else math.nan,
                    "difference_ci95_low": diff["ci95_low"] if diff else math.nan,
                    "difference_ci95_high": diff["ci95_high"] if diff else math.nan,
                    "significant": diff["significant"] if diff else None,
                    "_leaf": leaf,
                    "_diff": diff,
                }
            )
    return pd.DataFrame(rows)


def _title(comparison: Comparison) -> str:
    reps = min(len(run.replications) for run in comparison.runs.values())
    return f"{comparison.name}: {reps} replication(s) per arm (mean ± 95 % CI half-width)"


def _cells(row: Any) -> tuple[str, str, str]:
    value = format_leaf(row["_leaf"]) if row["_leaf"] else ""
    diff = row["_diff"]
    if not diff:
        return value, "", ""
    return value, f"− {row['control']}", format_leaf(diff)


def comparison_table(comparison: Comparison, metrics: Sequence[str]) -> Table:
    """Arms as rows under each metric; a difference whose CI excludes 0 is bold."""
    table = Table(
        title=_title(comparison),
        caption=(comparison.question + "\n" if comparison.question else "")
        + "difference: paired over replications with the same seeds; bold = its 95 % CI "
        "excludes 0",
    )
    for header, justify in (("metric", "left"), ("arm", "left"), ("value", "right"),
                            ("vs", "left"), ("difference", "right")):  # fmt: skip
        table.add_column(header, justify=justify, overflow="fold")
    frame = comparison_frame(comparison, metrics)
    arms = len(comparison.runs)
    for i, row in frame.iterrows():
        value, versus, diff = _cells(row)
        first = i % arms == 0
        style = "bold cyan" if row["_diff"] and row["_diff"]["significant"] else "cyan"
        table.add_row(
            row["metric"].removeprefix("by_architecture.") if first else "",
            row["arm"],
            value,
            versus,
            f"[{style}]{diff}[/]" if diff else "",
            end_section=i % arms == arms - 1,
        )
    return table


def comparison_csv(comparison: Comparison, metrics: Sequence[str]) -> str:
    """The rows of `comparison_frame` as CSV (full precision, one header line)."""
    frame = comparison_frame(comparison, metrics)
    out = io.StringIO()
    frame.drop(columns=["_leaf", "_diff"]).to_csv(out, index=False)
    return out.getvalue()


def comparison_markdown(comparison: Comparison, metrics: Sequence[str]) -> str:
    """A GitHub Markdown table: the rich table's rows, with a ``significant`` column."""
    lines = [
        f"**{_title(comparison)}**",
        "",
        "| metric | arm | value | vs | difference | significant |",
        "|---|---|--:|---|--:|---|",
    ]
    for _, row in comparison_frame(comparison, metrics).iterrows():
        value, versus, diff = _cells(row)
        significant = "" if not row["_diff"] else ("yes" if row["_diff"]["significant"] else "no")
        cells = [row["metric"], row["arm"], value, versus, diff, significant]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
