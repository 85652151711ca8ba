"""Trace replay: drive a fleet's host outages from an incident log instead of sampling them.

In replay the hosts' own fault clocks are off (every fault process ``never``, no drivers,
no update campaigns, no operator errors). Each outage in the log becomes two timed events
on the fleet's event list: at its start the host goes down with the log's cause, at its
end the host is back at once (a zero-length reboot that bypasses detection and operators).
The twin's host availability then equals the availability computed from the log itself.

Hosts in service for only part of the window (a later production start, an earlier
decommissioning) are down with cause ``out_of_service`` outside it; the twin counts that
time as down, the log does not count it at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.agents.host import HostState
from twin.calibration.logs import IncidentLog, log_hosts
from twin.config import ARCHITECTURES, FleetConfig, deep_merge, validate_config
from twin.fleet import Fleet
from twin.inventory import inventory_graph
from twin.topology import Topology

OUT_OF_SERVICE = "out_of_service"


def quiet_config(config: FleetConfig, horizon: float | None = None) -> FleetConfig:
    """``config`` with every sampled fault process switched off (and ``horizon``, if given):
    the fleet only changes when something outside drives it."""
    off: dict[str, Any] = {
        "architectures": {
            a: {
                "hypervisor_fault": "never",
                "parent_os_fault": "never",
                "guest_process_fault": "never",
                "aging": "never",
            }
            for a in ARCHITECTURES
        },
        "drivers": [],
        "updates": [],
        "hardware": {"fault": "never"},
        "network": {"tor_fault": "never", "spine_fault": "never", "power_fault": "never"},
        "operators": {"error_prob": 0.0},
    }
    if horizon is not None:
        off["horizon"] = horizon
    return validate_config(deep_merge(config.model_dump(), off))


def log_topology(log: IncidentLog, config: FleetConfig) -> Topology:
    """A fleet graph of the log's hosts (see `log_hosts`) in the config's fabric."""
    hosts = log_hosts(log, config.topology.hosts_per_rack)
    return Topology(inventory_graph(hosts, config.topology))


class _Outage:
    """One host down from its start for ``hours`` hours (Mesa holds callbacks weakly, so the
    replay keeps these alive). ``active`` counts the outages under way per host: a host is
    back only when the last of back-to-back outages ends, whichever runs first at a tie."""

    def __init__(
        self, fleet: Fleet, host: str, cause: str, hours: float, active: dict[str, int]
    ) -> None:
        self.fleet, self.host, self.cause = fleet, fleet.hosts_by_name[host], cause
        self.hours, self.active = hours, active

    def begin(self) -> None:
        fleet, name = self.fleet, self.host.name
        self.active[name] = self.active.get(name, 0) + 1
        self.host.go_down(HostState.CRASHED, self.cause, fleet.accounts.open_incident(self.cause))
        fleet.engine.schedule(self.end, after=self.hours)

    def end(self) -> None:
        self.active[self.host.name] -= 1
        if self.active[self.host.name] == 0:
            self.host.begin_reboot(0.0)


class Replay:
    """The outages of ``log`` scheduled on ``fleet`` (whose clock starts at the log's window
    start). Every host of the log must be in the fleet."""

    def __init__(self, fleet: Fleet, log: IncidentLog) -> None:
        missing = [h for h in log.hosts.index if h not in fleet.hosts_by_name]
        if missing:
            raise ValueError(f"host {missing[0]!r} of the log is not in the fleet "
                             f"({len(missing)} missing)")  # fmt: skip
        self.outages: list[_Outage] = []
        self.active: dict[str, int] = {}
        horizon = log.window_hours
        service = log.service()
        for host in log.hosts.index:
            if host not in service.index:
                self._schedule(fleet, str(host), OUT_OF_SERVICE, 0.0, horizon)
                continue
            a, b = (
                float(log.hours(service.at[host, "start"])),
                float(log.hours(service.at[host, "end"])),
            )
            if a > 0:
                self._schedule(fleet, str(host), OUT_OF_SERVICE, 0.0, a)
            if b < horizon:
                self._schedule(fleet, str(host), OUT_OF_SERVICE, b, horizon - b)
        for host, start, end, cause in log.outages():
            self._schedule(fleet, host, cause, start, end - start)

    def _schedule(self, fleet: Fleet, host: str, cause: str, start: float, hours: float) -> None:
        outage = _Outage(fleet, host, cause, hours, self.active)
        self.outages.append(outage)
        fleet.engine.schedule(outage.begin, after=start)


def replay_fleet(config: FleetConfig, log: IncidentLog, seed: Any = None) -> tuple[Fleet, Replay]:
    """A quiet fleet over the log's window with the log's outages scheduled. The fleet is the
    config's inventory when it has one, else the log's own hosts."""
    quiet = quiet_config(config, horizon=log.window_hours)
    topology = None if config.hosts.inventory else log_topology(log, quiet)
    fleet = Fleet(quiet, seed, record_events=False, topology=topology)
    return fleet, Replay(fleet, log)


def opendc_replay_fleet(
    config: FleetConfig, trace: str | Path, seed: Any = None
) -> tuple[Fleet, Replay, IncidentLog]:
    """A quiet fleet of the config's own hosts over its horizon with an OpenDC failure trace
    replayed on them (see `twin.calibration.traces.opendc_log`; ``seed`` also picks the
    hosts each failure hits), and the log the trace became."""
    from twin.calibration.traces import TRACE_EPOCH, opendc_log, read_opendc_failures

    quiet = quiet_config(config)
    fleet = Fleet(quiet, seed, record_events=False)
    end = TRACE_EPOCH + pd.Timedelta(hours=quiet.horizon)
    pick = int(np.random.SeedSequence(seed).generate_state(1)[0]) if seed is not None else 0
    log = opendc_log(read_opendc_failures(trace), [h.name for h in fleet.hosts], seed=pick,
                     source=f"OpenDC trace {Path(trace).name}", end=str(end))  # fmt: skip
    return fleet, Replay(fleet, log), log


def replay(config: FleetConfig, log: IncidentLog, seed: Any = None) -> dict[str, float]:
    """Run the log's window on the fleet with faults taken from the log; the fleet metrics."""
    fleet, _replay = replay_fleet(config, log, seed)
    return fleet.run()
