"""The field's failure-trace formats: the Failure Trace Archive and OpenDC's failure traces.

* A Failure Trace Archive (FTA) trace (Javadi, Kondo, Iosup, Epema, JPDC 2013) is a folder,
  or an archive of one, with ``event_trace.tab``: tab-separated, a ``#`` header, one row
  per interval of a node (``event_type`` 1: available, 0: unavailable; times in epoch
  seconds), and ``node.tab``, the node list. Every unavailable interval is one incident.
  A node is observed from its first interval's start to its last one's end; the first and
  last intervals are cut by the trace's window, so they are censored: a first up interval
  is a lower bound, not a time between failures, and a first or last down interval is a
  lower bound on its repair. A zero-length interval was shorter than the trace's one-second
  tick.
* An OpenDC failure trace is a Parquet file, one row per failure: ``failure_interval`` (ms
  since the previous failure began, or since the trace's start for the first),
  ``failure_duration`` (ms) and ``failure_intensity`` (the share of hosts it hits, chosen
  at random). Replayed on a fleet it becomes an incident log; any incident log (a run's
  too) can be written as one.
"""

from __future__ import annotations

import tarfile
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from twin.calibration.logs import IncidentLog, LogError

FTA_EVENT_COLUMNS = (
    "event_id", "component_id", "node_id", "platform_id", "node_name", "event_type",
    "event_start_time", "event_stop_time", "event_end_reason",
)  # fmt: skip
FTA_UNAVAILABLE = 0
FTA_RESOLUTION_HOURS = 1 / 3600
"""FTA times are whole epoch seconds."""
UNDETERMINED = "undetermined"
OPENDC_COLUMNS = ("failure_interval", "failure_duration", "failure_intensity")
MS_PER_HOUR = 3_600_000
TRACE_EPOCH = pd.Timestamp("1970-01-01")
"""An OpenDC trace counts from the simulation's start: hour 0 of its log is this date."""


