"""`twin recommend`: the cheapest fleet policy that meets an SLO.

Every combination of the knobs (dotted config keys, each with a list of values) is a
*candidate*: a cell of a sweep (`twin.experiments.sweep`: a process pool or Dask,
streamed to Parquet, resumable), crossed with the scenario's arms if it has any. A
candidate *meets* the SLO when the upper bound of the Student-t 95 % interval of its
``slo_breach_probability`` (over replications) is at most ``max_breach``; the
recommendation is the candidate that meets it at the lowest mean ``cost.total``.

Replications come in rounds. A screening round runs a third of them (at least 3); a
candidate whose interval already lies wholly above ``max_breach`` (its *lower* bound
exceeds it) is stopped there, since more replications would have to move its mean
across several half-widths to save it; the others run the rest. With ``precision``,
candidates whose interval still straddles ``max_breach`` get doubling rounds until its
half-width is at most ``precision * max_breach`` or ``max_replications`` is reached.
Deciding after looking is a sequential test, so the 95 % holds per round, not overall;
the report says how many replications each candidate got.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from twin.config import ConfigError
from twin.experiments.sweep import (
    SweepPlan,
    SweepProgress,
    SweepTask,
    TaskFailure,
    TaskOutcome,
    plan_sweep,
    point_json,
    run_sweep,
)
from twin.metrics import ci95
from twin.periods import boundaries

if TYPE_CHECKING:
    from twin.experiments.backends import Backend

BREACH = "slo_breach_probability"
COST = "cost.total"
DEFAULT_MAX_BREACH = 0.05
RECOMMEND_REPORT = "recommend.html"


@dataclass(frozen=True)
class Knob:
    """A config key and the values to try for it."""

    key: str
    values: list[Any]


def parse_knob(text: str) -> Knob:
    """``KEY=V1,V2,...`` (each value parsed as YAML); ``ConfigError`` naming the knob."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise ConfigError(f"--knob {text}", "expected KEY=V1,V2,... (e.g. operators.count=1,2,4)")
    parsed = []
    for value in values.split(","):
        try:
            parsed.append(yaml.safe_load(value.strip()))
        except yaml.YAMLError:
            raise ConfigError(f"--knob {key}", f"cannot parse value {value!r}") from None
    return Knob(key, parsed)


def knob_points(knobs: Sequence[Knob]) -> list[dict[str, Any]]:
    """Every combination of the knobs' values (the first knob varying slowest)."""
    keys = [k.key for k in knobs]
    if len(set(keys)) != len(keys):
        raise ConfigError("--knob", f"a key is given twice ({', '.join(keys)})")
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(k.values for k in knobs))
    ]


def plan_candidates(
    path: str | Path, sets: Sequence[str], knobs: Sequence[Knob], replications: int
) -> SweepPlan:
    """The candidates as a sweep plan; ``ConfigError`` (naming the knob) for a value that
    does not give a valid fleet, or a fleet without the ``slo`` and ``costs`` blocks the
    recommendation reads."""
    try:
        plan = plan_sweep(path, sets, replications, knob_points(knobs))
    except ConfigError as err:
        where = err.path.removeprefix("sweep.")
        raise ConfigError(f"--knob {where}", err.message) from None
    for cell in plan.cells:
        if cell.config.slo is None:
            raise ConfigError("slo", "twin recommend needs an slo block (target, period, scope)")
        if cell.config.costs is None:
            raise ConfigError(
                "costs", "twin recommend needs a costs block (it ranks by cost.total)"
            )
        config = cell.config
        if len(boundaries(config.start_date, config.slo.period, config.horizon)) < 2:
            raise ConfigError(
                "slo.period",
                f"the horizon ({config.horizon:g} h from {config.start_date}) holds no "
                f"complete calendar {config.slo.period} to judge the SLO on",
            )
    return plan


