"""Headless batch runs: every arm x sweep grid point x replication of a scenario.

A sweep is planned from a config or scenario file into *cells* (one arm at one grid
point: a validated fleet) and *tasks* (one replication of one cell). Tasks are small
picklable specs that a local process pool or a Dask cluster runs with `run_replication`;
the driver writes each finished replication to ``parts/`` at once, atomically, so an
interrupted sweep loses nothing it had finished. ``consolidate`` turns the parts into
``summary.parquet`` and ``timeseries.parquet`` in plan order (arm, grid point,
replication), so the results do not depend on the backend, the worker count or the order
in which tasks finished (SPEC 6).

Resuming is keyed by the *scenario hash* (every cell's config and the scenario's
injections, without the replication count) and each task's arm, grid point and
replication: a results directory only ever holds results of one scenario.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from twin import rare_events
from twin.config import (
    ConfigError,
    FleetConfig,
    Injection,
    Scenario,
    expand_sweep,
    load_experiment,
)
from twin.experiments.precision import PrecisionReport, PrecisionRule, relative_half_widths
from twin.experiments.runner import run_replication
from twin.experiments.store import config_hash, versions, write_frame, write_json, write_table
from twin.metrics import ci95, physical_range

if TYPE_CHECKING:
    from twin.experiments.backends import Backend

MANIFEST = "manifest.json"
PARTS = "parts"
SUMMARY = "summary.parquet"
TIMESERIES = "timeseries.parquet"
NO_ARM = "base"
"""The arm name of a plain fleet config, or of a scenario without arms."""
SUMMARY_KEY = b"twin.summary"
"""Where a part keeps its replication's summary row (JSON) in its Parquet metadata."""
GUEST_DOWNTIME_KEY = b"twin.guest_downtime"
"""Where a part keeps each guest's own downtime (minutes per guest-year, JSON list)."""
SEEDING = "replication i of a cell with seed S uses numpy.random.SeedSequence(S).spawn(i + 1)[i]"
SWEEP_PACKAGES = ("dask", "distributed", "plotly")


class SweepRefused(Exception):
    """The results directory cannot take this sweep; the text is one line for the user."""


class SweepAborted(Exception):
    """The backend cannot go on (a pool worker died abruptly); what finished is kept."""


# ---------------------------------------------------------------------------------------------
# the plan: cells and tasks


@dataclass(frozen=True)
class Cell:
    """One arm at one grid point: a validated fleet and how many replications it gets."""

    arm: str
    arm_index: int
    point: dict[str, Any]
    point_index: int
    config: FleetConfig
    replications: int
    injections: tuple[Injection, ...] = ()
    """The arm's timed injections (the scenario's unless the arm has its own)."""

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def label(self) -> str:
        """The arm, and the grid point when there is a grid, for people."""
        return f"{self.arm} {point_label(self.point)}" if self.point else self.arm


@dataclass(frozen=True)
class SweepTask:
    """One replication of one cell: what a worker needs, small and picklable."""

    cell: Cell
    replication: int
    injections: tuple[Injection, ...] = ()

    @property
    def arm(self) -> str:
        return self.cell.arm

    @property
    def point(self) -> dict[str, Any]:
        return self.cell.point

    @property
    def key(self) -> str:
        """The task's identity in a results directory (its part is named by it)."""
        return task_key(self.cell.arm_index, self.cell.point_index, self.replication)

    @property
    def label(self) -> str:
        """Arm, grid point and replication, for people."""
        return f"{self.arm} {point_label(self.point)} replication {self.replication}"


def task_key(arm_index: int, point_index: int, replication: int) -> str:
    return f"a{arm_index}-p{point_index}-r{replication}"


def point_label(point: Mapping[str, Any]) -> str:
    """A grid point as ``key=value, ...`` (``-`` when the sweep has no grid)."""
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "-"


def point_json(point: Mapping[str, Any]) -> str:
    """A grid point as the JSON text of the ``point`` column (sweep key order)."""
    return json.dumps(dict(point), separators=(",", ":"), default=str)


