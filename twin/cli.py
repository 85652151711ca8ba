"""The ``twin`` command: a thin layer over the Python API.

Bad input ends with one line on stderr naming what is wrong and where, and exit
status 2; never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from twin import rare_events
from twin.config import (
    ConfigError,
    Experiment,
    FleetConfig,
    expand_arms,
    load_experiment,
    parse_duration,
)
from twin.experiments import write_results
from twin.experiments.backends import Backend, make_backend
from twin.experiments.compare import Comparison, select_metrics
from twin.experiments.compare import compare as run_comparison
from twin.experiments.footprint import Footprint, TooLarge, check_footprint, fleet_footprint
from twin.experiments.outputs import (
    RUN_KIND,
    SWEEP_KIND,
    OutputRefused,
    check_output_file,
    check_results_dir,
)
from twin.experiments.precision import PrecisionRule
from twin.experiments.progress import ProgressReporter
from twin.experiments.runner import ReplicationResult, RunResult, replicate
from twin.experiments.sites import dependent_sites
from twin.experiments.sweep import (
    CELL_METRICS,
    SweepAborted,
    SweepProgress,
    SweepRefused,
    SweepTask,
    TaskFailure,
    cell_summary,
    done_keys,
    open_results,
    plan_sweep,
    point_label,
    run_sweep,
    run_sweep_to_precision,
)
from twin.experiments.tables import (
    FORMATS,
    comparison_csv,
    comparison_markdown,
    comparison_table,
    format_leaf,
)
from twin.fleet import Fleet

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Digital twin of a virtualised data-center fleet (one behaviour table per hypervisor).",
)
console = Console(width=max(Console().width, 110))
err_console = Console(stderr=True, soft_wrap=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: a.b.c=value (list items by index)."),
]
ArmOption = Annotated[str | None, typer.Option("--arm", help="Scenario arm to run.")]
PrecisionOption = Annotated[
    float | None,
    typer.Option(
        "--precision",
        help="Add replications in rounds until each headline metric's 95 % half-width is at "
        "most this share of its value (of the unavailability for availabilities).",
    ),
]


def _precision(rel: float | None, max_replications: int) -> PrecisionRule | None:
    """The ``--precision`` rule, checked before any work."""
    if rel is None:
        return None
    try:
        return PrecisionRule(rel, max_replications)
    except ValueError as err:
        raise fail(str(err)) from None


def print_warnings(lines: list[str]) -> None:
    """Every warning of a result, one line each on stderr (never on stdout)."""
    for line in lines:
        err_console.print(f"warning: {line}", markup=False, highlight=False)


SiteWorkersOption = Annotated[
    int | None,
    typer.Option("--workers", "-w",
                 help="Run each replication's sites as separate tasks on N local processes "
                 "(operators.per_site: true, no services spanning sites)."),
]  # fmt: skip
SiteDaskOption = Annotated[
    str | None,
    typer.Option("--dask", help="Run each replication's sites on a Dask scheduler "
                 "(tcp://host:port), or 'local' for a LocalCluster."),
]  # fmt: skip


def _site_backend(
    workers: int | None, dask: str | None, runs: list[tuple[FleetConfig, Any]]
) -> Backend | None:
    """The backend for ``--workers`` / ``--dask``, once every config's sites are known
    to run apart (bad input otherwise: exit 2 before any work); None without either."""
    if workers is None and dask is None:
        return None
    if workers is not None and workers < 1:
        raise fail(f"--workers: expected a whole number >= 1, got {workers}")
    option = "--dask" if dask else "--workers"
    for config, injections in runs:
        reason = dependent_sites(config, injections)
        if reason is not None:
            raise fail(f"{option}: the sites of {config.name} cannot run apart: {reason}")
    return _backend(dask, workers)


def _backend(dask: str | None, workers: int | None) -> Backend:
    """A process pool of ``workers``, or the Dask cluster at ``dask`` (exit 2 if it cannot
    be used)."""
    try:
        return make_backend(dask, workers)
    except (OSError, ValueError) as err:
        raise fail(f"--dask {dask}: cannot use the cluster: {err}") from None


def fail(message: str) -> typer.Exit:
    """Print one line to stderr and return the exit-2 signal to raise."""
    err_console.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(code=2)


def _load(path: Path, sets: list[str] | None, arm: str | None, **overrides: Any) -> Experiment:
    extra = [f"{key}={value}" for key, value in overrides.items() if value is not None]
    try:
        return load_experiment(path, [*(sets or []), *extra], arm=arm)
    except ConfigError as err:
        raise fail(str(err)) from None


def _duration(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as err:
        raise fail(f"{option}: {err}") from None


def at_least(minimum: int, option: str) -> Callable[[int | None], int | None]:
    """A typer callback refusing a count below ``minimum`` in one line, exit 2 (typer's own
    ``min=`` draws a box of several lines)."""

    def check(value: int | None) -> int | None:
        if value is not None and value < minimum:
            raise fail(f"{option}: expected a whole number >= {minimum}, got {value}")
        return value

    return check


MaxReplicationsOption = Annotated[
    int,
    typer.Option(
        "--max-replications",
        callback=at_least(1, "--max-replications"),
        help="With --precision: stop at this many.",
    ),
]


ForceOption = Annotated[
    bool, typer.Option("--force", help="Replace another command's results at the output path.")
]
AllowLargeOption = Annotated[
    bool, typer.Option("--allow-large", help="Run a fleet larger than the machine's memory.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
RareEventsOption = Annotated[
    bool,
    typer.Option(
        "--rare-events",
        help="Sample switch, power-feed and datastore faults at boosted rates and weight "
        "each replication by its likelihood ratio (importance sampling; unbiased).",
    ),
]


def _accelerated(config: FleetConfig, boost: dict[str, float] | None = None) -> FleetConfig:
    """``--rare-events``: the config with its component faults boosted, checked first."""
    try:
        return rare_events.accelerated(config, boost)
    except ConfigError as err:
        raise fail(str(err)) from None


def output_dir(option: str, folder: Path | None, kind: str, force: bool) -> None:
    """Refuse a results folder that cannot take ``kind``'s results (before any work)."""
    if folder is None:
        return
    try:
        check_results_dir(option, folder, kind, force=force)
    except OutputRefused as err:
        raise fail(str(err)) from None