@dataclass
class Candidate:
    """One combination of knob values (and arm): its estimates and verdict."""

    arm: str
    knobs: dict[str, Any]
    replications: int = 0
    breach: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False

    def meets(self, max_breach: float) -> bool:
        return bool(self.breach) and self.breach["ci95_high"] <= max_breach

    def excluded(self, max_breach: float) -> bool:
        """Its interval lies wholly above ``max_breach``: it cannot meet the SLO."""
        return bool(self.breach) and self.breach["ci95_low"] > max_breach

    def as_dict(self, max_breach: float) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "knobs": self.knobs,
            "replications": self.replications,
            BREACH: self.breach,
            COST: self.cost,
            "meets": self.meets(max_breach),
            "stopped_early": self.stopped_early,
        }


def _clipped(leaf: dict[str, float], low: float, high: float = math.inf) -> dict[str, float]:
    return {k: min(max(v, low), high) for k, v in leaf.items()}


def evaluate(plan: SweepPlan, summary: pd.DataFrame, candidates: list[Candidate]) -> None:
    """Update each candidate's estimates from the sweep's summary rows."""
    for cell, candidate in zip(plan.cells, candidates, strict=True):
        rows = summary[(summary["arm"] == cell.arm) & (summary["point"] == point_json(cell.point))]
        candidate.replications = len(rows)
        if len(rows):
            candidate.breach = _clipped(ci95(rows[BREACH].dropna()), 0.0, 1.0)
            candidate.cost = _clipped(ci95(rows[COST].dropna()), 0.0)


@dataclass
class Recommendation:
    """Every candidate and the cheapest that meets the SLO (None: none does)."""

    name: str
    max_breach: float
    knob_keys: list[str]
    arms: list[str]
    candidates: list[Candidate]
    rounds: list[SweepProgress] = field(default_factory=list)

    @property
    def recommended(self) -> Candidate | None:
        meeting = [c for c in self.candidates if c.meets(self.max_breach)]
        return min(meeting, key=lambda c: c.cost["mean"]) if meeting else None

    def choice(self, candidate: Candidate) -> dict[str, Any]:
        """A candidate as ``{key: value}`` (and its arm, when the scenario has several)."""
        arm = {"arm": candidate.arm} if len(self.arms) > 1 else {}
        return arm | candidate.knobs

    def to_json(self) -> dict[str, Any]:
        best = self.recommended
        return {
            "name": self.name,
            "max_breach": self.max_breach,
            "recommended": None if best is None else self.choice(best),
            "candidates": [c.as_dict(self.max_breach) for c in self.candidates],
        }


OnTask = Callable[[SweepProgress, SweepTask, TaskOutcome | TaskFailure], None]


def screening(replications: int) -> int:
    """Replications of the screening round: a third, at least 3 (all, when fewer)."""
    return min(replications, max(3, math.ceil(replications / 3)))


def recommend(
    plan: SweepPlan,
    out: Path,
    backend: Backend,
    *,
    max_breach: float = DEFAULT_MAX_BREACH,
    replications: int = 10,
    precision: float | None = None,
    max_replications: int = 100,
    resume: bool = False,
    source: str | None = None,
    on_start: Callable[[SweepProgress], None] | None = None,
    on_task: OnTask | None = None,
) -> Recommendation:
    """Run the candidates in rounds (see the module) and recommend the cheapest that meets
    the SLO. ``plan`` is `plan_candidates`'; ``out`` is the sweep's results directory."""
    candidates = [Candidate(c.arm, dict(c.point)) for c in plan.cells]
    result = Recommendation(plan.name, max_breach, plan.sweep_keys, plan.arms, candidates)
    wanted = [screening(replications)] * len(candidates)
    first = True
    while True:
        cells = [
            dataclasses.replace(c, replications=n) for c, n in zip(plan.cells, wanted, strict=True)
        ]
        current = dataclasses.replace(plan, cells=cells)
        progress = run_sweep(current, out, backend, resume=resume or not first, source=source,
                             on_start=on_start, on_task=on_task)  # fmt: skip
        result.rounds.append(progress)
        evaluate(current, pd.read_parquet(out / "summary.parquet"), candidates)
        first = False
        wanted = _next_round(candidates, wanted, replications, precision, max_replications,
                             max_breach)  # fmt: skip
        if wanted is None:
            return result