@dataclass(frozen=True)
class SweepPlan:
    """Every cell of an experiment, in arm order then grid order, and the scenario hash."""

    name: str
    source: Path
    scenario: Scenario | None
    arms: list[str]
    points: list[dict[str, Any]]
    cells: list[Cell]
    scenario_hash: str

    @property
    def sweep_keys(self) -> list[str]:
        return list(self.points[0]) if self.points else []

    def tasks(self) -> list[SweepTask]:
        """Every replication of every cell, in the order results are reported."""
        return [SweepTask(c, r, c.injections) for c in self.cells for r in range(c.replications)]


def _without_replications(config: FleetConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    data.pop("replications", None)
    return data


def scenario_hash(cells: Sequence[Cell], scenario: Scenario | None) -> str:
    """What a sweep's results depend on: each cell's fleet and the scenario's injections.

    The replication count is left out on purpose: replication i does not depend on how
    many there are (SPEC 6), so a finished sweep can be extended with more.
    """
    injections = [] if scenario is None else _dump(scenario.injections)
    return config_hash(
        {
            "cells": [
                {"arm": c.arm, "point": c.point, "config": _without_replications(c.config)}
                | ({"injections": _dump(c.injections)} if _dump(c.injections) != injections else {})
                for c in cells
            ],
            "injections": injections,
        }
    )


def _dump(injections: Sequence[Injection]) -> list[dict[str, Any]]:
    return [i.model_dump(mode="json") for i in injections]


def plan_sweep(
    path: str | Path,
    sets: Sequence[str] = (),
    replications: int | None = None,
    points: Sequence[dict[str, Any]] | None = None,
) -> SweepPlan:
    """Expand a config or scenario into cells: arms (file order) x sweep grid points.

    A plain fleet config is one arm (``base``) at one point. Each cell gets
    ``replications`` runs, or its own config's ``replications``. ``points`` replaces the
    scenario's own sweep grid (`twin recommend`'s knobs). Raises ``ConfigError`` naming
    the arm and point of a combination that does not validate.
    """
    first = load_experiment(path, sets)  # also checks every sweep value on its own
    scenario = first.scenario
    arm_names: list[str | None] = list(scenario.arms) if scenario and scenario.arms else [None]
    points = expand_sweep(scenario) if points is None else list(points)
    cells = []
    for arm_index, arm in enumerate(arm_names):
        for point_index, point in enumerate(points):
            try:
                experiment = load_experiment(path, sets, arm=arm, point=point)
            except ConfigError as err:
                where = f"arm {arm or NO_ARM}, point {point_label(point)}"
                raise ConfigError(err.path, f"{err.message} ({where})") from None
            config = experiment.config
            rare_events.require_unweighted(config, "twin sweep")
            count = config.replications if replications is None else replications
            cells.append(Cell(arm or NO_ARM, arm_index, point, point_index, config, count,
                              tuple(experiment.injections)))  # fmt: skip
    name = scenario.name if scenario else first.config.name
    return SweepPlan(
        name=name,
        source=Path(path),
        scenario=scenario,
        arms=[arm or NO_ARM for arm in arm_names],
        points=points,
        cells=cells,
        scenario_hash=scenario_hash(cells, scenario),
    )


# ---------------------------------------------------------------------------------------------
# what a worker runs


@dataclass
class TaskOutcome:
    """A finished replication, as sent back from the worker."""

    key: str
    metrics: dict[str, float]
    timeseries: pd.DataFrame
    seconds: float
    guest_downtime: list[float] = field(default_factory=list)


def run_task(task: SweepTask) -> TaskOutcome:
    """Run one replication (on a worker); exceptions travel back to the driver."""
    start = time.perf_counter()
    cell = task.cell
    result = run_replication(cell.config, task.replication, cell.seed, injections=task.injections)
    downtime = [] if result.guest_downtime is None else result.guest_downtime.round(3).tolist()
    seconds = time.perf_counter() - start
    return TaskOutcome(task.key, result.metrics, result.timeseries, seconds, downtime)


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised: its key and the error in one line."""

    key: str
    label: str
    error: str


def describe_error(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# the results directory


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(out: Path) -> dict[str, Any]:
    """The sweep manifest of a results directory (``SweepRefused`` when there is none)."""
    path = out / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise SweepRefused(f"{out}: no {MANIFEST}, not a results directory") from None
    except (OSError, ValueError) as err:
        raise SweepRefused(f"{path}: cannot read: {err}") from None
    if manifest.get("kind") != "twin-sweep":
        raise SweepRefused(f"{path}: not written by `twin sweep`")
    return manifest


def done_keys(out: Path) -> set[str]:
    """Tasks whose part is on disk: exactly the finished ones (a part appears atomically)."""
    parts = out / PARTS
    if not parts.is_dir():
        return set()
    return {p.stem for p in parts.glob("*.parquet") if not p.name.startswith(".")}


def _visible(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if not p.name.startswith(".")] if out.is_dir() else []


def open_results(out: Path, plan: SweepPlan, resume: bool) -> tuple[set[str], dict[str, Any]]:
    """Check that ``out`` may take this sweep; return the tasks already done there and the
    manifest found (empty when starting afresh).

    An empty or missing directory starts afresh (``--resume`` or not). Results of the same
    scenario are resumed with ``resume``, and refused without it, so nothing is redone by
    accident. Results of another scenario (hash mismatch), or files that are no sweep's,
    are always refused.
    """
    if out.exists() and not out.is_dir():
        raise SweepRefused(f"--out {out}: exists and is not a directory")
    if not _visible(out):
        return set(), {}
    if not (out / MANIFEST).exists():
        raise SweepRefused(f"--out {out}: not empty and holds no sweep {MANIFEST}; choose another")
    manifest = read_manifest(out)
    theirs = manifest.get("scenario_hash", "")
    if theirs != plan.scenario_hash:
        raise SweepRefused(
            f"--out {out}: holds results of a different scenario (hash {theirs[:12]}, this "
            f"one {plan.scenario_hash[:12]}); choose another --out or remove it"
        )
    done = done_keys(out)
    if not resume:
        wanted = {t.key for t in plan.tasks()}
        raise SweepRefused(
            f"--out {out}: already holds {len(done & wanted)} of {len(wanted)} results of this "
            "scenario; pass --resume to run only the missing ones"
        )
    return done, manifest


def _grid_kinds(points: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """How each sweep key is stored as a column: ``bool``, ``int``, ``float``, ``text``, or
    ``json`` (the JSON text of each value) when its values mix types or are not scalars."""
    kinds: dict[str, str] = {}
    for key in points[0] if points else {}:
        values = [p[key] for p in points if p[key] is not None]
        if all(isinstance(v, bool) for v in values):
            kinds[key] = "bool"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            kinds[key] = "int"
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            kinds[key] = "float"
        elif all(isinstance(v, str) for v in values):
            kinds[key] = "text"
        else:
            kinds[key] = "json"
    return kinds


def _grid_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "json":
        return json.dumps(value, default=str)
    if kind == "float":
        return float(value)
    return value


def summary_row(task: SweepTask, metrics: Mapping[str, float], kinds: Mapping[str, str]) -> dict:
    """One ``summary.parquet`` row: arm, grid point (JSON and one column per key),
    replication, seed and every metric."""
    grid = {key: _grid_value(task.point.get(key), kind) for key, kind in kinds.items()}
    return {
        "arm": task.arm,
        "point": point_json(task.point),
        **grid,
        "replication": task.replication,
        "seed": task.cell.seed,
        **metrics,
    }


def write_part(out: Path, task: SweepTask, outcome: TaskOutcome, kinds: Mapping[str, str]) -> None:
    """Write one finished replication as one file, atomically: ``parts/<key>.parquet``
    holds its time series, and its summary row as JSON in the file's metadata
    (``twin.summary``; a one-row Parquet table of ~70 metric columns would be larger than
    the time series)."""
    series = outcome.timeseries.copy()
    series.insert(0, "point", point_json(task.point))
    series.insert(0, "arm", task.arm)
    table = pa.Table.from_pandas(series, preserve_index=False)
    row = json.dumps(summary_row(task, outcome.metrics, kinds))
    downtime = json.dumps(outcome.guest_downtime).encode()
    metadata = {**table.schema.metadata, SUMMARY_KEY: row.encode(), GUEST_DOWNTIME_KEY: downtime}
    table = table.replace_schema_metadata(metadata)
    write_table(table, out / PARTS / f"{task.key}.parquet")


def _plan_keys(manifest: Mapping[str, Any]) -> list[str]:
    return [
        task_key(cell["arm_index"], cell["point_index"], r)
        for cell in manifest["cells"]
        for r in range(cell["replications"])
    ]


def consolidate(out: Path) -> pd.DataFrame:
    """Gather the parts of the manifest's plan into ``summary.parquet`` and
    ``timeseries.parquet``, rows in plan order (arm, grid point, replication); return the
    summary. Only finished tasks are there: a partial sweep gives partial tables."""
    manifest = read_manifest(out)
    done = done_keys(out)
    rows, series = [], []
    for key in (k for k in _plan_keys(manifest) if k in done):
        table = pq.read_table(out / PARTS / f"{key}.parquet")
        rows.append(json.loads(table.schema.metadata[SUMMARY_KEY]))
        series.append(table.to_pandas())
    summary = pd.DataFrame(rows)
    timeseries = pd.concat(series, ignore_index=True) if series else pd.DataFrame()
    write_frame(summary, out / SUMMARY)
    write_frame(timeseries, out / TIMESERIES)
    return summary


def _manifest(plan: SweepPlan, previous: Mapping[str, Any], source: str | None) -> dict[str, Any]:
    return {
        "kind": "twin-sweep",
        "format": 1,
        "name": plan.name,
        "source": source,
        "scenario_hash": plan.scenario_hash,
        "created": previous.get("created", _now()),
        "scenario": None if plan.scenario is None else plan.scenario.model_dump(mode="json"),
        "arms": plan.arms,
        "points": plan.points,
        "sweep_keys": plan.sweep_keys,
        "seeding": SEEDING,
        "cells": [
            {
                "arm": c.arm,
                "arm_index": c.arm_index,
                "point": c.point,
                "point_index": c.point_index,
                "seed": c.seed,
                "replications": c.replications,
                "config": c.config.model_dump(mode="json"),
            }
            for c in plan.cells
        ],
        "tasks": sum(c.replications for c in plan.cells),
        "done": 0,
        "complete": False,
        "failures": [],
        "runs": list(previous.get("runs", [])),
        "versions": versions(SWEEP_PACKAGES),
    }


# ---------------------------------------------------------------------------------------------
# running a sweep


@dataclass
class SweepProgress:
    """Where a sweep stands, reported after each finished task."""

    total: int
    skipped: int
    finished: int = 0
    failed: int = 0
    failures: list[TaskFailure] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ran(self) -> int:
        """Tasks this run attempted so far: finished or failed."""
        return self.finished + self.failed

    @property
    def done(self) -> int:
        """Tasks with results: already on disk before this run, plus those it finished."""
        return self.skipped + self.finished


def run_sweep(
    plan: SweepPlan,
    out: Path,
    backend: Backend,
    *,
    resume: bool = False,
    source: str | None = None,
    on_start: Callable[[SweepProgress], None] | None = None,
    on_task: Callable[[SweepProgress, SweepTask, TaskOutcome | TaskFailure], None] | None = None,
) -> SweepProgress:
    """Run the tasks of ``plan`` not yet in ``out`` on ``backend``, writing each as it ends.

    Whatever happens (a failing task, Ctrl-C, SIGTERM turned into KeyboardInterrupt), what
    finished is on disk, consolidated and recorded in the manifest. The caller owns the
    backend (``with make_backend(...) as backend:``), which may serve several sweeps.
    Raises ``SweepRefused`` when ``out`` cannot take this sweep (see ``open_results``).
    """
    done, previous = open_results(out, plan, resume)
    tasks = plan.tasks()
    todo = [t for t in tasks if t.key not in done]
    progress = SweepProgress(total=len(tasks), skipped=len(tasks) - len(todo))
    manifest = _manifest(plan, previous, source) | {"done": progress.skipped}
    out.mkdir(parents=True, exist_ok=True)
    write_json(manifest, out / MANIFEST)  # first: a directory with parts always has one
    (out / PARTS).mkdir(exist_ok=True)
    for stale in (out / PARTS).glob(".*.tmp"):  # a write cut short by a kill
        stale.unlink(missing_ok=True)
    kinds = _grid_kinds(plan.points)
    started, clock = _now(), time.perf_counter()
    if on_start is not None:
        on_start(progress)
    try:
        for task, result in backend.run(todo):
            report: TaskOutcome | TaskFailure
            if isinstance(result, BaseException):
                report = TaskFailure(task.key, task.label, describe_error(result))
                progress.failed += 1
                progress.failures.append(report)
            else:
                write_part(out, task, result, kinds)
                progress.finished += 1
                report = result
            if on_task is not None:
                on_task(progress, task, report)
    except BaseException:
        progress.interrupted = True
        raise
    finally:
        progress.seconds = time.perf_counter() - clock
        consolidate(out)
        finished = done_keys(out) & {t.key for t in tasks}
        manifest |= {
            "done": len(finished),
            "complete": len(finished) == len(tasks),
            "failures": [
                {"key": f.key, "task": f.label, "error": f.error} for f in progress.failures
            ],
        }
        manifest["runs"].append(
            {
                "started_at": started,
                "ended_at": _now(),
                "seconds": round(progress.seconds, 3),
                "backend": backend.name,
                "workers": backend.workers,
                "ran": progress.ran,
                "finished": progress.finished,
                "failed": progress.failed,
                "skipped": progress.skipped,
                "interrupted": progress.interrupted,
            }
        )
        write_json(manifest, out / MANIFEST)
    return progress


def run_sweep_to_precision(
    plan: SweepPlan,
    out: Path,
    backend: Backend,
    rule: PrecisionRule,
    *,
    resume: bool = False,
    source: str | None = None,
    on_start: Callable[[SweepProgress], None] | None = None,
    on_task: Callable[[SweepProgress, SweepTask, TaskOutcome | TaskFailure], None] | None = None,
) -> tuple[SweepProgress, dict[str, PrecisionReport]]:
    """`run_sweep` in rounds, each cell (arm x grid point) on its own: a cell gets more
    replications until its headline metrics meet ``rule`` (`PrecisionRule`), the cells
    still short running together in each round.

    Each round is a resumed `run_sweep` of the cells at their new counts, so it runs only
    the replications missing from ``out``; the rounds depend only on the results, so an
    interrupted precision sweep run again with ``resume`` takes the same rounds and redoes
    nothing. Returns the progress summed over rounds, and each cell's `PrecisionReport`
    keyed by its `Cell.label`. The manifest records them under
    ``precision``. A round with failed tasks ends the sweep (``--resume`` retries them).
    """
    counts = [rule.first(cell.replications) for cell in plan.cells]
    rounds = [0] * len(plan.cells)
    in_a_row = [0] * len(plan.cells)  # rounds in a row that met the target
    reports: dict[int, PrecisionReport] = {}
    active = set(range(len(plan.cells)))
    total: SweepProgress | None = None
    while active:
        cells = [replace(c, replications=n) for c, n in zip(plan.cells, counts, strict=True)]
        progress = run_sweep(replace(plan, cells=cells), out, backend,
                             resume=resume or total is not None, source=source,
                             on_start=on_start, on_task=on_task)  # fmt: skip
        total = _add_progress(total, progress)
        if progress.failed:
            break
        summary = pd.read_parquet(out / SUMMARY)
        for i in sorted(active):
            cell = cells[i]
            mine = summary[
                (summary["arm"] == cell.arm) & (summary["point"] == point_json(cell.point))
            ]
            relative = relative_half_widths(mine.to_dict("records"))
            rounds[i] += 1
            reports[i] = PrecisionReport(rule, rounds[i], counts[i], relative)
            in_a_row[i] = in_a_row[i] + 1 if reports[i].reached else 0
            following = rule.after_round(counts[i], rounds[i], relative, in_a_row[i])
            if following is None:
                active.discard(i)
            else:
                counts[i] = following
    labelled = {plan.cells[i].label: r for i, r in sorted(reports.items())}
    manifest = read_manifest(out)
    manifest["precision"] = {label: r.to_json() for label, r in labelled.items()}
    write_json(manifest, out / MANIFEST)
    return total or SweepProgress(total=0, skipped=0), labelled


def _add_progress(before: SweepProgress | None, now: SweepProgress) -> SweepProgress:
    """Progress over rounds: what this command found done, and everything it ran."""
    if before is None:
        return now
    return SweepProgress(
        total=now.total,
        skipped=now.skipped - before.finished,  # a round skips what earlier rounds ran
        finished=before.finished + now.finished,
        failed=before.failed + now.failed,
        failures=[*before.failures, *now.failures],
        interrupted=now.interrupted,
        seconds=before.seconds + now.seconds,
    )


# ---------------------------------------------------------------------------------------------
# reading results


def guest_downtime_by_cell(out: Path) -> dict[tuple[str, str], list[float]]:
    """Each guest's own downtime (minutes per guest-year) per (arm, point JSON), pooled over
    the cell's finished replications, from the parts' metadata."""
    manifest = read_manifest(out)
    done = done_keys(out)
    pooled: dict[tuple[str, str], list[float]] = {}
    for cell in manifest["cells"]:
        for r in range(cell["replications"]):
            key = task_key(cell["arm_index"], cell["point_index"], r)
            if key not in done:
                continue
            metadata = pq.read_schema(out / PARTS / f"{key}.parquet").metadata or {}
            values = json.loads(metadata.get(GUEST_DOWNTIME_KEY, b"[]"))
            pooled.setdefault((cell["arm"], point_json(cell["point"])), []).extend(values)
    return pooled


def total_incidents(summary: pd.DataFrame) -> pd.Series:
    """Incidents of all causes, per replication (fleet-wide)."""
    columns = [c for c in summary.columns if c.startswith("incidents.")]
    return summary[columns].sum(axis=1) if columns else pd.Series(0.0, index=summary.index)


CELL_METRICS = (
    "guest_availability",
    "guest_downtime_min_per_year",
    "incidents",
    "blast_radius_max",
)


def cell_summary(summary: pd.DataFrame, metrics: Sequence[str] = CELL_METRICS) -> pd.DataFrame:
    """One row per arm x grid point (in result order): replications, and for each of
    ``metrics`` its mean and Student-t 95 % bounds over replications.

    ``incidents`` is the total over causes per replication.
    """
    if summary.empty:
        return pd.DataFrame(columns=["arm", "point", "replications"])
    frame = summary.assign(incidents=total_incidents(summary))
    rows = []
    for (arm, point), group in frame.groupby(["arm", "point"], sort=False):
        row: dict[str, Any] = {"arm": arm, "point": point, "replications": len(group)}
        for metric in metrics:
            values = group[metric].dropna() if metric in group else pd.Series(dtype=float)
            leaf = (
                ci95(values, physical_range(metric))
                if len(values)
                else dict.fromkeys(("mean", "ci95_low", "ci95_high"), math.nan)
            )
            row[metric] = leaf["mean"]
            row[f"{metric}_ci95_low"] = leaf["ci95_low"]
            row[f"{metric}_ci95_high"] = leaf["ci95_high"]
        rows.append(row)
    return pd.DataFrame(rows)