def _read_tab(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """An FTA table: tab-separated, its header the first line (after a ``#``)."""
    try:
        with path.open() as handle:
            header = handle.readline().lstrip("#").strip().split("\t")
        frame = pd.read_csv(path, sep="\t", skiprows=1, header=None, comment="#",
                            names=[h.strip() for h in header], dtype=str)  # fmt: skip
    except FileNotFoundError:
        raise LogError(f"{path}: file not found (an FTA trace has event_trace.tab)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise LogError(f"{path}: cannot read the FTA table: {str(err).splitlines()[0]}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise LogError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def _trace_folder(path: Path, scratch: Path) -> Path:
    """The folder holding ``event_trace.tab``: ``path`` itself or an archive unpacked."""
    if path.is_file():
        try:
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    archive.extractall(scratch)
            else:
                with tarfile.open(path) as archive:
                    archive.extractall(scratch, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as err:
            raise LogError(f"{path}: not an FTA trace folder or archive ({err})") from None
        path = scratch
    elif not path.is_dir():
        raise LogError(f"{path}: file not found")
    found = sorted(path.rglob("event_trace.tab"))
    if not found:
        raise LogError(f"{path}: no event_trace.tab in it (not an FTA trace)")
    return found[0].parent


def read_fta_trace(
    path: str | Path,
    *,
    causes: Mapping[str, str] | None = None,
    start: str | None = None,
    end: str | None = None,
) -> IncidentLog:
    """Read a Failure Trace Archive trace (a folder or an archive of one) as an incident log.

    Hosts are ``node.tab``'s nodes (named by ``node_name``, else ``node_id``), each in
    service over its intervals. Incidents are its unavailable intervals, of cause
    ``undetermined``; ``causes`` maps an ``event_end_reason`` to a cause, and its entry
    for ``undetermined`` renames the default (``--map undetermined=hardware``).
    """
    path = Path(path)
    with tempfile.TemporaryDirectory() as scratch:
        folder = _trace_folder(path, Path(scratch))
        events = _read_tab(folder / "event_trace.tab", FTA_EVENT_COLUMNS)
        nodes = _read_tab(folder / "node.tab", ("node_id",)) if (folder / "node.tab").is_file() \
            else None  # fmt: skip
    where = folder.name if folder.name else str(path)
    times = {}
    for column in ("event_start_time", "event_stop_time", "event_type"):
        values = pd.to_numeric(events[column], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna())[0])
            raise LogError(f"{path}: event_trace.tab row {row + 2}: {column} "
                           f"{events[column].iloc[row]!r} is not a number")  # fmt: skip
        times[column] = values
    backwards = times["event_stop_time"] < times["event_start_time"]
    if backwards.any():
        row = int(np.flatnonzero(backwards)[0])
        raise LogError(f"{path}: event_trace.tab row {row + 2}: event stops before it starts")
    names = _fta_names(events, nodes)
    frame = pd.DataFrame({
        "host": [names.get(n, f"node-{n}") for n in events["node_id"]],
        "start": pd.to_datetime(times["event_start_time"], unit="s"),
        "end": pd.to_datetime(times["event_stop_time"], unit="s"),
        "down": (times["event_type"] == FTA_UNAVAILABLE).to_numpy(),
        "reason": events["event_end_reason"].fillna("").str.strip(),
    }).sort_values(["host", "start", "end"], kind="stable")  # fmt: skip
    by_host = frame.groupby("host", sort=False)
    first, last = by_host.cumcount() == 0, by_host.cumcount(ascending=False) == 0
    mapping = dict(causes or {})
    default = mapping.get(UNDETERMINED, UNDETERMINED)
    down = frame[frame["down"]]
    incidents = pd.DataFrame({
        "start": down["start"], "end": down["end"], "host": down["host"],
        "cause": [mapping.get(r, default) if r else default for r in down["reason"]],
        "source_cause": down["reason"].where(down["reason"] != "", UNDETERMINED),
        "censored": (first | last)[frame["down"]],
    }).reset_index(drop=True)  # fmt: skip
    span = by_host.agg(start=("start", "min"), end=("end", "max"))
    first_up = frame[first].set_index("host")["down"].eq(False)
    lo = pd.Timestamp(start) if start else frame["start"].min()
    hi = pd.Timestamp(end) if end else frame["end"].max()
    if pd.isna(lo) or pd.isna(hi) or not hi > lo:
        raise LogError(f"{path}: cannot make an observation window from {lo} to {hi}")
    all_hosts = sorted(set(names.values()) | set(span.index))
    hosts = pd.DataFrame({
        "start": span["start"].reindex(all_hosts).fillna(lo),
        "end": span["end"].reindex(all_hosts).fillna(hi),
        "left_censored": first_up.reindex(all_hosts, fill_value=False).astype(bool),
    }, index=pd.Index(all_hosts, name="host"))  # fmt: skip
    log = IncidentLog(incidents, hosts, lo, hi, source=f"FTA trace {where}",
                      resolution_hours=FTA_RESOLUTION_HOURS)  # fmt: skip
    return log.between(lo, hi)


def _fta_names(events: pd.DataFrame, nodes: pd.DataFrame | None) -> dict[str, str]:
    """Host name per ``node_id``: the node's ``node_name`` when given, else ``node-<id>``."""
    table = nodes if nodes is not None else events
    names = table["node_name"] if "node_name" in table else pd.Series("", index=table.index)
    out = {}
    for node, name in zip(table["node_id"], names.fillna(""), strict=True):
        out[str(node)] = str(name).strip() or f"node-{node}"
    return out


# -- OpenDC ----------------------------------------------------------------------------------


def read_opendc_failures(path: str | Path) -> pd.DataFrame:
    """An OpenDC failure trace's rows, checked: intervals and durations >= 0 ms, intensities
    in [0, 1]."""
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise LogError(f"{path}: file not found") from None
    except (OSError, ValueError) as err:
        raise LogError(f"{path}: not a Parquet file: {str(err).splitlines()[0]}") from None
    missing = [c for c in OPENDC_COLUMNS if c not in frame.columns]
    if missing:
        raise LogError(f"{path}: missing column(s) {', '.join(missing)} (an OpenDC failure "
                       f"trace has {', '.join(OPENDC_COLUMNS)})")  # fmt: skip
    for column, high in (("failure_interval", np.inf), ("failure_duration", np.inf),
                         ("failure_intensity", 1.0)):  # fmt: skip
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values < 0) | (values > high)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise LogError(f"{path}: row {row}: {column} {frame[column].iloc[row]!r} is out of "
                           f"range (expected {'0 to 1' if high == 1 else '>= 0 ms'})")  # fmt: skip
    return frame[list(OPENDC_COLUMNS)].astype(float)


def opendc_log(
    failures: pd.DataFrame,
    hosts: Sequence[str],
    *,
    seed: int = 0,
    cause: str | None = None,
    source: str = "OpenDC failure trace",
    start: str | None = None,
    end: str | None = None,
) -> IncidentLog:
    """An OpenDC trace replayed on ``hosts`` from ``start`` (default `TRACE_EPOCH`): each
    failure hits ``round(intensity x hosts)`` of them (at least one when the intensity is
    above 0), drawn without replacement from a generator seeded with ``seed``, all down for
    its duration with ``cause``. The window ends at ``end`` or when the last failure does
    (OpenDC loops a trace; this reads it once)."""
    if not hosts:
        raise LogError(f"{source}: no hosts to replay the trace on")
    rng = np.random.default_rng(seed)
    lo = pd.Timestamp(start) if start else TRACE_EPOCH
    begins = lo + pd.to_timedelta(failures["failure_interval"].cumsum(), unit="ms")
    rows = []
    for at, duration, share in zip(begins, failures["failure_duration"],
                                   failures["failure_intensity"], strict=True):  # fmt: skip
        hit = max(round(share * len(hosts)), 1 if share > 0 else 0)
        for index in rng.choice(len(hosts), size=hit, replace=False):
            rows.append((at, at + pd.Timedelta(milliseconds=duration), hosts[index]))
    incidents = pd.DataFrame(rows, columns=["start", "end", "host"])
    incidents["cause"] = incidents["source_cause"] = cause or UNDETERMINED
    last = incidents["end"].max() if rows else lo + pd.Timedelta(hours=1)
    hi = pd.Timestamp(end) if end else max(last, lo + pd.Timedelta(milliseconds=1))
    frame = pd.DataFrame({"start": lo, "end": pd.NaT}, index=pd.Index(list(hosts), name="host"))
    log = IncidentLog(incidents, frame, lo, hi, source=source, resolution_hours=1 / MS_PER_HOUR)
    return log.between(lo, hi)


def read_opendc_trace(
    path: str | Path,
    *,
    inventory: str | Path | None = None,
    cause: str | None = None,
    seed: int = 0,
    start: str | None = None,
    end: str | None = None,
) -> IncidentLog:
    """Read an OpenDC failure trace as the incident log of the ``inventory``'s hosts (a CSV
    with a ``host`` column), see `opendc_log`."""
    if inventory is None:
        raise LogError("--format opendc needs --inventory hosts.csv (the hosts the trace hits)")
    try:
        hosts = pd.read_csv(inventory, dtype=str)["host"].tolist()
    except FileNotFoundError:
        raise LogError(f"{inventory}: file not found") from None
    except KeyError:
        raise LogError(f"{inventory}: missing column host") from None
    return opendc_log(read_opendc_failures(path), hosts, seed=seed, cause=cause,
                      source=f"OpenDC trace {Path(path).name}", start=start, end=end)  # fmt: skip


def opendc_failures(log: IncidentLog) -> pd.DataFrame:
    """A log's outages as OpenDC failures: outages that begin at the same moment are one
    failure, its intensity the share of the log's hosts they hit and its duration their
    mean (so the host-hours down are kept)."""
    outages = pd.DataFrame(log.outages(), columns=["host", "start", "end", "cause"])
    hosts = max(len(log.hosts), 1)
    grouped = outages.assign(hours=outages["end"] - outages["start"]).groupby("start")
    failures = grouped.agg(hit=("host", "size"), hours=("hours", "mean")).reset_index()
    begins = failures["start"].to_numpy(float)
    intervals = np.diff(begins, prepend=0.0)
    return pd.DataFrame({
        "failure_interval": np.round(intervals * MS_PER_HOUR).astype("int64"),
        "failure_duration": np.round(failures["hours"].to_numpy(float) * MS_PER_HOUR)
        .astype("int64"),
        "failure_intensity": failures["hit"].to_numpy(float) / hosts,
    })  # fmt: skip


def write_opendc_trace(log: IncidentLog, path: str | Path) -> Path:
    """Write a log's outages as an OpenDC failure trace (Parquet), see `opendc_failures`."""
    path = Path(path)
    opendc_failures(log).to_parquet(path, index=False)
    return path


def events_log(events: pd.DataFrame, hosts: Sequence[str], horizon_hours: float,
               source: str = "twin run") -> IncidentLog:  # fmt: skip
    """A run's incidents as an incident log: from its state-change events (``time``,
    ``entity``, ``from_state``, ``to_state``, ``cause``), every stretch in which a host is
    neither running nor degraded (what host availability counts as down), with the cause
    of the change that began it. Hour 0 is `TRACE_EPOCH`."""
    from twin.agents.host import RUNNING_STATES

    running = {str(s) for s in RUNNING_STATES}
    names = set(hosts)
    rows = []
    mine = events[events["entity"].isin(names)].sort_values("time", kind="stable")
    for host, group in mine.groupby("entity", sort=False):
        began: tuple[float, str] | None = None
        for time, to_state, cause in zip(group["time"], group["to_state"], group["cause"],
                                         strict=True):  # fmt: skip
            if began is None and str(to_state) not in running:
                began = (float(time), str(cause))
            elif began is not None and str(to_state) in running:
                rows.append((began[0], float(time), host, began[1]))
                began = None
        if began is not None:
            rows.append((began[0], horizon_hours, host, began[1]))
    incidents = pd.DataFrame(rows, columns=["start", "end", "host", "cause"])
    for column in ("start", "end"):
        incidents[column] = TRACE_EPOCH + pd.to_timedelta(incidents[column], unit="h")
    incidents["source_cause"] = incidents["cause"]
    frame = pd.DataFrame({"start": TRACE_EPOCH, "end": pd.NaT},
                         index=pd.Index(list(hosts), name="host"))  # fmt: skip
    end = TRACE_EPOCH + pd.Timedelta(hours=horizon_hours)
    return IncidentLog(incidents, frame, TRACE_EPOCH, end, source=source)