def _next_round(
    candidates: list[Candidate],
    wanted: list[int],
    replications: int,
    precision: float | None,
    max_replications: int,
    max_breach: float,
) -> list[int] | None:
    """Replications per candidate for the next round (None: done)."""
    following = list(wanted)
    for i, candidate in enumerate(candidates):
        n = wanted[i]
        if candidate.replications < n:  # some tasks failed: leave it as it is
            continue
        if candidate.excluded(max_breach):
            candidate.stopped_early = n < replications
            continue
        if n < replications:
            following[i] = replications
        elif precision is not None and n < max_replications:
            breach = candidate.breach
            half = (breach["ci95_high"] - breach["ci95_low"]) / 2
            if (
                breach["ci95_low"] <= max_breach < breach["ci95_high"]
                and half > precision * max_breach
            ):
                following[i] = min(2 * n, max_replications)
    return None if following == wanted else following


def _compact(value: float) -> str:
    """A cost in three significant digits with k or M (12.3k, 4.01M)."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _interval(leaf: dict[str, float], digits: int | None) -> str:
    """``mean [low, high]``, with ``digits`` decimals, or compact (`_compact`) for None."""
    if not leaf:
        return "-"

    def show(value: float) -> str:
        return _compact(value) if digits is None else f"{value:.{digits}f}"

    return f"{show(leaf['mean'])} [{show(leaf['ci95_low'])}, {show(leaf['ci95_high'])}]"


def verdict(candidate: Candidate, max_breach: float) -> str:
    """``meets``, ``no``, or ``no (stopped after n)`` when it was screened out early."""
    if candidate.meets(max_breach):
        return "meets"
    return f"no (stopped after {candidate.replications})" if candidate.stopped_early else "no"


def table_rows(result: Recommendation) -> tuple[list[str], list[list[str]]]:
    """The candidates table (the CLI's and the report's): header and rows."""
    best = result.recommended
    arm = len(result.arms) > 1
    head = [*(["arm"] if arm else []), *result.knob_keys, "reps",
            "breach prob. [95 % CI]", "cost/yr [95 % CI]", "SLO", "best"]  # fmt: skip
    rows = []
    for c in result.candidates:
        rows.append([
            *([c.arm] if arm else []), *(str(c.knobs[k]) for k in result.knob_keys),
            str(c.replications), _interval(c.breach, 4), _interval(c.cost, None),
            verdict(c, result.max_breach), "<-" if c is best else "",
        ])  # fmt: skip
    return head, rows


def render_recommendation(result: Recommendation) -> str:
    """The recommendation page: the answer, the candidates table and the Pareto plot, as one
    self-contained HTML file (plotly.js inline)."""
    import html

    from twin.experiments.report import STYLE, pareto_figure

    data = result.to_json()
    best = data["recommended"]
    answer = (
        "no candidate meets the SLO"
        if best is None
        else "recommended: " + ", ".join(f"{k} = {v}" for k, v in best.items())
    )
    head, rows = table_rows(result)
    table = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    table += ["<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows]
    table.append("</table>")
    figure = pareto_figure(data["candidates"], result.max_breach, best).to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id="figure-pareto",
        config={"displaylogo": False},
    )
    rule = (
        f"A candidate meets the SLO when the upper 95 % bound of its breach probability is at "
        f"most {result.max_breach:g}; the recommendation is the cheapest of those by mean "
        "cost.total. Candidates whose interval lay wholly above it after the screening round "
        "were stopped there."
    )
    title = html.escape(f"{result.name}: twin recommend")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{title}</h1>"
        f"<h2>{html.escape(answer)}</h2><p class='meta'>{html.escape(rule)}</p>"
        + "\n".join(table)
        + f'<div class="figure">{figure}</div>\n</body></html>\n'
    )


def write_recommendation(result: Recommendation, out: Path) -> Path:
    """Write the recommendation page into the results directory ``out``."""
    path = out / RECOMMEND_REPORT
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_recommendation(result), encoding="utf-8")
    tmp.replace(path)
    return path
