"""The ``twin`` command: a thin layer over the Python API.

Bad input ends with one line on stderr naming what is wrong and where, and exit
status 2; never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from twin.config import ConfigError, FleetConfig, load_experiment, parse_duration
from twin.experiments import run_replications, write_results

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Digital twin of a virtualised data-center fleet (monolithic vs microkernel hypervisors).",
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


def _load(path: Path, sets: list[str] | None, arm: str | None, **overrides: Any) -> FleetConfig:
    extra = [f"{key}={value}" for key, value in overrides.items() if value is not None]
    try:
        return load_experiment(path, [*(sets or []), *extra], arm=arm).config
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
) -> None:
    """Run a fleet config (or a scenario's arm) and print its metrics with 95 % CIs."""
    hours = _duration("--horizon", horizon)
    config = _load(path, set_, arm, seed=seed, replications=replications, horizon=hours)
    result = run_replications(config, record_events=out is not None)
    if out is not None:
        write_results(result, out, source=str(path))
    summary = result.summary()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        console.print(summary_table(summary))
        if out is not None:
            console.print(f"results written to {out}")


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="A fleet config or a scenario (YAML).")],
    set_: SetOption = None,
    arm: ArmOption = None,
) -> None:
    """Validate a config or scenario; say OK or what is wrong."""
    config = _load(path, set_, arm)
    hosts = config.topology
    n_hosts = (
        hosts.sites * hosts.pods * hosts.racks_per_pod * hosts.hosts_per_rack
        if hosts.file is None
        else "file"
    )
    console.print(f"OK: {path} ({config.name}; {n_hosts} hosts, horizon {config.horizon:g} h)")


def _fmt(leaf: dict[str, float]) -> str:
    """``mean ± half-width`` with as many digits as the value needs."""
    mean, half = leaf["mean"], (leaf["ci95_high"] - leaf["ci95_low"]) / 2
    digits = 6 if 0 < abs(mean) < 1 else 2
    return f"{mean:.{digits}f}" if half == 0 else f"{mean:.{digits}f} ± {half:.{digits}f}"


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
