"""Saturation, said out loud: warnings when a run's operators or campaigns cannot keep up.

A fleet whose team is saturated answers every question wrongly without a word: tickets
wait for days, hosts stay down, patches are never applied, and fewer update incidents read
as an improvement. `saturation_warnings` reads a run's summarised metrics (the SPEC 5
``metrics`` object, leaves ``{mean, ci95_low, ci95_high}``) and returns one line per sign of
saturation; `twin run` and `twin compare` print them on stderr and put them in the JSON's
``warnings`` list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twin.metrics import summarise

if TYPE_CHECKING:
    from twin.experiments.runner import RunResult

UTILIZATION_LIMIT = 0.9
"""Operator utilisation above which the ticket queue is near saturation (a queue's waits
grow as 1 / (1 - utilisation))."""
WAIT_LIMIT_HOURS = 24.0
"""Mean ticket wait above which a team is behind by more than a day."""


def _mean(metrics: Mapping[str, Any], name: str) -> float:
    leaf = metrics.get(name)
    return float(leaf["mean"]) if isinstance(leaf, Mapping) and "mean" in leaf else 0.0


def saturation_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """One warning line for each of: operator utilisation above `UTILIZATION_LIMIT`, a mean
    ticket wait above `WAIT_LIMIT_HOURS`, an update campaign behind (a release still rolling
    when the next was due); none for a healthy run."""
    warnings = []
    utilization = _mean(metrics, "operator_utilization")
    if utilization > UTILIZATION_LIMIT:
        warnings.append(
            f"operators saturated: operator utilisation {utilization:.2f} > "
            f"{UTILIZATION_LIMIT:g}; results depend on the queue, not on the faults"
        )
    wait = _mean(metrics, "ticket_wait_hours")
    if wait > WAIT_LIMIT_HOURS:
        warnings.append(
            f"tickets wait {wait:.1f} h on average for a free operator (> {WAIT_LIMIT_HOURS:g} h)"
        )
    behind = _mean(metrics, "releases_superseded")
    if behind > 0:
        missed = _mean(metrics, "updates_missed")
        compliance = _mean(metrics, "patch_compliance")
        warnings.append(
            f"update campaign behind: {behind:.3g} release(s) still rolling when the next "
            f"was due; {missed:.0f} host updates missed, patch compliance {compliance:.2f}"
        )
    return warnings


def saturation_check(result: RunResult) -> list[str]:
    """`saturation_warnings` of one run (a `twin.experiments.warnings.RUN_CHECKS` entry)."""
    return saturation_warnings(summarise([r.metrics for r in result.replications]))
