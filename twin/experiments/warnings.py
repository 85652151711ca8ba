"""Warnings a run's result carries: lines saying an answer may not mean what it seems.

A result (a run, a comparison) carries a short list of one-line strings, its
``warnings``; the JSON has them under ``warnings`` and the CLI prints each on stderr in
one place. Producers are plain functions: `noise_warning` (too few replications, or
intervals wide against their value) is one; another producer (saturated operators,
long ticket waits, campaigns falling behind, ...) is added to `RUN_CHECKS` and shows up
in ``twin run`` and, prefixed with the arm, in ``twin compare``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from twin.experiments.precision import HEADLINE, relative_half_widths
from twin.experiments.saturation import saturation_check
from twin.rare_events import effective_sample_size

if TYPE_CHECKING:
    from twin.experiments.runner import RunResult

MIN_REPLICATIONS = 5
"""Fewer replications than this: the interval itself is too uncertain to trust."""
MAX_RELATIVE_HALF_WIDTH = 0.5
"""A headline half-width above this share of its value: the answer is mostly noise."""
SUGGESTED_PRECISION = 0.1

RunCheck = Callable[["RunResult"], list[str]]
MIN_EFFECTIVE_SHARE = 0.2
"""Boosted replications whose effective sample size is below this share of their number:
a few of them carry the estimate."""


def rare_events_check(result: RunResult) -> list[str]:
    """With ``--rare-events``: nothing was rare enough to boost, or the weights are so
    uneven that a few replications carry the estimate."""
    if result.config.rare_events is None or not result.replications:
        return []
    if not result.config.rare_events.boost:
        return ["--rare-events: no component fault is rare in this fleet, nothing was "
                "boosted (plain sampling)"]  # fmt: skip
    n = len(result.replications)
    ess = effective_sample_size(result.log_weights or [])
    if n >= MIN_REPLICATIONS and ess < MIN_EFFECTIVE_SHARE * n:
        return [f"--rare-events: effective sample size {ess:.1f} of {n} replications: a few "
                "carry the estimate, its interval may be too narrow; lower the boost "
                "(rare_events.boost)"]  # fmt: skip
    return []


RUN_CHECKS: list[RunCheck] = [saturation_check, rare_events_check]
"""Producers of warnings about one run (each returns zero or more one-line strings)."""


def noise_warning(
    groups: Mapping[str, Sequence[Mapping[str, float]]],
    log_weights: Mapping[str, Sequence[float] | None] | None = None,
) -> list[str]:
    """At most one line: the replications of each group (an arm, or ``""`` for a run) are
    fewer than `MIN_REPLICATIONS`, or a headline metric's 95 % half-width exceeds
    `MAX_RELATIVE_HALF_WIDTH` of its value (of the unavailability for an availability;
    likelihood-weighted for a group with ``log_weights``). The line names the worst
    metric and ``--precision`` as the remedy."""
    relative: dict[str, float] = {}
    for group, rows in groups.items():
        weights = (log_weights or {}).get(group)
        relative |= relative_half_widths(rows, HEADLINE, f"{group}: " if group else "", weights)
    if not relative:
        return []
    fewest = min(len(rows) for rows in groups.values())
    wide = {m: r for m, r in relative.items() if r > MAX_RELATIVE_HALF_WIDTH}
    if fewest >= MIN_REPLICATIONS and not wide:
        return []
    worst = max(relative, key=lambda m: relative[m])
    share = relative[worst]
    how_wide = (
        f"its 95 % half-width is {share * 100:.0f} % of its value"
        if math.isfinite(share)
        else "its 95 % interval cannot be estimated"
    )
    per = " per arm" if len(groups) > 1 or "" not in groups else ""
    reps = f"{fewest} replication(s){per}"
    why = f"only {reps} (fewer than {MIN_REPLICATIONS})" if fewest < MIN_REPLICATIONS else reps
    others = (
        f" ({len(wide) - 1} more metric(s) above {MAX_RELATIVE_HALF_WIDTH * 100:.0f} %)"
        if len(wide) > 1
        else ""
    )
    return [f"{why}: {worst}: {how_wide}{others}; rerun with --precision {SUGGESTED_PRECISION:g}"]


def run_warnings(result: RunResult) -> list[str]:
    """Every warning about one run: its own notes, noise, then the `RUN_CHECKS`."""
    rows = [r.metrics for r in result.replications]
    lines = [*result.notes, *noise_warning({"": rows}, {"": result.log_weights})]
    return lines + [line for check in RUN_CHECKS for line in check(result)]


def comparison_warnings(runs: Mapping[str, RunResult], notes: Sequence[str] = ()) -> list[str]:
    """Every warning about a comparison: its notes, one noise line over all arms, and
    each arm's `RUN_CHECKS` lines prefixed with the arm."""
    groups = {arm: [r.metrics for r in run.replications] for arm, run in runs.items()}
    weights = {arm: run.log_weights for arm, run in runs.items()}
    lines = [*notes, *noise_warning(groups, weights)]
    for arm, run in runs.items():
        lines += [f"{arm}: {line}" for check in RUN_CHECKS for line in check(run)]
    return lines
