"""The ``twin`` command: a thin layer over the Python API.

Bad input ends with one line on stderr naming what is wrong and where, and exit
status 2; never a traceback.
"""

from __future__ import annotations

import json
import math
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from twin.config import ConfigError, Experiment, load_experiment, parse_duration
from twin.experiments import run_replications, write_results
from twin.experiments.backends import make_backend
from twin.experiments.compare import Comparison
from twin.experiments.compare import compare as run_comparison
from twin.experiments.runner import RunResult
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


@app.command()
def run(
    path: Annotated[Path, typer.Argument(help="A fleet config or a scenario (YAML).")],
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Root seed.")] = None,
    replications: Annotated[
        int | None, typer.Option("--replications", "-r", help="Replications.")
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
) -> None:
    """Run a fleet config (or a scenario's arm) and print its metrics with 95 % CIs."""
    hours = _duration("--horizon", horizon)
    experiment = _load(path, set_, arm, seed=seed, replications=replications, horizon=hours)
    if replay is not None:
        _run_replay(experiment, replay, replay_system, as_json)
        return
    injections = experiment.scenario.injections if experiment.scenario else ()
    result = RunResult(config=experiment.config, seed=experiment.config.seed)
    try:
        run_replications(
            experiment.config,
            record_events=out is not None,
            injections=injections,
            on_done=result.replications.append,
        )
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
        if out is not None:
            console.print(f"results written to {out}")


def _run_replay(experiment: Experiment, log: Path, system: int | None, as_json: bool) -> None:
    """``twin run --replay``: one run over the log's window with the log's outages."""
    from twin.calibration.replay import replay_fleet
    from twin.metrics import summarise

    fmt = "lanl" if system is not None else "csv"
    incident_log = _read_incident_log(log, fmt, system, None, None)
    try:
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
) -> None:
    """Validate a config or scenario; say OK or what is wrong."""
    experiment = _load(path, set_, arm)
    config = experiment.config
    injections = experiment.scenario.injections if experiment.scenario else ()
    try:  # names in injections and service placement are checked against the built fleet
        fleet = Fleet(config, 0, record_events=False, injections=injections)
    except ConfigError as err:
        raise fail(str(err)) from None
    console.print(
        f"OK: {path} ({config.name}; {len(fleet.hosts)} hosts, {len(fleet.guests)} guests, "
        f"horizon {config.horizon:g} h)"
    )


