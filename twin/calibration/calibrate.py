"""Calibration: from an incident log to fitted fault and repair processes per cause, and
from those to a fleet config the twin can run.

Per cause, the time between faults (right-censored up-time, see `up_intervals`) and the
repair time (the incident's down time) are fitted by maximum likelihood with every family
of `FAMILIES`; the lowest AIC among the fits that keep the empirical mean wins (see
`fit_all`). The rate per host-year is count / exposure with an exact Poisson interval.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from twin.calibration.fitting import (
    FAMILIES,
    Fit,
    Rate,
    Sample,
    Trend,
    fit_all,
    laplace_trend,
    poisson_rate,
)
from twin.calibration.logs import IncidentLog, log_hosts, repair_times, up_intervals
from twin.config import ARCHITECTURES, deep_merge
from twin.data import default_config
from twin.inventory import write_inventory

DEFAULT_BASE = default_config()


@dataclass
class CauseFit:
    """What the log says about one cause: how often, how long between, how long down."""

    cause: str
    count: int
    rate: Rate
    faults: list[Fit] = field(default_factory=list)
    repairs: list[Fit] = field(default_factory=list)
    fault_sample: Sample | None = None
    repair_sample: Sample | None = None
    trend: Trend | None = None

    @property
    def fault(self) -> Fit | None:
        """The AIC-best fit of the time between faults (None: too few events)."""
        return self.faults[0] if self.faults else None

    @property
    def repair(self) -> Fit | None:
        return self.repairs[0] if self.repairs else None

    def as_dict(self) -> dict[str, Any]:
        def ranked(fits: list[Fit]) -> dict[str, Any] | None:
            if not fits:
                return None
            return {**fits[0].as_dict(), "candidates": {f.family: f.candidate() for f in fits}}

        out: dict[str, Any] = {
            "count": self.count,
            "rate_per_host_year": self.rate.as_dict(),
            "fault": ranked(self.faults),
            "repair": ranked(self.repairs),
        }
        if self.trend is not None:
            out["trend"] = {"laplace_u": self.trend.statistic, "p_value": self.trend.p_value,
                            "crow_amsaa_beta": self.trend.beta}  # fmt: skip
        return out


@dataclass
class Calibration:
    """Fits for every cause of one log, over its window."""

    log: IncidentLog
    hosts: int
    exposure_hours: float
    causes: dict[str, CauseFit]
    trend: Trend

    def as_dict(self) -> dict[str, Any]:
        """The ``twin calibrate --json`` object."""
        return {
            "source": self.log.source,
            "window": {
                "start": self.log.window_start.isoformat(),
                "end": self.log.window_end.isoformat(),
            },
            "hosts": self.hosts,
            "exposure_host_hours": self.exposure_hours,
            "trend": {
                "laplace_u": self.trend.statistic,
                "p_value": self.trend.p_value,
                "crow_amsaa_beta": self.trend.beta,
                "significant": self.trend.significant,
            },
            "causes": {c: fit.as_dict() for c, fit in self.causes.items()},
        }


def calibrate(
    log: IncidentLog,
    families: tuple[str, ...] = FAMILIES,
    min_events: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> Calibration:
    """Fit every cause of ``log`` (causes with fewer than ``min_events`` faults get a rate
    but no distribution fits); ``progress(done, total)`` is called as each cause is fitted."""
    exposure = log.exposure_hours()
    lengths, ends = up_intervals(log)
    causes: dict[str, CauseFit] = {}
    starts = log.hours(log.incidents["start"])
    for done, cause in enumerate(log.causes, start=1):
        mine = log.incidents["cause"] == cause
        count = int(mine.sum())
        fit = CauseFit(cause, count, poisson_rate(count, exposure))
        fit.trend = laplace_trend(starts[mine].to_numpy(float), log.window_hours)
        fault = Sample.of(lengths, ends == cause, floor=log.resolution_hours / 2)
        repair = Sample.of(*repair_times(log, cause), floor=log.resolution_hours / 2)
        if fault.events >= min_events:
            fit.faults, fit.fault_sample = fit_all(fault, families), fault
        if repair.events >= min_events:
            fit.repairs, fit.repair_sample = fit_all(repair, families), repair
        causes[cause] = fit
        if progress is not None:
            progress(done, len(log.causes))
    trend = laplace_trend(starts.to_numpy(float), log.window_hours)
    return Calibration(log, len(log.service()), exposure, causes, trend)


# -- writing a config ---------------------------------------------------------------------

CONFIG_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "hardware": (("hardware", "fault"), ("hardware", "repair")),
    "hypervisor": (
        ("architectures", "*", "hypervisor_fault"),
        ("architectures", "*", "reboot_time"),
    ),
    "network": (("network", "tor_fault"), ("network", "tor_repair")),
    "power": (("network", "power_fault"), ("network", "power_repair")),
}
"""Where each cause's fault and repair fits go in a fleet config. A per-host network or
power incident becomes a rack's ToR or power-feed fault (one of each per rack in the
calibrated fleet), so a rack-wide outage in the log is one component fault in the twin.
The hypervisor repair time becomes the reboot time, with detection at 0 and automatic
reboot, so a crash lasts what the log says."""


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip()


def _place(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> list[tuple[str, ...]]:
    if path[1:2] == ("*",):
        return [p for arch in ARCHITECTURES
                for p in _place(tree, (path[0], arch, *path[2:]), value)]  # fmt: skip
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return [path]


def calibrated_config(
    calibration: Calibration, inventory: str | None = None, base: Path = DEFAULT_BASE
) -> str:
    """The YAML text of a fleet config: ``base`` with every mappable cause's fault and
    repair replaced by its fit. Comments name the data, the window and each fit."""
    log = calibration.log
    tree = yaml.safe_load(base.read_text())
    window = f"{log.window_start:%Y-%m-%d} to {log.window_end:%Y-%m-%d}"
    notes: dict[tuple[str, ...], str] = {}
    slug = re.sub(r"[^a-z0-9]+", "-", log.source.split(" (")[0].lower()).strip("-")
    over: dict[str, Any] = {
        "name": f"calibrated-{slug}",
        "drivers": [],
        "updates": [],
        "architectures": {a: {"parent_os_fault": "never", "crash_detection": 0,
                              "guest_process_fault": "never", "crash_auto_reboot": True,
                              "aging": "never"}  # logged crashes include aging ones
                         for a in ARCHITECTURES},
    }  # fmt: skip
    if inventory is not None:
        over["hosts"] = {"inventory": inventory}
    for cause, (fault_key, repair_key) in CONFIG_KEYS.items():
        fit = calibration.causes.get(cause)
        if fit is None:
            for p in _place(over, fault_key, "never"):
                notes[p] = f"no {cause} incidents in the window"
            continue
        if fit.fault is not None:
            for p in _place(over, fault_key, fit.fault.distribution().to_yaml()):
                notes[p] = _describe(fit.fault, f"{fit.count} {cause} faults", fit.rate)
        if fit.repair is not None and repair_key is not None:
            for p in _place(over, repair_key, fit.repair.distribution().to_yaml()):
                notes[p] = _describe(fit.repair, f"{fit.repair.n} {cause} repairs", None)
    merged = deep_merge(tree, over)
    header = [
        f"# Calibrated from {log.source},",
        f"# window {window}:",
        f"# {calibration.hosts} hosts, {calibration.exposure_hours:,.0f} host-hours in service.",
        "# Generated by `twin calibrate`; every fit is maximum likelihood with right-censoring,",
        "# the family chosen by AIC among the fits that keep the empirical mean. Drivers and",
        "# update campaigns are empty because the log records neither; add your own before",
        "# running what-if scenarios.",
    ]
    if "LANL" in log.source:
        header += ["# Data: Los Alamos National Laboratory failure records 1996-2005",
                   "# (LA-UR-05-7318). These are HPC nodes, not hypervisor hosts."]  # fmt: skip
    unmapped = [c for c in calibration.causes if c not in CONFIG_KEYS]
    for cause in unmapped:
        fit = calibration.causes[cause]
        header.append(f"# Not in the twin's processes: {cause}: {fit.count} incidents, "
                      f"{fit.rate.mean:.3g}/host-year (see twin calibrate --json).")  # fmt: skip
    body = yaml.safe_dump(merged, sort_keys=False, default_flow_style=None, width=1000)
    return "\n".join(header) + "\n" + _annotate(body, notes)


def _describe(fit: Fit, what: str, rate: Rate | None) -> str:
    text = f"{what}: {fit.family} by AIC among mean-keeping fits, {fit.kept()}"
    if rate is not None:
        text += f", {rate.mean:.3g}/host-year (95 % CI {rate.ci95_low:.3g}-{rate.ci95_high:.3g})"
    return text + f", KS distance {fit.ks_distance:.3f}"


def _annotate(body: str, notes: dict[Any, str]) -> str:
    """Append each note as a comment to the line of its key path."""
    stack: list[tuple[int, str]] = []
    lines = []
    for line in body.splitlines():
        match = re.match(r"^( *)([A-Za-z_][\w]*):", line)
        if match:
            indent = len(match[1])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match[2]))
            note = notes.get(tuple(k for _, k in stack))
            if note:
                line = f"{line}  # {note}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def fleet_inventory(log: IncidentLog, path: Path, hosts_per_rack: int = 16) -> None:
    """Write the log's hosts as an inventory CSV, for a calibrated config's ``hosts.inventory``."""
    write_inventory(path, log_hosts(log, hosts_per_rack))


def observed_summary(log: IncidentLog) -> dict[str, Any]:
    """What happened in a log's window, in the units the backtest compares."""
    exposure = log.exposure_hours()
    years = exposure / 8760.0
    counts = log.incidents["cause"].value_counts()
    down = log.downtime_hours()
    return {
        "host_availability": log.host_availability(),
        "incidents_per_host_year": {c: float(n / years) for c, n in counts.items()},
        "downtime_hours_per_host_year": {c: float(h / years) for c, h in down.items()},
        "exposure_host_hours": exposure,
    }