def output_file(option: str, path: Path | None, marker: str, force: bool) -> None:
    """Refuse an output file this command may not write (before any work)."""
    if path is None:
        return
    try:
        check_output_file(option, path, marker, force=force)
    except OutputRefused as err:
        raise fail(str(err)) from None


def fits_in_memory(
    footprints: list[Footprint | None], allow_large: bool, copies: int = 1, what: str = "fleet"
) -> None:
    """Refuse, before building anything, a fleet whose estimated memory (the largest of
    ``footprints``, ``copies`` at once) exceeds the machine's, unless ``--allow-large``."""
    if allow_large:
        return
    known = [f for f in footprints if f is not None]
    try:
        check_footprint(max(known, key=lambda f: f.bytes, default=None), copies, what)
    except TooLarge as err:
        raise fail(str(err)) from None


def reporter(description: str, quiet: bool, unit: str = "replications") -> ProgressReporter:
    """The progress display of a command, on stderr (see ``twin.experiments.progress``)."""
    return ProgressReporter(description, err_console, quiet=quiet, unit=unit)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends a command the way Ctrl-C does: what finished is kept."""
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Inside, SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C, so the command can keep
    what finished and exit 130."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted(message: str) -> typer.Exit:
    """Say in one line what an interrupted command kept; return the exit-130 signal."""
    err_console.print(f"interrupted: {message}", markup=False, highlight=False)
    return typer.Exit(code=130)


@app.command()
def run(
    path: Annotated[Path, typer.Argument(help="A fleet config or a scenario (YAML).")],
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Root seed.")] = None,
    replications: Annotated[
        int | None,
        typer.Option(
            "--replications", "-r", callback=at_least(1, "--replications"), help="Replications."
        ),
    ] = None,
    horizon: Annotated[
        str | None, typer.Option("--horizon", help="Simulated time, e.g. 1y.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the results here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    arm: ArmOption = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Drive host faults from an incident log.")
    ] = None,
    replay_system: Annotated[
        int | None, typer.Option("--replay-system", help="LANL system of a --replay log.")
    ] = None,
    force: ForceOption = False,
    allow_large: AllowLargeOption = False,
    quiet: QuietOption = False,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 1000,
    workers: SiteWorkersOption = None,
    dask: SiteDaskOption = None,
    rare: RareEventsOption = False,
) -> None:
    """Run a fleet config (or a scenario's arm) and print its metrics with 95 % CIs.

    Exit status: 0 done, 2 bad input, 130 interrupted (the replications that finished are
    written to --out).
    """
    hours = _duration("--horizon", horizon)
    rule = _precision(precision, max_replications)
    experiment = _load(path, set_, arm, seed=seed, replications=replications, horizon=hours)
    output_dir("--out", out, RUN_KIND, force)
    if replay is not None and rare:
        raise fail("--rare-events: a --replay run is one replication of the log's "
                   "outages, with nothing to weight")  # fmt: skip
    config = _accelerated(experiment.config) if rare else experiment.config
    fits_in_memory([fleet_footprint(config, record_events=out is not None,
                                    replications=config.replications)], allow_large)  # fmt: skip
    if replay is not None:
        _run_replay(experiment, replay, replay_system, as_json)
        return
    backend = _site_backend(workers, dask, [(config, experiment.injections)])
    result = RunResult(config=config, seed=config.seed)
    total = config.replications
    progress = reporter(config.name, quiet or as_json)

    def done(rep: ReplicationResult) -> None:  # (``replicate`` has kept it in ``result``)
        progress(len(result.replications), max(total, len(result.replications)))

    try:
        with sigterm_interrupts(), progress, backend or contextlib.nullcontext():
            progress(0, total)
            replicate(result, precision=rule, record_events=out is not None,
                      injections=experiment.injections, on_done=done,
                      backend=backend)  # fmt: skip
    except KeyboardInterrupt:
        kept = f"{len(result.replications)} replications finished"
        if out is None:
            raise interrupted(f"{kept}; nothing written (no --out)") from None
        write_results(result, out, source=str(path))
        raise interrupted(f"{kept}; written to {out}") from None
    except ConfigError as err:
        if out is not None and result.replications:
            write_results(result, out, source=str(path))
        raise fail(str(err)) from None
    if out is not None:
        write_results(result, out, source=str(path))
    summary = result.summary()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        console.print(summary_table(summary))
        if "rare_events" in summary:
            console.print(rare_events.describe(summary["rare_events"]), markup=False)
        if result.precision is not None:
            console.print(result.precision.describe())
        if out is not None:
            console.print(f"results written to {out}")
    print_warnings(summary["warnings"])


def _run_replay(experiment: Experiment, log: Path, system: int | None, as_json: bool) -> None:
    """``twin run --replay``: one run over the log's window with the log's outages."""
    from twin.calibration.replay import opendc_replay_fleet, replay_fleet
    from twin.metrics import summarise

    fmt = "lanl" if system is not None else "csv"
    try:
        rare_events.require_unweighted(experiment.config, "twin run --replay")
        if log.suffix == ".parquet":  # an OpenDC failure trace, on the config's own hosts
            fleet, _, incident_log = opendc_replay_fleet(experiment.config, log,
                                                         experiment.config.seed)  # fmt: skip
        else:
            incident_log = _read_incident_log(log, fmt, system, None, None)
            fleet, _ = replay_fleet(experiment.config, incident_log, experiment.config.seed)
    except (ConfigError, ValueError) as err:
        raise fail(str(err).splitlines()[0]) from None
    summary = {
        "name": f"{experiment.config.name} (replay of {incident_log.source})",
        "seed": experiment.config.seed,
        "replications": 1,
        "horizon_hours": incident_log.window_hours,
        "metrics": summarise([fleet.run()]),
        "log_host_availability": incident_log.host_availability(),
    }
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    console.print(summary_table(summary))
    console.print(
        f"host availability computed from the log: {summary['log_host_availability']:.9f}"
    )


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="A fleet config or a scenario (YAML).")],
    set_: SetOption = None,
    arm: ArmOption = None,
    allow_large: AllowLargeOption = False,
) -> None:
    """Validate a config or scenario; say OK or what is wrong, and which times were given as
    bare numbers (taken as hours)."""
    from twin.config.hours import bare_hours

    experiment = _load(path, set_, arm)
    config = experiment.config
    fits_in_memory([fleet_footprint(config)], allow_large)
    try:  # names in injections and service placement are checked against the built fleet
        fleet = Fleet(config, 0, record_events=False, injections=experiment.injections)
    except ConfigError as err:
        raise fail(str(err)) from None
    console.print(
        f"OK: {path} ({config.name}; {len(fleet.hosts)} hosts, {len(fleet.guests)} guests, "
        f"horizon {config.horizon:g} h)"
    )
    if bare := bare_hours(experiment.raw):
        keys = ", ".join(f"{key}={value:g}" for key, value in bare)
        console.print(
            f"note: {len(bare)} time(s) given as a bare number, taken as hours: {keys} "
            "(write a unit, e.g. 30m, to be sure)",
            markup=False,
            highlight=False,
        )


@app.command()
def compare(
    path: Annotated[Path, typer.Argument(help="A scenario with arms (or a config).")],
    set_: SetOption = None,
    replications: Annotated[
        int | None,
        typer.Option(
            "--replications",
            "-r",
            callback=at_least(1, "--replications"),
            help="Replications per arm.",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Root seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    allow_large: AllowLargeOption = False,
    quiet: QuietOption = False,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 1000,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics", help="Rows: metric names or globs (incidents.*), comma-separated."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Output: table, csv or markdown.")] = "table",
    workers: SiteWorkersOption = None,
    dask: SiteDaskOption = None,
    rare: RareEventsOption = False,
) -> None:
    """Run every arm with the same seeds and print them with 95 % CIs, each arm's paired
    difference from its control (the first arm unless it names one), and one verdict line
    per arm.

    Exit status: 0 done, 2 bad input, 130 interrupted (the arms that finished are shown).
    """  # fmt: skip
    if fmt not in FORMATS:
        raise fail(f"--format: expected one of {', '.join(FORMATS)} (got {fmt!r})")
    rule = _precision(precision, max_replications)
    try:
        scenario = load_experiment(path, set_ or []).scenario
        expanded = expand_arms(path, set_ or [])
        boost: dict[str, float] | None = None
        if rare:  # the first arm's boosts for every arm, computed once
            boost = dict(_accelerated(expanded[0][1]).rare_events.boost)
            expanded = [(arm, _accelerated(config, boost)) for arm, config in expanded]
        arms = [(arm or config.name, config) for arm, config in expanded]
        backend = _site_backend(workers, dask, [
            (config, scenario.arm_injections(arm) if scenario else []) for arm, config in expanded
        ])  # fmt: skip
    except ConfigError as err:
        raise fail(str(err)) from None
    fits_in_memory([fleet_footprint(config) for _, config in arms], allow_large)
    wanted = {arm: replications or config.replications for arm, config in arms}
    finished: dict[str, list[ReplicationResult]] = {arm: [] for arm in wanted}
    progress = reporter(path.stem, quiet or as_json)

    def done(arm: str, rep: ReplicationResult) -> None:
        finished[arm].append(rep)
        so_far = sum(map(len, finished.values()))
        progress(so_far, max(so_far, sum(wanted.values())))  # precision rounds may add more

    try:
        with sigterm_interrupts(), progress, backend or contextlib.nullcontext():
            progress(0, sum(wanted.values()))
            comparison = run_comparison(path, set_, replications, seed, on_done=done,
                                        precision=rule, metrics=metrics or [],
                                        backend=backend, rare_boost=boost)  # fmt: skip
    except KeyboardInterrupt:
        complete = [arm for arm, reps in finished.items() if reps and len(reps) == wanted[arm]]
        if complete:
            experiment = load_experiment(path, set_ or [])
            scenario = experiment.scenario
            runs = {arm: RunResult(config, config.seed if seed is None else seed, finished[arm])
                    for arm, config in arms if arm in complete}  # fmt: skip
            name = scenario.name if scenario else experiment.config.name
            partial = Comparison(name, scenario.question if scenario else "", runs)
            _print_comparison(partial, as_json, fmt, metrics)
        raise interrupted(
            f"{sum(map(len, finished.values()))} of {sum(wanted.values())} replications "
            f"finished; {len(complete)} of {len(wanted)} arms complete"
            + (f" ({', '.join(complete)}) shown" if complete else "")
        ) from None
    except ConfigError as err:
        raise fail(str(err)) from None
    _print_comparison(comparison, as_json, fmt, metrics)


def _print_comparison(
    comparison: Comparison, as_json: bool, fmt: str, metrics: list[str] | None
) -> None:
    if as_json:
        sys.stdout.write(json.dumps(comparison.to_json()) + "\n")
    else:
        rows = (
            select_metrics(comparison.available_metrics(), metrics)
            if metrics
            else comparison.metric_names()
        )
        if fmt == "csv":
            sys.stdout.write(comparison_csv(comparison, rows))
        else:
            if fmt == "markdown":
                sys.stdout.write(comparison_markdown(comparison, rows) + "\n")
            else:
                console.print(comparison_table(comparison, rows))
            if comparison.precision is not None:
                console.print(comparison.precision.describe(), markup=False, highlight=False)
            for line in comparison.verdict_lines():
                console.print(line, markup=False, highlight=False, soft_wrap=True)
    print_warnings(comparison.warnings())


def _fmt(leaf: dict[str, float]) -> str:
    """``mean ± half-width`` (see `format_leaf`)."""
    return format_leaf(leaf)


def summary_table(summary: dict[str, Any]) -> Table:
    """The metrics as a table: one row per metric, one column per scope."""
    metrics = summary["metrics"]
    by_arch = metrics.get("by_architecture", {})
    title = (
        f"{summary['name']}: {summary['replications']} replication(s), "
        f"{summary['horizon_hours']:g} h, seed {summary['seed']} (mean ± 95 % CI half-width)"
    )
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("fleet", justify="right")
    for arch in by_arch:
        table.add_column(arch, justify="right")

    def rows(node: dict[str, Any], prefix: str = "") -> list[tuple[str, tuple[str, ...]]]:
        out = []
        for key, value in node.items():
            if key == "by_architecture":
                continue
            if "mean" in value:
                out.append((prefix + key, (key,) if not prefix else (prefix[:-1], key)))
            else:
                out.extend(rows(value, f"{prefix}{key}."))
        return out

    def get(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, float] | None:
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                return None
        return node

    for label, path in rows(metrics):
        cells = [_fmt(get(metrics, path))]
        for arch in by_arch:
            leaf = get(by_arch[arch], path)
            cells.append(_fmt(leaf) if leaf else "")
        table.add_row(label, *cells)
    return table


# ---------------------------------------------------------------------------------------------
# batch runs: twin sweep, twin report


CI_COLUMNS = {"mean": "", "ci95_low": "_ci95_low", "ci95_high": "_ci95_high"}


def sweep_table(name: str, cells: Any) -> Table:
    """One row per arm x grid point: mean ± 95 % CI half-width over replications."""
    table = Table(title=f"{name}: mean ± 95 % CI half-width over replications")
    arm_width = min(24, max((len(str(arm)) for arm in cells["arm"]), default=3))
    table.add_column("arm", min_width=arm_width, overflow="fold")
    table.add_column("grid point", overflow="fold")
    for header in ("reps", "guest availability", "downtime min/guest-yr", "incidents/rep",
                   "blast radius max"):  # fmt: skip
        table.add_column(header, justify="right")
    for _, row in cells.iterrows():
        leaves = [
            _fmt({k: row[m + suffix] for k, suffix in CI_COLUMNS.items()}) for m in CELL_METRICS
        ]
        arm, point = str(row["arm"]), point_label(json.loads(row["point"]))
        table.add_row(arm, point, str(row["replications"]), *leaves)
    return table


@app.command()
def sweep(
    path: Annotated[Path, typer.Argument(help="A scenario (or a fleet config: one arm).")],
    set_: SetOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-w", callback=at_least(1, "--workers"), help="Workers (default: cores)."
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            envvar="TWIN_DASK_ADDRESS",
            help="Dask scheduler (tcp://host:port), or 'local' for a LocalCluster.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Results directory (results/<name>).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Run only the tasks missing from --out.")
    ] = False,
    replications: Annotated[
        int | None,
        typer.Option(
            "--replications",
            "-r",
            callback=at_least(1, "--replications"),
            help="Replications per cell.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
    force: ForceOption = False,
    allow_large: AllowLargeOption = False,
    precision: PrecisionOption = None,
    max_replications: MaxReplicationsOption = 1000,
) -> None:
    """Run every arm x sweep grid point x replication; results stream to Parquet in --out.
    With --precision each arm x grid point gets replications in rounds until it meets it.

    Exit status: 0 done, 1 some tasks failed, 2 bad input, 130 interrupted (run again
    with --resume to finish).
    """
    rule = _precision(precision, max_replications)
    try:
        plan = plan_sweep(path, set_ or [], replications)
    except ConfigError as err:
        raise fail(str(err)) from None
    out = out if out is not None else Path("results") / plan.name.replace("/", "_")
    output_dir("--out", out, SWEEP_KIND, force)
    copies = 1 if dask else workers or os.cpu_count() or 1
    fits_in_memory([fleet_footprint(c.config) for c in plan.cells], allow_large, copies,
                   "the largest cell")  # fmt: skip
    backend = _backend_for(plan, out, resume, dask, workers)

    bar = ProgressReporter(plan.name, err_console, quiet=quiet, unit="tasks", count_failures=True)

    def started(progress: SweepProgress) -> None:
        bar(progress.done, progress.total, progress.failed)

    def finished(progress: SweepProgress, task: SweepTask, result: Any) -> None:
        bar(progress.done, progress.total, progress.failed)
        if isinstance(result, TaskFailure):
            err_console.print(f"failed: {result.key} ({result.label}): {result.error}",
                              markup=False, highlight=False)  # fmt: skip

    try:
        with sigterm_interrupts(), backend, bar:
            if rule is None:
                progress = run_sweep(plan, out, backend, resume=resume, source=str(path),
                                     on_start=started, on_task=finished)  # fmt: skip
            else:
                progress, reports = run_sweep_to_precision(
                    plan, out, backend, rule, resume=resume, source=str(path),
                    on_start=started, on_task=finished)  # fmt: skip
    except KeyboardInterrupt:
        done = len(done_keys(out))
        raise interrupted(f"{done} task(s) done are kept in {out}; run again with --resume "
                          "to finish") from None  # fmt: skip
    except SweepRefused as err:
        raise fail(str(err)) from None
    except SweepAborted as err:
        err_console.print(f"error: {err}; {len(done_keys(out))} task(s) done are kept in "
                          f"{out}; run again with --resume to finish", markup=False)  # fmt: skip
        raise typer.Exit(code=1) from None
    if not quiet:
        summary = pd.read_parquet(out / "summary.parquet")
        if not summary.empty:
            console.print(sweep_table(plan.name, cell_summary(summary)))
        if rule is not None:
            for label, report in reports.items():
                console.print(f"{label}: {report.describe()}", markup=False, highlight=False)
        console.print(
            f"ran {progress.ran} task(s) in {progress.seconds:.1f} s on {backend.name} "
            f"({backend.workers} worker(s)): {progress.finished} finished, {progress.failed} "
            f"failed; {progress.skipped} were already done; results in {out}"
        )
    if progress.failed:
        raise typer.Exit(code=1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A results directory (twin sweep / run --out).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML file (RUN_DIR/report.html).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file at --output that is no twin report.")
    ] = False,
) -> None:
    """Write one self-contained HTML report (figures and summary table) of a results directory."""
    from twin.experiments.report import REPORT, REPORT_MARKER, write_report

    output_file("--output", output or run_dir / REPORT, REPORT_MARKER, force)
    try:
        written = write_report(run_dir, output)
    except SweepRefused as err:
        raise fail(str(err)) from None
    console.print(f"report written to {written}")


# ---------------------------------------------------------------------------------------------
# twin recommend: the cheapest candidate that meets the SLO


def _backend_for(plan: Any, out: Path, resume: bool, dask: str | None, workers: int | None) -> Any:
    """Check that ``out`` can take the sweep ``plan`` and make its backend (exit 2 if not)."""
    try:
        open_results(out, plan, resume)
    except SweepRefused as err:
        raise fail(str(err)) from None
    return _backend(dask, workers)


PoolOption = Annotated[
    int | None,
    typer.Option("--workers", "-w", callback=at_least(1, "--workers"),
                 help="Pool workers (default: cores)."),
]  # fmt: skip
DaskOption = Annotated[
    str | None,
    typer.Option("--dask", envvar="TWIN_DASK_ADDRESS",
                 help="Dask scheduler (tcp://host:port), or 'local' for a LocalCluster."),
]  # fmt: skip


@app.command()
def recommend(
    path: Annotated[Path, typer.Argument(help="A config or scenario with slo and costs blocks.")],
    knob: Annotated[
        list[str],
        typer.Option("--knob", help="A key and the values to try: KEY=V1,V2,... (repeatable)."),
    ],
    max_breach: Annotated[
        float,
        typer.Option(
            "--max-breach",
            min=0.0,
            max=1.0,
            help="Largest breach probability allowed (its upper 95 % bound).",
        ),
    ] = 0.05,
    replications: Annotated[
        int, typer.Option("--replications", "-r", min=2, help="Replications per candidate.")
    ] = 10,
    precision: Annotated[
        float | None,
        typer.Option(
            "--precision",
            min=0.0,
            help="Add doubling rounds to undecided candidates until the breach "
            "CI half-width is at most REL x --max-breach.",
        ),
    ] = None,
    max_replications: Annotated[
        int, typer.Option("--max-replications", min=2, help="Cap for --precision rounds.")
    ] = 100,
    set_: SetOption = None,
    workers: PoolOption = None,
    dask: DaskOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Results directory (results/<name>-recommend).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep the results already in --out.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Evaluate every combination of the knobs and recommend the cheapest (cost.total) whose
    SLO breach probability is at most --max-breach with 95 % confidence; a table, and a
    Pareto plot in OUT/recommend.html."""
    from twin.experiments import recommend as rec

    try:
        knobs = [rec.parse_knob(text) for text in knob]
        plan = rec.plan_candidates(path, set_ or [], knobs, replications)
    except ConfigError as err:
        raise fail(str(err)) from None
    out = out if out is not None else Path("results") / f"{plan.name.replace('/', '_')}-recommend"
    backend = _backend_for(plan, out, resume, dask, workers)

    def finished(progress: SweepProgress, task: SweepTask, result: Any) -> None:
        if isinstance(result, TaskFailure):
            err_console.print(f"failed: {result.key} ({result.label}): {result.error}",
                              markup=False, highlight=False)  # fmt: skip

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with backend:
            result = rec.recommend(
                plan, out, backend, max_breach=max_breach, replications=replications,
                precision=precision, max_replications=max_replications, resume=resume,
                source=str(path), on_task=finished,
            )  # fmt: skip
    except KeyboardInterrupt:
        err_console.print(f"interrupted: finished tasks are kept in {out}; run again with "
                          "--resume to finish", markup=False)  # fmt: skip
        raise typer.Exit(code=130) from None
    except SweepRefused as err:
        raise fail(str(err)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    page = rec.write_recommendation(result, out)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    head, rows = rec.table_rows(result)
    table = Table(title=f"{plan.name}: candidates (max breach {max_breach:g}, upper 95 % bound)")
    for i, header in enumerate(head):
        width = max(len(header), *(len(row[i]) for row in rows))
        left = i < len(head) - 5
        table.add_column(header, justify="left" if left else "right", min_width=width)
    for row in rows:
        table.add_row(*row)
    Console(width=max(console.width, 130)).print(table)  # a row a line, even when piped
    best = result.recommended
    answer = ("no candidate meets the SLO" if best is None else "recommended: "
              + ", ".join(f"{k}={v}" for k, v in result.choice(best).items()))  # fmt: skip
    console.print(answer)
    console.print(f"report written to {page}")


# ---------------------------------------------------------------------------------------------
# twin validate: the simulation against closed forms


@app.command()
def validate(
    quick: Annotated[
        bool, typer.Option("--quick", help="Shorter runs (about 30 s), same cases.")
    ] = False,
    replications: Annotated[
        int | None,
        typer.Option("--replications", "-r", help="Replications per case (horizons adapt)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Root seed (case i uses seed + i).")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Check the twin against closed-form availability models; exit 1 if any check fails."""
    from twin.validation import FULL, QUICK, default_cases, run_suite

    if replications is not None and replications < 2:
        raise fail(f"--replications: need at least 2 for a confidence interval, got {replications}")
    cases = default_cases()
    progress = reporter("twin validate", quiet or as_json, unit="cases")
    with progress:
        progress(0, len(cases))
        suite = run_suite(cases, mode=QUICK if quick else FULL, seed=seed,
                          replications=replications, on_case=progress.tick)  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(suite.as_dict()) + "\n")
    else:
        Console(width=max(console.width, 150)).print(validation_table(suite))
        console.print(validation_verdict(suite), markup=False, highlight=False)
    if not suite.passed:
        raise typer.Exit(code=1)


def validation_verdict(suite: Any) -> str:
    """The last line of ``twin validate``: ``48/48 checks passed``, or how many passed and
    which failed (case: metric, status)."""
    from twin.validation import Status

    checks = suite.checks
    failed = [r for r in checks if r.status is not Status.PASS]
    verdict = f"{len(checks) - len(failed)}/{len(checks)} checks passed"
    if not failed:
        return verdict
    names = "; ".join(
        f"{r.case}: {r.check.metric.removeprefix('by_architecture.')} ({r.error or r.status.value})"
        for r in failed
    )
    return f"{verdict}; failed: {names}"


def validation_table(suite: Any) -> Table:
    """One row per check: closed form, simulated mean, simultaneous 95 % CI, verdict."""
    from twin.validation import FAMILY_LEVEL, MAX_REL_HALF_WIDTH, Status

    checks = suite.checks
    table = Table(
        title=(
            f"twin validate ({suite.mode.name}): {len(suite.runs)} cases, {len(checks)} checks, "
            f"{suite.mode.replications} replications each, seed {suite.seed}, "
            f"{suite.seconds:.0f} s"
        ),
        caption=(
            f"95 % CI: simultaneous over all {len(checks)} checks (Bonferroni, each at "
            f"{1 - (1 - FAMILY_LEVEL) / max(len(checks), 1):.4f}). rel. err and precision are "
            f"taken on the quantity estimated: the shortfall 1 - A for an availability (and "
            f"for capacity), else the value; precision = ordinary 95 % half-width / that "
            f"quantity, at most {MAX_REL_HALF_WIDTH:.0%} to pass."
        ),
    )
    for column in ("case", "metric", "analytic", "simulated", "95 % CI", "rel. err",
                   "precision", "result"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("case", "metric") else "right")

    def number(x: float) -> str:
        return f"{x:.6g}" if math.isfinite(x) else "-"

    previous = None
    for r in checks:
        ok = r.status is Status.PASS
        table.add_row(
            r.case if r.case != previous else "",
            r.check.metric.removeprefix("by_architecture."),
            number(r.check.analytic),
            number(r.mean),
            f"[{number(r.low)}, {number(r.high)}]",
            f"{r.rel_error:+.2%}" if math.isfinite(r.rel_error) else "-",
            f"{r.precision:.1%}" if math.isfinite(r.precision) else "-",
            f"[green]{r.status.value}[/]" if ok else f"[bold red]{r.error or r.status.value}[/]",
        )
        previous = r.case
    return table


def default_config() -> Path:
    """``configs/default.yaml`` of the current folder if there is one, else the copy shipped
    with the twin (so the default works from any folder)."""
    from twin.data import default_config as shipped

    local = Path("configs/default.yaml")
    return local if local.is_file() else shipped()


@app.command()
def dashboard(
    path: Annotated[
        Path | None,
        typer.Argument(help="A fleet config or a scenario (YAML; default configs/default.yaml)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8050,
    auth: Annotated[
        str | None,
        typer.Option("--auth", help="USER:PASSWORD for basic auth (or TWIN_DASHBOARD_AUTH)."),
    ] = None,
) -> None:
    """The live Dash dashboard: watch a fleet, inject faults, ask what-if questions."""
    # The dashboard sits above the twin: imported only when asked for.
    from dashboard.app import BindRefused, credentials, serve

    try:
        login = credentials(host, auth)
    except BindRefused as err:
        raise fail(str(err)) from None
    path = default_config() if path is None else path
    try:
        rare_events.require_unweighted(load_experiment(path).config, "the dashboard")
    except ConfigError as err:
        raise fail(str(err)) from None
    serve(path, host, port, login)


# ---------------------------------------------------------------------------------------------
# a twin of a real fleet: twin calibrate, twin backtest (twin run --replay above)

LogFormat = Annotated[
    str,
    typer.Option("--format", help="Log format: csv (the twin's schema), lanl or fta."),
]
SystemOption = Annotated[
    int | None, typer.Option("--system", help="LANL system number (with --format lanl).")
]
CauseMap = Annotated[
    list[str] | None,
    typer.Option("--map", help="Map a log cause to a twin cause: FROM=TO (repeatable)."),
]
InventoryOption = Annotated[
    Path | None,
    typer.Option("--inventory", help="Hosts CSV (host[,production_start]) for a csv log."),
]


def _read_incident_log(
    path: Path, fmt: str, system: int | None, inventory: Path | None, causes: list[str] | None,
    start: str | None = None, end: str | None = None,
) -> Any:  # fmt: skip
    from twin.calibration.logs import LogError, parse_cause_map, read_log

    try:
        return read_log(path, fmt, system=system, inventory=inventory,
                        causes=parse_cause_map(causes), start=start, end=end)  # fmt: skip
    except (LogError, ValueError) as err:
        raise fail(str(err).splitlines()[0]) from None


def _window(option: str, text: str) -> tuple[str | None, str | None]:
    """``FROM:TO`` (either side may be empty) as two ISO times: the split is the first colon
    followed by a date (``2003-01-01:2005-01-01``, ``:2005-01-01``) or by nothing."""
    import re

    for i, char in enumerate(text):
        if char == ":" and re.match(r"\d{4}-|$", text[i + 1 :]):
            lo, hi = text[:i].strip(), text[i + 1 :].strip()
            break
    else:
        raise fail(f"{option}: expected FROM:TO (ISO dates, e.g. 2003-01-01:2005-01-01)")
    try:
        for value in (lo, hi):
            if value:
                pd.Timestamp(value)
    except ValueError:
        raise fail(f"{option}: expected FROM:TO with ISO dates, got {text!r}") from None
    return lo or None, hi or None


CALIBRATED_MARKER = "Generated by `twin calibrate`"
"""In the header of every config ``twin calibrate --out`` writes."""
CALIBRATION_REPORT_MARKER = "<title>Calibration: "
"""In the head of every ``twin calibrate --report`` page."""


@app.command()
def calibrate(
    log: Annotated[Path, typer.Argument(help="An incident log (CSV schema, or LANL records).")],
    fmt: LogFormat = "csv",
    system: SystemOption = None,
    start: Annotated[str | None, typer.Option("--from", help="Window start (ISO date).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Window end (ISO date).")] = None,
    inventory: InventoryOption = None,
    causes: CauseMap = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write a calibrated fleet config (YAML).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write an HTML report of the fits.")
    ] = None,
    opendc_out: Annotated[
        Path | None,
        typer.Option("--opendc-out", help="Write the log's outages as an OpenDC failure trace."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files twin did not write.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Fit fault and repair distributions per cause to an incident log (censored maximum
    likelihood, family by AIC among fits that keep the mean) and optionally write a fleet
    config that carries them."""
    from twin.calibration.calibrate import calibrate as fit_log
    from twin.calibration.calibrate import calibrated_config, fleet_inventory

    output_file("--out", out, CALIBRATED_MARKER, force)
    output_file("--report", report, CALIBRATION_REPORT_MARKER, force)
    incident_log = _read_incident_log(log, fmt, system, inventory, causes, start, end)
    if incident_log.incidents.empty:
        raise fail(f"{log}: no incidents in the window {start or '...'} to {end or '...'}")
    progress = reporter("calibrate", quiet or as_json, unit="causes")
    with progress:
        calibration = fit_log(incident_log, progress=progress)
    if out is not None:
        hosts_csv = out.with_suffix(".hosts.csv")
        fleet_inventory(incident_log, hosts_csv)
        out.write_text(calibrated_config(calibration, inventory=hosts_csv.name))
    if report is not None:
        from twin.calibration.report import write_calibration_report

        write_calibration_report(calibration, report)
    if opendc_out is not None:
        from twin.calibration.traces import write_opendc_trace

        write_opendc_trace(incident_log, opendc_out)
    if as_json:
        sys.stdout.write(json.dumps(calibration.as_dict()) + "\n")
        return
    console.print(calibration_table(calibration))
    for path, what in ((out, "config"), (report, "report"), (opendc_out, "OpenDC trace")):
        if path is not None:
            console.print(f"{what} written to {path}")


def calibration_table(calibration: Any) -> Table:
    """One row per cause: count, rate with its exact 95 % CI, chosen fault and repair fits
    with their mean beside the empirical one; poor fits flagged."""
    from twin.calibration.fitting import POOR_FIT_KS

    log = calibration.log
    table = Table(
        title=(
            f"{log.source}: {log.window_start:%Y-%m-%d} to {log.window_end:%Y-%m-%d}, "
            f"{calibration.hosts} hosts, {calibration.exposure_hours:,.0f} host-hours"
        ),
        caption=(
            "MLE with right-censoring; family by AIC among fits that keep the data's mean "
            "(repairs) or fault count over the time at risk (censored times between faults), "
            "within 95 % sampling error; KS = largest gap between the Kaplan-Meier and "
            f"fitted survival curves (! = poor fit: KS > {POOR_FIT_KS}). "
            f"{calibration.trend.reading}"
        ),
    )
    for column in ("cause", "count", "per host-year (95 % CI)",
                   "time between faults: family, fit / data", "KS",
                   "repair time: family, fit / data", "KS"):  # fmt: skip
        table.add_column(column, justify="left" if column == "cause" else "right")

    def describe(fit: Any) -> tuple[str, str]:
        if fit is None:
            return "too few events", ""
        flag = " !" if fit.poor else ""
        return f"{fit.family}\n{fit.kept()}", f"{fit.ks_distance:.3f}{flag}"

    for cause, fit in calibration.causes.items():
        rate = fit.rate
        table.add_row(cause, str(fit.count),
                      f"{rate.mean:.3g} ({rate.ci95_low:.3g}-{rate.ci95_high:.3g})",
                      *describe(fit.fault), *describe(fit.repair))  # fmt: skip
    return table


@app.command()
def backtest(
    log: Annotated[Path, typer.Argument(help="An incident log (CSV schema, or LANL records).")],
    train: Annotated[str, typer.Option("--train", help="Training window FROM:TO.")],
    test: Annotated[str, typer.Option("--test", help="Test window FROM:TO.")],
    fmt: LogFormat = "csv",
    system: SystemOption = None,
    inventory: InventoryOption = None,
    causes: CauseMap = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Fleet config giving the fabric (default: the default)."),
    ] = None,
    replications: Annotated[
        int,
        typer.Option(
            "--replications", "-r", callback=at_least(1, "--replications"), help="Replications."
        ),
    ] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Root seed.")] = 42,
    trend: Annotated[
        bool, typer.Option("--trend", help="Extrapolate fault rates (Crow-AMSAA NHPP).")
    ] = False,
    decide_within: Annotated[
        int | None,
        typer.Option(
            "--decide-within",
            callback=at_least(1, "--decide-within"),
            help="While the host-availability verdict (twin or baseline closer) is undecided, "
            "double the replications, up to this many.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Calibrate on the training window, simulate the test window on the same fleet R times,
    and print observed against predicted (95 % CI) and against the naive baseline.

    Exit status: 0 done, 2 bad input, 130 interrupted (nothing is written).
    """
    from twin.calibration.backtest import backtest as run_backtest
    from twin.calibration.logs import LogError

    train_window, test_window = _window("--train", train), _window("--test", test)
    incident_log = _read_incident_log(log, fmt, system, inventory, causes)
    fleet_config = _load(config or default_config(), None, None).config
    try:
        rare_events.require_unweighted(fleet_config, "twin backtest")
    except ConfigError as err:
        raise fail(str(err)) from None
    progress = reporter("backtest", quiet or as_json)
    try:
        with sigterm_interrupts(), progress:
            progress(0, replications)
            result = run_backtest(incident_log, train_window, test_window, fleet_config,
                                  replications, seed, trend=trend, progress=progress,
                                  decide_within=decide_within)  # fmt: skip
    except KeyboardInterrupt:
        raise interrupted(
            f"{progress.done} of {replications} replications of the test window finished; "
            "a backtest writes nothing, run it again"
        ) from None
    except (LogError, ValueError) as err:
        raise fail(str(err).splitlines()[0]) from None
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict()) + "\n")
        return
    console.print(backtest_table(result))
    for note in result.notes:
        console.print(f"note: {note}")


def backtest_table(result: Any) -> Table:
    """Observed against predicted and against the naive baseline, one row per metric and
    cause, with which of the two is closer."""
    train, test = result.train.log, result.test
    table = Table(
        title=(
            f"{test.source}: trained {train.window_start:%Y-%m-%d} to {train.window_end:%Y-%m-%d}, "
            f"tested {test.window_start:%Y-%m-%d} to {test.window_end:%Y-%m-%d}, "
            f"{result.replications} replication(s)"
        )
    )
    table.caption = (
        "predicted: mean ± 95 % CI of the mean over replications; 95 % range: where 95 % of "
        "the replications fell (the observed window is one realisation, so compare it there); "
        "baseline: the training window carried forward; closer: twin only when its whole "
        "95 % CI is nearer than the baseline, undecided when it reaches both sides (raise -r)"
    )
    for column in ("metric", "observed", "predicted (mean ± 95 % CI)", "95 % range", "inside",
                   "baseline", "closer"):  # fmt: skip
        table.add_column(
            column, justify="left" if column == "metric" else "right",
            no_wrap=column in ("metric", "closer"),
        )  # fmt: skip
    closer = result.closer
    short = {"incidents_per_host_year": "incidents/host-year", "downtime_hours_per_host_year":
             "down h/host-year"}  # fmt: skip

    def row(key: str, observed: float, leaf: dict[str, float] | None, naive: float) -> None:
        inside = spread = ""
        if leaf is not None:
            low, high = leaf["range95_low"], leaf["range95_high"]
            spread = f"{low:.4g} - {high:.4g}"
            inside = "yes" if low <= observed <= high else "no"
        group, _, cause = key.partition(".")
        label = f"{short[group]}: {cause}" if cause else key
        table.add_row(label, f"{observed:.6g}", _fmt(leaf) if leaf else "-", spread, inside,
                      f"{naive:.6g}", closer.get(key, ""))  # fmt: skip

    obs, pred, base = result.observed, result.predicted, result.baseline
    row("host_availability", obs["host_availability"], pred["host_availability"],
        base["host_availability"])  # fmt: skip
    for group in ("incidents_per_host_year", "downtime_hours_per_host_year"):
        for cause in sorted(set(obs[group]) | set(pred[group]) | set(base[group])):
            row(f"{group}.{cause}", obs[group].get(cause, 0.0), pred[group].get(cause),
                base[group].get(cause, 0.0))  # fmt: skip
    return table


def main() -> None:
    app()


if __name__ == "__main__":
    main()