@app.command()
def compare(
    path: Annotated[Path, typer.Argument(help="A scenario with arms (or a config).")],
    set_: SetOption = None,
    replications: Annotated[
        int | None, typer.Option("--replications", "-r", help="Replications per arm.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Root seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run every arm with the same seeds and print them side by side with 95 % CIs, and
    each arm's difference from the first arm (paired CI)."""
    try:
        comparison = run_comparison(path, set_, replications, seed)
    except ConfigError as err:
        raise fail(str(err)) from None
    if as_json:
        sys.stdout.write(json.dumps(comparison.to_json()) + "\n")
        return
    console.print(comparison_table(comparison))


def comparison_table(comparison: Comparison) -> Table:
    arms = list(comparison.runs)
    reps = len(next(iter(comparison.runs.values())).replications)
    title = f"{comparison.name}: {reps} replication(s) per arm (mean ± 95 % CI half-width)"
    table = Table(title=title, caption=comparison.question or None)
    table.add_column("metric")
    for i, arm in enumerate(arms):
        table.add_column(arm, justify="right")
        if i:
            table.add_column(f"{arm} − {arms[0]}", justify="right", style="cyan")
    for metric in comparison.metric_names():
        cells = []
        for i, arm in enumerate(arms):
            leaf = comparison.leaf(arm, metric)
            cells.append(_fmt(leaf) if leaf else "")
            if i:
                diff = comparison.difference(arm, metric)
                cells.append(_fmt(diff) if diff else "")
        table.add_row(metric.replace("by_architecture.", ""), *cells)
    return table


def _fmt(leaf: dict[str, float]) -> str:
    """``mean ± half-width``, with decimals down to two significant digits of the
    half-width (so availabilities near 1 keep their nines)."""
    mean, half = leaf["mean"], (leaf["ci95_high"] - leaf["ci95_low"]) / 2
    if half > 0:
        digits = min(9, max(2, 1 - math.floor(math.log10(half))))
        return f"{mean:.{digits}f} ± {half:.{digits}f}"
    digits = 6 if 0 < abs(mean) < 1 else 2
    return f"{mean:.{digits}f}"


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


class _RateColumn(ProgressColumn):
    """Finished tasks per second."""

    def render(self, task: Any) -> Text:
        speed = task.speed
        return Text("- task/s" if speed is None else f"{speed:.2f} task/s", style="cyan")


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends a sweep the way Ctrl-C does: what finished is kept."""
    raise KeyboardInterrupt


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
        int | None, typer.Option("--workers", "-w", min=1, help="Workers (default: cores).")
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
        int | None, typer.Option("--replications", "-r", min=1, help="Replications per cell.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
) -> None:
    """Run every arm x sweep grid point x replication; results stream to Parquet in --out.

    Exit status: 0 done, 1 some tasks failed, 2 bad input, 130 interrupted (run again
    with --resume to finish).
    """
    try:
        plan = plan_sweep(path, set_ or [], replications)
    except ConfigError as err:
        raise fail(str(err)) from None
    out = out if out is not None else Path("results") / plan.name.replace("/", "_")
    backend = _backend_for(plan, out, resume, dask, workers)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               _RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("[red]{task.fields[failed]} failed"))  # fmt: skip
    bar = Progress(*columns, console=err_console, disable=quiet)
    bar_id = bar.add_task(plan.name, total=None, failed=0)
    step = 1

    def started(progress: SweepProgress) -> None:
        nonlocal step
        bar.update(bar_id, total=progress.total, completed=progress.done)
        step = max(1, (progress.total - progress.done) // 10)

    def finished(progress: SweepProgress, task: SweepTask, result: Any) -> None:
        bar.update(bar_id, completed=progress.done, failed=progress.failed)
        if isinstance(result, TaskFailure):
            err_console.print(f"failed: {result.key} ({result.label}): {result.error}",
                              markup=False, highlight=False)  # fmt: skip
        elif not quiet and not err_console.is_terminal and progress.finished % step == 0:
            err_console.print(f"{progress.done}/{progress.total} done, {progress.failed} failed")

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with backend, bar:
            progress = run_sweep(plan, out, backend, resume=resume, source=str(path),
                                 on_start=started, on_task=finished)  # fmt: skip
    except KeyboardInterrupt:
        done = len(done_keys(out))
        err_console.print(f"interrupted: {done} task(s) done are kept in {out}; "
                          "run again with --resume to finish", markup=False)  # fmt: skip
        raise typer.Exit(code=130) from None
    except SweepRefused as err:
        raise fail(str(err)) from None
    except SweepAborted as err:
        err_console.print(f"error: {err}; {len(done_keys(out))} task(s) done are kept in "
                          f"{out}; run again with --resume to finish", markup=False)  # fmt: skip
        raise typer.Exit(code=1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not quiet:
        summary = pd.read_parquet(out / "summary.parquet")
        if not summary.empty:
            console.print(sweep_table(plan.name, cell_summary(summary)))
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
) -> None:
    """Write one self-contained HTML report (figures and summary table) of a results directory."""
    from twin.experiments.report import write_report

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
    try:
        return make_backend(dask, workers)
    except (OSError, ValueError) as err:
        raise fail(f"--dask {dask}: cannot use the cluster: {err}") from None


PoolOption = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Pool workers (default: cores).")
]
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
        bool, typer.Option("--quick", help="Shorter runs (about 20 s), same cases.")
    ] = False,
    replications: Annotated[
        int | None,
        typer.Option("--replications", "-r", help="Replications per case (horizons adapt)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Root seed (case i uses seed + i).")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check the twin against closed-form availability models; exit 1 if any check fails."""
    from twin.validation import FULL, QUICK, run_suite

    if replications is not None and replications < 2:
        raise fail(f"--replications: need at least 2 for a confidence interval, got {replications}")
    suite = run_suite(mode=QUICK if quick else FULL, seed=seed, replications=replications)
    if as_json:
        sys.stdout.write(json.dumps(suite.as_dict()) + "\n")
    else:
        Console(width=max(console.width, 150)).print(validation_table(suite))
    if not suite.passed:
        raise typer.Exit(code=1)


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


DEFAULT = Path("configs/default.yaml")


@app.command()
def dashboard(
    path: Annotated[Path, typer.Argument(help="A fleet config or a scenario (YAML).")] = DEFAULT,
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
    try:
        load_experiment(path)
    except ConfigError as err:
        raise fail(str(err)) from None
    serve(path, host, port, login)


# ---------------------------------------------------------------------------------------------
# a twin of a real fleet: twin calibrate, twin backtest (twin run --replay above)

LogFormat = Annotated[
    str, typer.Option("--format", help="Log format: csv (the twin's schema) or lanl.")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit fault and repair distributions per cause to an incident log (censored maximum
    likelihood, family by AIC) and optionally write a fleet config that carries them."""
    from twin.calibration.calibrate import calibrate as fit_log
    from twin.calibration.calibrate import calibrated_config, fleet_inventory

    incident_log = _read_incident_log(log, fmt, system, inventory, causes, start, end)
    if incident_log.incidents.empty:
        raise fail(f"{log}: no incidents in the window {start or '...'} to {end or '...'}")
    calibration = fit_log(incident_log)
    if out is not None:
        hosts_csv = out.with_suffix(".hosts.csv")
        fleet_inventory(incident_log, hosts_csv)
        out.write_text(calibrated_config(calibration, inventory=hosts_csv.name))
    if report is not None:
        from twin.calibration.report import write_calibration_report

        write_calibration_report(calibration, report)
    if as_json:
        sys.stdout.write(json.dumps(calibration.as_dict()) + "\n")
        return
    console.print(calibration_table(calibration))
    for path, what in ((out, "config"), (report, "report")):
        if path is not None:
            console.print(f"{what} written to {path}")


def calibration_table(calibration: Any) -> Table:
    """One row per cause: count, rate with its exact 95 % CI, best fault and repair fits."""
    log = calibration.log
    table = Table(
        title=(
            f"{log.source}: {log.window_start:%Y-%m-%d} to {log.window_end:%Y-%m-%d}, "
            f"{calibration.hosts} hosts, {calibration.exposure_hours:,.0f} host-hours"
        ),
        caption=(
            "MLE with right-censoring, family by AIC; KS = largest gap between the "
            "Kaplan-Meier and fitted survival curves. Trend (Laplace): "
            f"U = {calibration.trend.statistic:.2f}, p = {calibration.trend.p_value:.2g}"
        ),
    )
    for column in ("cause", "count", "per host-year (95 % CI)", "time between faults", "KS",
                   "repair time", "KS"):  # fmt: skip
        table.add_column(column, justify="left" if column == "cause" else "right")

    def describe(fit: Any) -> tuple[str, str]:
        if fit is None:
            return "too few events", ""
        return f"{fit.family}, mean {fit.frozen().mean():.4g} h", f"{fit.ks_distance:.3f}"

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
        Path, typer.Option("--config", help="Fleet config giving the fabric (racks, pods).")
    ] = Path("configs/default.yaml"),
    replications: Annotated[
        int, typer.Option("--replications", "-r", min=1, help="Replications.")
    ] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Root seed.")] = 42,
    trend: Annotated[
        bool, typer.Option("--trend", help="Extrapolate fault rates (Crow-AMSAA NHPP).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Calibrate on the training window, simulate the test window on the same fleet R times,
    and print observed against predicted (95 % CI)."""
    from twin.calibration.backtest import backtest as run_backtest
    from twin.calibration.logs import LogError

    train_window, test_window = _window("--train", train), _window("--test", test)
    incident_log = _read_incident_log(log, fmt, system, inventory, causes)
    fleet_config = _load(config, None, None).config
    try:
        result = run_backtest(incident_log, train_window, test_window, fleet_config,
                              replications, seed, trend=trend)  # fmt: skip
    except (LogError, ValueError) as err:
        raise fail(str(err).splitlines()[0]) from None
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict()) + "\n")
        return
    console.print(backtest_table(result))
    for note in result.notes:
        console.print(f"note: {note}")


def backtest_table(result: Any) -> Table:
    """Observed against predicted, one row per metric and cause."""
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
        "the replications fell (the observed window is one realisation, so compare it there)"
    )
    for column in ("metric", "observed", "predicted (mean ± 95 % CI)", "95 % range", "inside"):
        table.add_column(column, justify="left" if column == "metric" else "right")

    def row(label: str, observed: float | None, leaf: dict[str, float] | None) -> None:
        seen = "-" if observed is None else f"{observed:.6g}"
        inside = spread = ""
        if leaf is not None:
            low, high = leaf["range95_low"], leaf["range95_high"]
            spread = f"{low:.4g} - {high:.4g}"
            if observed is not None:
                inside = "yes" if low <= observed <= high else "no"
        table.add_row(label, seen, _fmt(leaf) if leaf else "-", spread, inside)

    obs, pred = result.observed, result.predicted
    row("host_availability", obs["host_availability"], pred["host_availability"])
    for group in ("incidents_per_host_year", "downtime_hours_per_host_year"):
        for cause in sorted(set(obs[group]) | set(pred[group])):
            row(f"{group}.{cause}", obs[group].get(cause, 0.0), pred[group].get(cause))
    return table


def main() -> None:
    app()


if __name__ == "__main__":
    main()
