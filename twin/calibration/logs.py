"""Incident logs of a real fleet: the CSV schema, the LANL reader, and exposure.

An incident log says which host went down, when, why, and when it came back. The twin
reads two forms:

* its own CSV schema, one incident per row::

      start,end,host,cause[,rack,architecture,guests_affected]
      2024-03-01T10:54:00,2024-03-01T11:00:00,esx-017,hardware

  ``start`` and ``end`` are ISO 8601 times; ``cause`` is a twin cause (``hardware``,
  ``hypervisor``, ``power``, ``network``, ``operator_error``, ...) or any word the cause
  mapping turns into one. Hosts that never failed are declared with an inventory CSV
  (``host`` and optional ``production_start``); without one, the log's hosts are the fleet.

* the failure records Los Alamos National Laboratory released for its systems 1996-2005
  (``--format lanl``), one system at a time. These are HPC cluster nodes, not hypervisor
  hosts: their causes are mapped onto the twin's (see `LANL_CAUSES`).

The field's trace formats (the Failure Trace Archive, OpenDC) are read in
`twin.calibration.traces`.

Exposure is host-hours in service inside the window: from each host's production start
(or the window start) to its decommissioning (or the window end), so hosts without
incidents count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

CSV_COLUMNS = ("start", "end", "host", "cause")
CSV_OPTIONAL = ("rack", "architecture", "guests_affected")

LANL_BLAME = ("Facilities", "Hardware", "Human Error", "Network", "Undetermined", "Software")

LANL_CAUSES: dict[str, str] = {
    "Hardware": "hardware",
    "Facilities": "power",
    "Network": "network",
    "Human Error": "operator_error",
    "Software/OS": "hypervisor",
    "Software/Kernel software": "hypervisor",
    "Software": "software",
    "Undetermined": "undetermined",
    "(none)": "undetermined",
}
"""How LANL's blame columns map to twin causes; ``Column/value`` entries win over ``Column``.

OS and kernel faults of an HPC node stand in for faults at the hypervisor layer; other
software (file systems, schedulers, ...) is a cause of its own, and undetermined records
are kept apart rather than spread over the known causes."""

HOURS_PER_YEAR = 8760.0
LANL_END = pd.Timestamp("2006-01-01")
"""The LANL records run to the end of 2005: ``current`` nodes are in service until then."""


class LogError(ValueError):
    """An incident log that cannot be read: says which file or row and what was wrong."""


@dataclass(frozen=True)
class IncidentLog:
    """Incidents of a fleet inside an observation window, and the fleet's hosts.

    ``incidents`` has columns ``start``, ``end`` (timestamps), ``host``, ``cause`` (a twin
    cause), ``source_cause`` (as written in the log) and any optional CSV columns; a
    ``censored`` column, when present, marks down times known only as lower bounds (cut by
    a trace's window). ``hosts`` is indexed by host name with columns ``start`` (production
    start) and ``end`` (decommissioning, NaT while in service), and optionally
    ``left_censored``: the host's first up stretch began before it was observed, so it is a
    lower bound, not a time between faults. ``resolution_hours`` is the log's clock tick: a
    time recorded as zero was shorter than it.
    """

    incidents: pd.DataFrame
    hosts: pd.DataFrame
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    source: str
    resolution_hours: float = 1 / 60

    @property
    def causes(self) -> list[str]:
        """Causes present in the log, most frequent first."""
        return list(self.incidents["cause"].value_counts().index)

    @property
    def window_hours(self) -> float:
        return (self.window_end - self.window_start).total_seconds() / 3600

    def service(self) -> pd.DataFrame:
        """Each host's time in service inside the window: columns ``start``, ``end``."""
        start = self.hosts["start"].clip(lower=self.window_start)
        end = self.hosts["end"].fillna(self.window_end).clip(upper=self.window_end)
        return pd.DataFrame({"start": start, "end": end})[end > start]

    def exposure_hours(self) -> float:
        """Host-hours in service inside the window (with or without incidents)."""
        service = self.service()
        return float((service["end"] - service["start"]).dt.total_seconds().sum() / 3600)

    def hours(self, when: pd.Series | pd.Timestamp) -> pd.Series | float:
        """Times as hours since the window start (the twin's clock)."""
        return (when - self.window_start) / pd.Timedelta(hours=1)

    def between(self, start: datetime | str | None, end: datetime | str | None) -> IncidentLog:
        """The log seen through a narrower window: incidents starting inside it, hosts in
        service during it, incidents still open at its end cut there (right-censored)."""
        lo = self.window_start if start is None else max(pd.Timestamp(start), self.window_start)
        hi = self.window_end if end is None else min(pd.Timestamp(end), self.window_end)
        if not hi > lo:
            raise LogError(f"empty window: {lo} to {hi}")
        inc = self.incidents
        inc = inc[(inc["start"] >= lo) & (inc["start"] < hi)].copy()
        hosts = self.hosts[(self.hosts["start"] < hi) & ~(self.hosts["end"] <= lo)]
        return replace(self, incidents=inc.reset_index(drop=True), hosts=hosts,
                       window_start=lo, window_end=hi)  # fmt: skip

    def downtime_hours(self) -> pd.Series:
        """Host-hours down by cause inside the window (overlaps on one host counted once,
        for the cause of the incident that began first)."""
        out: dict[str, float] = {}
        for _host, start, end, cause in self.outages():
            out[cause] = out.get(cause, 0.0) + (end - start)
        return pd.Series(out, dtype=float)

    def host_availability(self) -> float:
        """Fraction of in-service host-hours not down, straight from the log."""
        exposure = self.exposure_hours()
        down = sum(end - start for _, start, end, _ in self.outages())
        return 1.0 - down / exposure if exposure > 0 else 1.0

    def outages(self) -> list[tuple[str, float, float, str]]:
        """Disjoint down intervals per host, in window hours, clipped to service."""
        service = self.service()
        lo = self.hours(service["start"])
        hi = self.hours(service["end"])
        out = []
        for host, group in self.incidents.sort_values("start").groupby("host", sort=False):
            if host not in service.index:
                continue
            a, b = float(lo[host]), float(hi[host])
            up_from = a
            for s, e, cause in zip(self.hours(group["start"]), self.hours(group["end"]),
                                   group["cause"], strict=True):  # fmt: skip
                s, e = max(float(s), up_from), min(float(e), b)
                if e > s:
                    out.append((str(host), s, e, str(cause)))
                    up_from = e
        return out


