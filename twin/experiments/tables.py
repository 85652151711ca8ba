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


def comparison_rows(comparison: Comparison, metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per metric x arm: the arm's 95 % CI leaf (None when the arm lacks the
    metric), its control, and the paired difference from it (None for an uncompared arm)."""
    rows = []
    for metric in metrics:
        for arm in comparison.runs:
            control = comparison.controls.get(arm)
            diff = comparison.difference(arm, metric, control) if control else None
            leaf = comparison.leaf(arm, metric)
            rows.append({"metric": metric, "arm": arm, "leaf": leaf, "control": control or "",
                         "diff": diff})  # fmt: skip
    return rows


def comparison_frame(comparison: Comparison, metrics: Sequence[str]) -> pd.DataFrame:
    """`comparison_rows` flat: mean and 95 % CI, control, difference with its CI and
    ``significant`` flag (empty where there is none)."""
    flat = []
    for row in comparison_rows(comparison, metrics):
        leaf, diff = row["leaf"] or {}, row["diff"] or {}
        flat.append(
            {
                "metric": row["metric"],
                "arm": row["arm"],
                **{k: leaf.get(k, math.nan) for k in ("mean", "ci95_low", "ci95_high")},
                "control": row["control"],
                "difference": diff.get("mean", math.nan),
                "difference_ci95_low": diff.get("ci95_low", math.nan),
                "difference_ci95_high": diff.get("ci95_high", math.nan),
                "significant": diff.get("significant", ""),
            }
        )
    return pd.DataFrame(flat)


def _metric_label(metric: str) -> str:
    return metric.removeprefix("by_architecture.")


def _title(comparison: Comparison) -> str:
    reps = min(len(run.replications) for run in comparison.runs.values())
    return f"{comparison.name}: {reps} replication(s) per arm (mean ± 95 % CI half-width)"


def _cells(row: dict[str, Any]) -> tuple[str, str, str]:
    value = format_leaf(row["leaf"]) if row["leaf"] else ""
    diff = row["diff"]
    if not diff:
        return value, "", ""
    return value, f"− {row['control']}", format_leaf(diff)


def _controls_caption(comparison: Comparison) -> str:
    first = next(iter(comparison.runs))
    own = [f"{arm} − {control}" for arm, control in comparison.controls.items() if control != first]
    return f"difference: arm − {first}" + (f" (but {', '.join(own)})" if own else "")


def comparison_table(comparison: Comparison, metrics: Sequence[str]) -> Table:
    """Each metric on a row of its own, its arms as the rows below it (so the names take
    one column and are never cut); a difference whose 95 % CI excludes 0 is bold."""
    caption = [comparison.question] if comparison.question else []
    caption += [f"{_controls_caption(comparison)}, paired over replications with the same "
                "seeds; bold: its 95 % CI excludes 0"]  # fmt: skip
    table = Table(title=_title(comparison), caption="\n".join(caption))
    names = [_metric_label(m) for m in metrics] + [f"  {arm}" for arm in comparison.runs]
    table.add_column("metric / arm", min_width=max(len(n) for n in names), no_wrap=True)
    table.add_column("value", justify="right", overflow="fold")
    table.add_column("difference from control", justify="right", overflow="fold")
    arms = len(comparison.runs)
    for i, row in enumerate(comparison_rows(comparison, metrics)):
        if i % arms == 0:
            table.add_row(f"[bold]{_metric_label(row['metric'])}[/]", "", "")
        value, _, diff = _cells(row)
        style = "bold cyan" if row["diff"] and row["diff"]["significant"] else "cyan"
        table.add_row(f"  {row['arm']}", value, f"[{style}]{diff}[/]" if diff else "",
                      end_section=i % arms == arms - 1)  # fmt: skip
    return table


def comparison_csv(comparison: Comparison, metrics: Sequence[str]) -> str:
    """The rows of `comparison_frame` as CSV (full precision, one header line)."""
    out = io.StringIO()
    comparison_frame(comparison, metrics).to_csv(out, index=False)
    return out.getvalue()


def comparison_markdown(comparison: Comparison, metrics: Sequence[str]) -> str:
    """A GitHub Markdown table: the rich table's rows, with a ``significant`` column."""
    lines = [
        f"**{_title(comparison)}**",
        "",
        "| metric | arm | value | vs | difference | significant |",
        "|---|---|--:|---|--:|---|",
    ]
    for row in comparison_rows(comparison, metrics):
        value, versus, diff = _cells(row)
        significant = "" if not row["diff"] else ("yes" if row["diff"]["significant"] else "no")
        cells = [row["metric"], row["arm"], value, versus, diff, significant]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