def _map_cause(raw: str, mapping: Mapping[str, str]) -> str:
    if raw in mapping:
        return mapping[raw]
    column = raw.split("/", 1)[0]
    return mapping.get(column, raw.lower().replace(" ", "_"))


def _window(incidents: pd.DataFrame, hosts: pd.DataFrame,
            start: str | None, end: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:  # fmt: skip
    lo = pd.Timestamp(start) if start else min(incidents["start"].min(), hosts["start"].min())
    hi = pd.Timestamp(end) if end else incidents["end"].max()
    if pd.isna(lo) or pd.isna(hi) or not hi > lo:
        raise LogError(f"cannot make an observation window from {lo} to {hi}")
    return lo, hi


def read_csv_log(
    path: str | Path,
    *,
    inventory: str | Path | None = None,
    causes: Mapping[str, str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> IncidentLog:
    """Read a log in the twin's CSV schema (see the module docstring).

    ``inventory`` lists the fleet's hosts (column ``host``, optional ``production_start``);
    without it the fleet is the hosts the log names, in service from the window start.
    ``causes`` maps the log's words to twin causes (unmapped words are kept, lower-case).
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise LogError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise LogError(f"{path}: cannot read CSV: {str(err).splitlines()[0]}") from None
    missing = [c for c in CSV_COLUMNS if c not in raw.columns]
    if missing:
        raise LogError(f"{path}: missing column(s) {', '.join(missing)} "
                       f"(expected {', '.join(CSV_COLUMNS)})")  # fmt: skip
    frame = raw.copy()
    for column in ("start", "end"):
        parsed = pd.to_datetime(frame[column], format="ISO8601", errors="coerce")
        bad = parsed.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise LogError(f"{path}: row {row + 2}: {column} {frame[column].iloc[row]!r} "
                           "is not an ISO 8601 time")  # fmt: skip
        frame[column] = parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed
    backwards = frame["end"] < frame["start"]
    if backwards.any():
        row = int(np.flatnonzero(backwards)[0])
        raise LogError(f"{path}: row {row + 2}: end is before start")
    mapping = dict(causes or {})
    frame["source_cause"] = frame["cause"]
    frame["cause"] = [_map_cause(c, mapping) for c in frame["cause"]]
    if "guests_affected" in frame:
        frame["guests_affected"] = pd.to_numeric(frame["guests_affected"], errors="coerce")
    hosts = _csv_hosts(frame, inventory)
    unknown = sorted(set(frame["host"]) - set(hosts.index))
    if unknown:
        raise LogError(f"{path}: host {unknown[0]!r} is not in the inventory {inventory}")
    lo, hi = _window(frame, hosts.fillna({"start": frame["start"].min()}), start, end)
    hosts = hosts.fillna({"start": lo})
    log = IncidentLog(frame, hosts, lo, hi, source=str(path))
    return log.between(lo, hi)


def _csv_hosts(frame: pd.DataFrame, inventory: str | Path | None) -> pd.DataFrame:
    if inventory is None:
        names = sorted(set(frame["host"]))
        return pd.DataFrame({"start": pd.NaT, "end": pd.NaT}, index=pd.Index(names, name="host"))
    try:
        inv = pd.read_csv(inventory, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise LogError(f"{inventory}: file not found") from None
    if "host" not in inv.columns:
        raise LogError(f"{inventory}: missing column host")
    start = pd.Series(pd.NaT, index=inv.index, dtype="datetime64[ns]")
    if "production_start" in inv.columns:
        given = inv["production_start"] != ""
        start[given] = pd.to_datetime(inv.loc[given, "production_start"], format="ISO8601")
    return pd.DataFrame({"start": start.values, "end": pd.NaT},
                        index=pd.Index(inv["host"], name="host"))  # fmt: skip


# -- LANL --------------------------------------------------------------------------------


def _lanl_month(text: str, fallback: pd.Timestamp) -> pd.Timestamp:
    """LANL's month stamps, as released: ``Jan-97`` (month-year) or ``2-Oct`` (the year's
    last digit first, a spreadsheet's rewrite of ``Oct-02``); ``before tracking`` and blanks
    are ``fallback``."""
    if not isinstance(text, str) or not text.strip():
        return fallback
    text = text.strip()
    if re.fullmatch(r"[A-Za-z]{3}-\d{2}", text):
        return pd.Timestamp(datetime.strptime(text, "%b-%y"))
    match = re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})", text)
    if match:
        return pd.Timestamp(datetime.strptime(f"{match[2]}-{int(match[1]):02d}", "%b-%y"))
    return fallback


def _month_end(text: str) -> pd.Timestamp:
    """A decommissioning month: the node served through the end of it."""
    month = _lanl_month(text, pd.NaT)
    return month + pd.offsets.MonthBegin(1) if not pd.isna(month) else month


def lanl_systems(path: str | Path) -> pd.Series:
    """Records per system in a LANL file."""
    return _read_lanl(path)["System"].value_counts().sort_index()


def _read_lanl(path: str | Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"Prob Started": str, "Prob Fixed": str})
    except FileNotFoundError:
        raise LogError(f"{path}: file not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as err:
        raise LogError(f"{path}: cannot read the LANL file: {str(err).splitlines()[0]}") from None


def read_lanl_log(
    path: str | Path,
    system: int,
    *,
    causes: Mapping[str, str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> IncidentLog:
    """Read one system of the LANL failure records (LA-UR-05-7318) as an incident log.

    Hosts are the system's nodes (``nodes`` column; nodes without records count too),
    named ``n<nodenum>``; each is in service from its ``node prod`` month (nodes never
    seen, and ``before tracking``, from the system's first record) to ``node decom``
    (``current`` = still in service). ``causes`` overrides entries of `LANL_CAUSES`.
    """
    raw = _read_lanl(path)
    missing = [c for c in ("System", "Prob Started", "Prob Fixed", "nodenum") if c not in raw]
    if missing:
        raise LogError(f"{path}: not a LANL failure file (no column {missing[0]!r})")
    known = sorted(int(s) for s in raw["System"].unique())
    records = raw[raw["System"] == system]
    if records.empty:
        raise LogError(f"--system {system}: no such system in {path} (systems: "
                       f"{', '.join(map(str, known))})")  # fmt: skip
    starts = pd.to_datetime(records["Prob Started"], format="%m/%d/%Y %H:%M")
    ends = pd.to_datetime(records["Prob Fixed"], format="%m/%d/%Y %H:%M")
    first = starts.min().normalize()
    mapping = {**LANL_CAUSES, **(causes or {})}
    source = [_lanl_blame(row) for row in records[list(LANL_BLAME)].itertuples(index=False)]
    nodenum = records["nodenum"].fillna(records["nodenumz"]).fillna(0).astype(int)
    incidents = pd.DataFrame({
        "start": starts.values, "end": np.maximum(ends.values, starts.values),
        "host": [f"n{n}" for n in nodenum],
        "cause": [_map_cause(s, mapping) for s in source], "source_cause": source,
    })  # fmt: skip
    hosts = _lanl_hosts(records, nodenum, first)
    last = hosts["end"].fillna(LANL_END).max()  # the data end with 2005, or when all left
    lo, hi = _window(incidents, hosts, start, end or str(max(last, incidents["end"].max())))
    log = IncidentLog(incidents, hosts, lo, hi, source=f"LANL system {system} ({Path(path).name})")
    return log.between(lo, hi)


def _lanl_blame(row: tuple) -> str:
    for column, value in zip(LANL_BLAME, row, strict=True):
        if isinstance(value, str) and value.strip():
            return column if value.strip() == column else f"{column}/{value.strip()}"
    return "(none)"


def _lanl_hosts(records: pd.DataFrame, nodenum: pd.Series, first: pd.Timestamp) -> pd.DataFrame:
    """A system's hosts: exactly its ``nodes`` count, the nodes its records name (whatever
    their numbering: some systems count from 1 or from an offset) and the rest unnamed
    (``unnamed-<i>``), in service from the system's typical production month."""
    nodes = records["nodes"].dropna()
    count = int(nodes.iloc[0]) if not nodes.empty else 0
    seen = sorted(set(nodenum))
    names = [f"n{n}" for n in seen] + [f"unnamed-{i}" for i in range(max(count - len(seen), 0))]
    per_node = records.assign(n=nodenum.values).groupby("n").first()
    typical_prod = records["node prod"].mode()
    default_start = _lanl_month(typical_prod.iloc[0], first) if not typical_prod.empty else first
    default_end = pd.NaT
    decoms = records["node decom"].dropna()
    if not decoms.empty and decoms.mode().iloc[0] != "current":
        default_end = _month_end(decoms.mode().iloc[0])
    starts = [_lanl_month(per_node.at[n, "node prod"], first) for n in seen]
    ends = [pd.NaT if (d := per_node.at[n, "node decom"]) == "current" else _month_end(d)
            for n in seen]  # fmt: skip
    starts += [default_start] * (len(names) - len(seen))
    ends += [default_end] * (len(names) - len(seen))
    return pd.DataFrame({"start": starts, "end": ends}, index=pd.Index(names, name="host"))


def read_log(
    path: str | Path,
    fmt: str = "csv",
    *,
    system: int | None = None,
    inventory: str | Path | None = None,
    causes: Mapping[str, str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> IncidentLog:
    """Read an incident log in format ``csv``, ``lanl`` (which needs ``system``), ``fta`` (a
    Failure Trace Archive trace) or ``opendc`` (an OpenDC failure trace replayed on the
    ``inventory``'s hosts, see `twin.calibration.traces`)."""
    if fmt in ("fta", "opendc"):
        from twin.calibration.traces import read_fta_trace, read_opendc_trace

        if fmt == "fta":
            return read_fta_trace(path, causes=causes, start=start, end=end)
        cause = (causes or {}).get("undetermined")  # an OpenDC trace names no cause
        return read_opendc_trace(path, inventory=inventory, cause=cause, start=start, end=end)
    if fmt == "lanl":
        if system is None:
            raise LogError("--format lanl needs --system N (one LANL system at a time)")
        return read_lanl_log(path, system, causes=causes, start=start, end=end)
    if fmt == "csv":
        return read_csv_log(path, inventory=inventory, causes=causes, start=start, end=end)
    raise LogError(f"--format: unknown format {fmt!r} (expected csv, lanl, fta or opendc)")


def parse_cause_map(items: list[str] | None) -> dict[str, str]:
    """``FROM=TO`` pairs (``--map "Software/DST=software"``) as a mapping."""
    out = {}
    for item in items or []:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise LogError(f"--map: expected FROM=TO, got {item!r}")
        out[source.strip()] = target.strip()
    return out


def up_intervals(log: IncidentLog) -> tuple[np.ndarray, np.ndarray]:
    """Every stretch of in-service up time in the window, in hours, and how it ended: the
    cause of the fault that ended it, or ``""`` when the window (or service) ended first.

    A host's clock starts at its production start (or the window start) and again whenever
    it is back from an incident; an incident that begins while the host is already down
    adds no stretch (the twin's fault clocks do not run while a host is down).
    """
    service = log.service()
    lo, hi = log.hours(service["start"]), log.hours(service["end"])
    lengths: list[float] = []
    ends: list[str] = []
    by_host = dict(tuple(log.incidents.sort_values("start").groupby("host", sort=False)))
    left_censored = log.hosts.get("left_censored", pd.Series(False, index=log.hosts.index))
    for host in service.index:
        a, b = float(lo[host]), float(hi[host])
        up_from = a
        group = by_host.get(host)
        if group is not None:
            for s, e, cause in zip(log.hours(group["start"]), log.hours(group["end"]),
                                   group["cause"], strict=True):  # fmt: skip
                s = float(s)
                if s < up_from or s >= b:
                    up_from = max(up_from, min(float(e), b))
                    continue
                lengths.append(s - up_from)
                ends.append("" if up_from == a and left_censored[host] else str(cause))
                up_from = max(up_from, min(float(e), b))
        if b > up_from:
            lengths.append(b - up_from)
            ends.append("")
    return np.asarray(lengths, dtype=float), np.asarray(ends, dtype=object)


def repair_times(log: IncidentLog, cause: str) -> tuple[np.ndarray, np.ndarray]:
    """Down times (hours) of ``cause``'s incidents and whether each was seen to end inside
    the window (False: still open at the window end, or cut by a trace's window:
    right-censored there)."""
    inc = log.incidents[log.incidents["cause"] == cause]
    end = inc["end"].clip(upper=log.window_end)
    hours = ((end - inc["start"]) / pd.Timedelta(hours=1)).to_numpy(float)
    seen = inc["end"] <= log.window_end
    if "censored" in inc:
        seen &= ~inc["censored"].astype(bool)
    return hours, seen.to_numpy(bool)


def log_hosts(log: IncidentLog, hosts_per_rack: int) -> list[dict[str, object]]:
    """The log's hosts as inventory rows (see `twin.inventory`). Racks come from the log's
    ``rack`` column when it has one, else consecutive hosts fill racks of ``hosts_per_rack``;
    the architecture comes from the log's ``architecture`` column, else is left blank (for
    ``hosts.architecture_mix`` to decide)."""
    given: dict[str, dict[str, str]] = {}
    for column in ("rack", "architecture"):
        if column in log.incidents:
            pairs = log.incidents[["host", column]].drop_duplicates("host")
            given[column] = {h: v for h, v in zip(pairs["host"], pairs[column], strict=True) if v}
    rows: list[dict[str, object]] = []
    for i, name in enumerate(log.hosts.index):
        rack = given.get("rack", {}).get(name, f"r{i // hosts_per_rack}")
        row: dict[str, object] = {"name": str(name), "rack": rack, "pod": "p0", "site": "s0"}
        arch = given.get("architecture", {}).get(name)
        if arch:
            row["architecture"] = arch
        rows.append(row)
    return rows


def host_ages(log: IncidentLog, at: pd.Timestamp) -> dict[str, float]:
    """Hours each host has been up at ``at``: since the end of its last incident before
    ``at``, or since its production start (0 for a host down at ``at``)."""
    before = log.incidents[log.incidents["start"] < at]
    last_end = before.groupby("host")["end"].max()
    ages = {}
    for host, start in log.hosts["start"].items():
        up_since = max(start, last_end.get(host, start))
        ages[str(host)] = max((at - up_since) / pd.Timedelta(hours=1), 0.0)
    return ages
