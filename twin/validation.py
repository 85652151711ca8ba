"""The analytic validation suite behind ``twin validate``: the twin against closed forms.

Each `Case` is a small fleet built so that one closed form of `twin.analytic` holds
*exactly*: exponential fault clocks, every other process switched off (``never``), hosts
filled to capacity and HA off so guests share their host's fate, and enough operators that
nobody queues (except in the queueing cases, where the queue is the point). A case lists
`Check` s: a metric of the twin (or one read from its event log), the value the closed form
predicts, and how many unit-hours of simulation the check needs for its confidence interval
to be tight (`twin.analytic.required_unit_hours`, see ``docs/validation.md``).

A check passes when the closed-form value lies inside the simulated 95 % confidence interval,
taken *simultaneously* over all checks of the suite (Bonferroni: each interval at level
``1 - 0.05 / m``), so a correct twin fails the whole suite with probability at most 5 %
instead of failing some check most of the time; and when the ordinary 95 % half-width is at
most 5 % of the quantity estimated (the *un*availability, for an availability), so a
too-short run cannot pass by having a wide interval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from twin import analytic, rare_events
from twin.architectures import ARCHITECTURES, KVM, MICROKERNEL, MONOLITHIC
from twin.config import FleetConfig, deep_merge, validate_config
from twin.experiments.runner import run_replication
from twin.periods import DEFAULT_START, boundaries
from twin.topology import build_topology

FAMILY_LEVEL = 0.95
"""Probability that a correct twin passes every check of the suite at once."""
MAX_REL_HALF_WIDTH = 0.05
"""Largest 95 % half-width allowed, relative to the quantity a check estimates."""
TRANSIENT = 200.0
"""Shortest horizon, in relaxation times. Every unit starts up while the closed forms are
steady-state: the start-up transient shifts a time average by about (relaxation time) /
horizon of the quantity estimated, at most 0.5 % here, and the pass test allows for it."""
UP_STATES = frozenset({"running", "degraded"})
"""Host states counted as up (SPEC 4 ``host_availability``)."""

LOG_WEIGHT = "log_likelihood_ratio"
"""Where `simulate` keeps each replication's log likelihood ratio (`twin.rare_events`)."""

Measure = Callable[[FleetConfig, pd.DataFrame], dict[str, float]]
"""Extra per-replication metrics read from a replication's event log."""


@dataclass(frozen=True)
class Check:
    """One metric of a case and the value a closed form gives for it.

    ``ceiling`` is set for a metric whose shortfall is what is estimated (1 for an
    availability, the full capacity for ``effective_capacity``): precision and relative
    error are then taken on ``ceiling - value``. ``unit_hours`` is the simulation a check
    needs, in unit-hours, for a 95 % half-width equal to the estimated quantity itself
    (``twin.analytic.required_unit_hours`` with ``rel_half_width = quantile = 1``); 0 for a
    check whose simulated value is exact.
    """

    metric: str
    analytic: float
    formula: str
    ceiling: float | None = None
    unit_hours: float = 0.0
    per_hour: bool = False
    """``analytic`` is a rate per hour of horizon (an incident count): see `over`."""
    startup: float = 0.0
    """What the run's start with every unit up adds, when it is known exactly: to the
    metric's integral over the run (a time average) or to the count (a count)."""
    at_horizon: Callable[[float], float] | None = None
    """The expected value as a function of the horizon, when it depends on more than a
    rate and a start-up term (the calendar periods a run holds)."""

    def over(self, horizon: float) -> Check:
        """The expected value after ``horizon`` hours from the all-up start: a rate becomes
        a count, and the start-up term is added."""
        if self.at_horizon is not None:
            return replace(self, analytic=self.at_horizon(horizon), at_horizon=None)
        if self.per_hour:
            value = self.analytic * horizon + self.startup
        else:
            value = self.analytic + self.startup / horizon
        return replace(self, analytic=value, per_hour=False, startup=0.0)

    @property
    def reference(self) -> float:
        """The quantity estimated: the shortfall below ``ceiling``, or the value itself."""
        return self.analytic if self.ceiling is None else self.ceiling - self.analytic


@dataclass(frozen=True)
class Case:
    """A fleet in which closed forms hold, and the checks they give.

    ``units`` is how many independent units (hosts, racks, host groups, or 1 for a fleet
    whose hosts interact through a queue) share the simulated time, so a replication of
    horizon ``T`` yields ``units * T`` unit-hours. ``relaxation`` is how long the fleet
    takes to forget that it started with everything up (about the longest mean repair):
    horizons are at least ``TRANSIENT`` relaxations.
    """

    name: str
    title: str
    config: Mapping[str, Any]
    checks: tuple[Check, ...]
    units: int
    relaxation: float
    measure: Measure | None = None
    boost: Mapping[str, float] | None = None
    """Component faults sampled at boosted rates, replications weighted by their likelihood
    ratio (`twin.rare_events`): a case about an event too rare for plain sampling."""
    replications: int | None = None
    """Replications the case needs whatever the mode (rare events call for many short ones)."""
    fixed_horizon: float | None = None
    """Hours per replication whatever the mode (with ``replications``)."""

    @property
    def unit_hours(self) -> float:
        """Unit-hours the most demanding check needs (at rel_half_width = quantile = 1)."""
        return max((c.unit_hours for c in self.checks), default=0.0)

    def horizon(self, replications: int, rel_half_width: float) -> float:
        """Hours per replication for a 95 % half-width of ``rel_half_width`` of every check."""
        if self.fixed_horizon is not None:
            return self.fixed_horizon
        quantile = float(stats.t.ppf(0.975, max(replications - 1, 1)))
        needed = self.unit_hours * (quantile / rel_half_width) ** 2
        return max(TRANSIENT * self.relaxation, needed / (self.units * replications))

    def fleet_config(self, horizon: float, seed: int) -> FleetConfig:
        return validate_config(
            deep_merge(
                self.config,
                {"name": self.name, "horizon": horizon, "sample_every": horizon, "seed": seed},
            )
        )


@dataclass(frozen=True)
class Mode:
    """How hard to try: replications, and the 95 % half-width the horizons are sized for."""

    name: str
    replications: int
    rel_half_width: float


QUICK = Mode("quick", replications=30, rel_half_width=0.033)
FULL = Mode("full", replications=30, rel_half_width=0.015)


# -- the fleets ----------------------------------------------------------------------------------

QUIET_FLEET: dict[str, Any] = {
    "name": "validation",
    "horizon": 1000.0,
    "seed": 0,
    "replications": 1,
    "sample_every": 1000.0,
    "topology": {
        "sites": 1, "pods": 1, "racks_per_pod": 1, "hosts_per_rack": 1,
        "spines": 1, "tors_per_rack": 1, "power_feeds_per_rack": 1,
    },
    "hosts": {"cpu": 1, "memory_gb": 1, "architecture_mix": {MONOLITHIC: 1},
              "assign": "by_rack"},
    "architectures": {
        arch: {
            "hypervisor_fault": "never", "parent_os_fault": "never",
            "guest_process_fault": "never", "crash_detection": 0,
            "reboot_time": 0, "driver_restart_time": 0, "escalation_grace": 0,
            "driver_fault_host_crash_prob": 0.0, "driver_fault_escalation_prob": 0.0,
            "crash_auto_reboot": True, "aging": "never",
        }
        for arch in ARCHITECTURES
    },
    "drivers": [],
    "hardware": {"fault": "never", "repair": 0, "hands_on": "repair"},
    "network": {
        "tor_fault": "never", "tor_repair": 0, "spine_fault": "never", "spine_repair": 0,
        "power_fault": "never", "power_repair": 0,
    },
    "guests": {"per_host": 1, "cpu": 1, "memory_gb": 1, "boot_time": 0, "placement": "spread",
               "ha": {"enabled": False}},
    "services": [],
    "operators": {"count": 1, "response_time": 0, "oncall_response_time": 0, "shift": "24x7",
                  "error_prob": 0.0},
    "updates": [],
    "storage": {"fault": "never", "repair": 0},
}  # fmt: skip
"""A fleet in which nothing happens by itself: every fault ``never``, every delay 0."""


def _exponential(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


def _quiet_fleet(
    racks: int, hosts_per_rack: int, guests_per_host: int, **sections: Any
) -> dict[str, Any]:
    """`QUIET_FLEET` with a topology and ``sections`` laid on top. Hosts are exactly as big
    as their guests, so no guest can be restarted or live-migrated elsewhere: guests share
    their host's fate, as the closed forms assume."""
    size = max(guests_per_host, 1)
    base = deep_merge(
        QUIET_FLEET,
        {
            "topology": {"racks_per_pod": racks, "hosts_per_rack": hosts_per_rack},
            "hosts": {"cpu": size, "memory_gb": size},
            "guests": {"per_host": guests_per_host},
        },
    )
    return deep_merge(base, sections)


def _only(architecture: str) -> dict[str, float]:
    """An architecture mix of ``architecture`` alone."""
    return {name: float(name == architecture) for name in ARCHITECTURES}


def _both(**arch: Any) -> dict[str, Any]:
    return {MONOLITHIC: arch, MICROKERNEL: arch}


def _unavailability_hours(rate: float, mttr: float, mttr_cv2: float = 0.0) -> float:
    """`analytic.required_unit_hours` at ``rel_half_width = quantile = 1``."""
    return analytic.required_unit_hours(rate, mttr, mttr_cv2, rel_half_width=1.0, quantile=1.0)


def _count_hours(rate: float, up_fraction: float = 1.0) -> float:
    """Unit-hours for a Poisson count at ``rel_half_width = quantile = 1``: one event."""
    return analytic.required_events(1.0, 1.0) / (rate * up_fraction)


def _incident_check(
    metric: str, rate: float, units: int, up_fraction: float, formula: str
) -> Check:
    """Expected count of a Poisson cause whose clock runs only while its unit is up."""
    return Check(
        metric,
        analytic.expected_incidents(rate, units, 1.0, up_fraction),
        formula,
        unit_hours=_count_hours(rate, up_fraction),
        per_hour=True,
    )


def _mixture_cv2(
    weights: Sequence[float], means: Sequence[float], variances: Sequence[float]
) -> float:
    """Squared coefficient of variation of a mixture of down times."""
    total = math.fsum(weights)
    mean = math.fsum(w * m for w, m in zip(weights, means, strict=True)) / total
    second = (
        math.fsum(w * (v + m * m) for w, m, v in zip(weights, means, variances, strict=True))
        / total
    )
    return second / (mean * mean) - 1.0


# -- the cases ---------------------------------------------------------------------------------


def monolithic_host_case(
    racks: int = 4,
    hosts_per_rack: int = 4,
    guests: int = 4,
    hypervisor_mttf: float = 500.0,
    hardware_mttf: float = 500.0,
    hardware_repair: tuple[float, float] = (4.0, 12.0),
    detection: float = 0.25,
    response: float = 0.5,
    reboot: float = 0.2,
    boot: float = 0.1,
    io_overhead: float = 0.02,
) -> Case:
    """Monolithic hosts with hypervisor crashes (operator reboots) and hardware faults
    (repair uniform between the two bounds); one operator per host, so no ticket waits."""
    hosts = racks * hosts_per_rack
    low, high = hardware_repair
    repair_mean, repair_var = (low + high) / 2, (high - low) ** 2 / 12
    rates = [1 / hypervisor_mttf, 1 / hardware_mttf]
    downs = [detection + response + reboot, response + repair_mean + reboot]
    total = sum(rates)
    availability = analytic.competing_causes_availability(rates, downs)
    mttr = analytic.mixture_mttr(rates, downs)
    guest = analytic.warmup_availability(1 / total, mttr, boot)
    cv2 = _mixture_cv2(rates, downs, [0.0, repair_var])
    down_hours = _unavailability_hours(total, mttr, cv2)
    full = hosts * guests * (1 - io_overhead)
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        architectures={MONOLITHIC: {
            "hypervisor_fault": _exponential(hypervisor_mttf), "crash_detection": detection,
            "reboot_time": reboot, "crash_auto_reboot": False, "io_overhead": io_overhead}},
        hardware={"fault": _exponential(hardware_mttf),
                  "repair": {"dist": "uniform", "low": low, "high": high}},
        guests={"boot_time": boot},
        operators={"count": hosts, "response_time": response},
    )  # fmt: skip
    return Case(
        name=f"{MONOLITHIC}-host",
        title=f"{MONOLITHIC} host: hypervisor crashes + hardware faults, operator-repaired",
        config=config,
        units=hosts,
        relaxation=max(downs),
        checks=(
            Check("host_availability", availability, "1/(1+Σλᵢ·MTTRᵢ)", 1.0, down_hours),
            Check("guest_availability", guest, "MTTF·e^(-boot/MTTF)/(MTTF+MTTR)", 1.0, down_hours),
            Check("effective_capacity", full * guest, "H·g·(1-io)·A_guest", full, down_hours),
            _incident_check("incidents.hypervisor", rates[0], hosts, availability,
                            "λ·H·T·A (exposure = up-time)"),
            _incident_check("incidents.hardware", rates[1], hosts, availability,
                            "λ·H·T·A (exposure = up-time)"),
            Check("ticket_wait_hours", 0.0, "c ≥ N: no ticket waits"),
        ),
    )  # fmt: skip


def microkernel_host_case(
    racks: int = 4,
    hosts_per_rack: int = 4,
    guests: int = 4,
    hypervisor_mttf: float = 400.0,
    parent_os_mttf: float = 400.0,
    detection: float = 0.1,
    reboot_mean: float = 0.5,
) -> Case:
    """Microkernel hosts with hypervisor and parent-OS crashes, rebooting by themselves
    after an exponential reboot time (the alternating-renewal form holds for any law)."""
    hosts = racks * hosts_per_rack
    rates = [1 / hypervisor_mttf, 1 / parent_os_mttf]
    total = sum(rates)
    down = detection + reboot_mean
    availability = analytic.competing_causes_availability(rates, [down, down])
    cv2 = reboot_mean**2 / down**2
    down_hours = _unavailability_hours(total, down, cv2)
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        hosts={"architecture_mix": _only(MICROKERNEL)},
        architectures={MICROKERNEL: {
            "hypervisor_fault": _exponential(hypervisor_mttf),
            "parent_os_fault": _exponential(parent_os_mttf), "crash_detection": detection,
            "reboot_time": _exponential(reboot_mean), "crash_auto_reboot": True}},
    )  # fmt: skip
    return Case(
        name=f"{MICROKERNEL}-host",
        title=f"{MICROKERNEL} host: hypervisor + parent-OS crashes, self-reboot (exp. reboot)",
        config=config,
        units=hosts,
        relaxation=down,
        checks=(
            Check("host_availability", availability, "1/(1+Σλᵢ·MTTRᵢ)", 1.0, down_hours),
            _incident_check("incidents.parent_os", rates[1], hosts, availability,
                            "λ·H·T·A (exposure = up-time)"),
            _incident_check("incidents.hypervisor", rates[0], hosts, availability,
                            "λ·H·T·A (exposure = up-time)"),
            Check("mttr_hours", down, "detection + E[reboot]", None,
                  cv2 / (total * availability)),
            Check("blast_radius_mean", analytic.host_incident_blast_radius(guests),
                  "g (guests per host)"),
        ),
    )  # fmt: skip


def guest_process_case(
    racks: int = 4,
    hosts_per_rack: int = 4,
    guests: int = 4,
    process_mttf: float = 200.0,
    detection: float = 0.25,
    boot: float = 0.5,
) -> Case:
    """kvm hosts whose guests' own device-emulation processes crash (exponential, per
    guest, only while that guest is up): each crash takes that guest alone down for
    detection + boot (constants) with no operator, and the host stays up. Every guest is
    an alternating renewal process of its own."""
    down = detection + boot
    units = racks * hosts_per_rack * guests
    availability = analytic.alternating_renewal_availability(process_mttf, down)
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        hosts={"architecture_mix": _only(KVM)},
        architectures={KVM: {"guest_process_fault": _exponential(process_mttf),
                             "crash_detection": detection}},
        guests={"boot_time": boot},
    )  # fmt: skip
    return Case(
        name=f"{KVM}-guest-process",
        title=f"{KVM}: a guest's device-emulation process crashes, that guest alone restarts",
        config=config,
        units=units,
        relaxation=down,
        checks=(
            Check("guest_availability", availability, "MTTF/(MTTF+detection+boot)", 1.0,
                  _unavailability_hours(1 / process_mttf, down)),
            _incident_check("incidents.guest_process", 1 / process_mttf, units, availability,
                            "λ·G·T·A (exposure = the guest's up-time)"),
            Check("blast_radius_max", 1.0, "1: the guest alone"),
            Check("host_availability", 1.0, "1: the host never goes down"),
        ),
    )  # fmt: skip


def slo_breach_case(
    racks: int = 4,
    hosts_per_rack: int = 4,
    guests: int = 4,
    process_mttf: float = 2000.0,
    detection: float = 0.25,
    boot: float = 0.25,
    target: float = 1 - 1e-9,
) -> Case:
    """The guests of `guest_process_case` against a monthly SLO that allows (almost) no
    downtime: a guest-month breaches iff it holds downtime. It holds none iff the guest is
    up at the month's start (certainly at hour 0; with the renewal's availability A =
    MTTF/(MTTF+L) later) and its process does not crash in the month (exponential, while
    up), so P(breach) = 1 - P(up at start)·exp(-length/MTTF), averaged over the run's
    complete calendar months. (A crash cut by a month boundary to under (1-target)·length,
    2.6 ms, would not breach: probability ~1e-9.) ``error_budget_used`` is the
    unavailability over 1 - target."""
    down = detection + boot
    units = racks * hosts_per_rack * guests
    availability = analytic.alternating_renewal_availability(process_mttf, down)
    base = guest_process_case(racks, hosts_per_rack, guests, process_mttf, detection, boot)
    config = deep_merge(base.config, {"slo": {"target": target, "period": "month"}})

    def breach(horizon: float) -> float:
        starts = np.array(boundaries(DEFAULT_START, "month", horizon))
        up = np.where(starts[:-1] == 0.0, 1.0, availability)
        return float(np.mean(1.0 - up * np.exp(-np.diff(starts) / process_mttf)))

    typical = 1.0 - availability * math.exp(-730.0 / process_mttf)
    return Case(
        name="slo-breach",
        title=f"{KVM} guests' process crashes against a monthly SLO: breach iff any downtime",
        config=config,
        units=units,
        relaxation=7.5,  # a month-long run at least: 200 x 7.5 h
        checks=(
            Check("slo_breach_probability", typical, "1 - P(up at start)·exp(-month/MTTF)",
                  unit_hours=730.0 * (1 - typical) / typical, at_horizon=breach),
            Check("error_budget_used", (1 - availability) / (1 - target),
                  "(L/(MTTF+L)) / (1 - target)",
                  unit_hours=_unavailability_hours(1 / process_mttf, down)),
        ),
    )  # fmt: skip


def driver_crash_case(
    hosts_per_rack: int = 8,
    guests: int = 4,
    driver_mttfs: tuple[float, ...] = (300.0, 600.0),
    detection: float = 0.05,
    response: float = 0.25,
    monolithic_reboot: float = 0.1,
    grace: float = 0.5,
    microkernel_reboot: float = 0.25,
) -> Case:
    """Driver faults that are all severe: a monolithic host crashes (crash probability 1,
    operator reboot), a microkernel host escalates (escalation probability 1: degraded for
    the grace window, then reboots itself)."""
    rate = sum(1 / m for m in driver_mttfs)
    mttf = 1 / rate
    mono_down = detection + response + monolithic_reboot
    mono = analytic.alternating_renewal_availability(mttf, mono_down)
    running, degraded, _ = analytic.renewal_phase_fractions(mttf, grace, microkernel_reboot)
    cycle = mttf + grace + microkernel_reboot
    config = _quiet_fleet(
        2, hosts_per_rack, guests,
        hosts={"architecture_mix": {MONOLITHIC: 0.5, MICROKERNEL: 0.5}},
        architectures={
            MONOLITHIC: {"driver_fault_host_crash_prob": 1.0, "crash_detection": detection,
                           "reboot_time": monolithic_reboot, "crash_auto_reboot": False},
            MICROKERNEL: {"driver_fault_escalation_prob": 1.0, "escalation_grace": grace,
                            "reboot_time": microkernel_reboot, "driver_restart_time": 1.0},
        },
        drivers=[{"name": f"d{i}", "fault": _exponential(m), "share": 1.0}
                 for i, m in enumerate(driver_mttfs)],
        operators={"count": hosts_per_rack, "response_time": response},
    )  # fmt: skip
    mono_p, micro_p = f"by_architecture.{MONOLITHIC}.", f"by_architecture.{MICROKERNEL}."
    return Case(
        name="driver-crash-prob-1",
        title="driver faults all severe: monolithic crash vs microkernel escalation",
        config=config,
        units=hosts_per_rack,
        relaxation=max(mono_down, grace + microkernel_reboot),
        checks=(
            Check(mono_p + "host_availability", mono, "1/(1+λ·MTTR)", 1.0,
                  _unavailability_hours(rate, mono_down)),
            _incident_check(mono_p + "incidents.driver", rate, hosts_per_rack, mono,
                            "λ·H·T·A (exposure = up-time)"),
            Check(mono_p + "blast_radius_mean", analytic.host_incident_blast_radius(guests),
                  "g (guests per host)"),
            Check(micro_p + "host_availability", running + degraded,
                  "(MTTF+grace)/(MTTF+grace+reboot)", 1.0,
                  _unavailability_hours(rate, microkernel_reboot)),
            Check(micro_p + "degraded_min_per_year", analytic.MINUTES_PER_YEAR * degraded,
                  "525600·grace/(MTTF+grace+reboot)", None, _unavailability_hours(rate, grace)),
            _incident_check(micro_p + "incidents.driver", 1 / cycle, hosts_per_rack, 1.0,
                            "H·T/(MTTF+grace+reboot): one per cycle"),
            Check(micro_p + "blast_radius_mean", analytic.host_incident_blast_radius(guests),
                  "g (guests per host)"),
        ),
    )  # fmt: skip


def immediate_crash_case(
    racks: int = 2,
    hosts_per_rack: int = 8,
    guests: int = 4,
    driver_mttf: float = 150.0,
    detection: float = 0.1,
    reboot: float = 0.3,
    boot: float = 0.2,
    grace: float = 3.0,
) -> Case:
    """Microkernel driver faults whose outcome is always the immediate crash (crash
    probability 1, escalation 0): the host and its guests go down at once and it reboots by
    itself. A long ``escalation_grace`` (3 h, ten times the down time) is configured and must
    not matter: guest availability is the plain renewal of detection + reboot + boot."""
    hosts = racks * hosts_per_rack
    down = detection + reboot
    host = analytic.alternating_renewal_availability(driver_mttf, down)
    guest = analytic.immediate_crash_availability(driver_mttf, detection, reboot, boot)
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        hosts={"architecture_mix": _only(MICROKERNEL)},
        architectures={MICROKERNEL: {
            "driver_fault_host_crash_prob": 1.0, "driver_fault_escalation_prob": 0.0,
            "escalation_grace": grace, "crash_detection": detection, "reboot_time": reboot,
            "driver_restart_time": 1.0, "crash_auto_reboot": True}},
        drivers=[{"name": "nic", "fault": _exponential(driver_mttf), "share": 1.0}],
        guests={"boot_time": boot},
    )  # fmt: skip
    down_hours = _unavailability_hours(1 / driver_mttf, down + boot)
    return Case(
        name="driver-immediate-crash",
        title=f"{MICROKERNEL} driver faults that crash at once: the grace window plays no part",
        config=config,
        units=hosts,
        relaxation=down + boot,
        checks=(
            Check("guest_availability", guest, "MTTF·e^(-boot/MTTF)/(MTTF+det+reboot), no grace",
                  1.0, down_hours),
            Check("host_availability", host, "MTTF/(MTTF+detection+reboot)", 1.0,
                  _unavailability_hours(1 / driver_mttf, down)),
            Check("degraded_min_per_year", 0.0, "a crash degrades nothing"),
            _incident_check("incidents.driver", 1 / driver_mttf, hosts, host,
                            "λ·H·T·A (exposure = up-time)"),
        ),
    )  # fmt: skip


def aging_case(
    racks: int = 2,
    hosts_per_rack: int = 8,
    guests: int = 4,
    onset: float = 60.0,
    failure: float = 20.0,
    detection: float = 0.1,
    reboot: float = 0.4,
    boot: float = 0.25,
) -> Case:
    """Hosts that crash only of software aging and reboot by themselves: an alternating
    renewal whose up time is onset + failure (two exponential phases, a hypoexponential up
    time: its squared coefficient of variation is below 1, so the exponential budget of
    `analytic.required_unit_hours` is conservative)."""
    hosts = racks * hosts_per_rack
    down = detection + reboot
    cycle = onset + failure + down
    host = analytic.aging_availability(onset, failure, down)
    guest = analytic.aging_availability(onset, failure, down, boot)
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        hosts={"architecture_mix": _only(MICROKERNEL)},
        architectures={MICROKERNEL: {
            "aging": {"onset": _exponential(onset), "failure": _exponential(failure)},
            "crash_detection": detection, "reboot_time": reboot, "crash_auto_reboot": True}},
        guests={"boot_time": boot},
    )  # fmt: skip
    rate = 1 / (onset + failure)
    return Case(
        name="aging-renewal",
        title="software aging: a renewal whose up time is onset + failure",
        config=config,
        units=hosts,
        relaxation=down + boot,
        checks=(
            Check("host_availability", host, "(onset+failure)/(onset+failure+MTTR)", 1.0,
                  _unavailability_hours(rate, down)),
            Check("guest_availability", guest, "E[(onset+failure-boot)⁺]/(onset+failure+MTTR)",
                  1.0, _unavailability_hours(rate, down + boot)),
            _incident_check("incidents.aging", 1 / cycle, hosts, 1.0,
                            "H·T/(onset+failure+MTTR): one per cycle"),
        ),
    )  # fmt: skip


def hands_on_case(
    racks: int = 2,
    hosts_per_rack: int = 8,
    operators: int = 2,
    hardware_mttf: float = 100.0,
    hardware_repair: tuple[float, float] = (8.0, 16.0),
    hands_on: float = 0.5,
    response: float = 0.25,
    reboot: float = 0.1,
) -> Case:
    """Hardware repairs whose hands-on part (0.5 h) is much shorter than the repair
    (uniform 8-16 h): two operators for 16 hosts, who would queue heavily if they held each
    repair (utilization about 0.9), are busy 6 % of the time, so a ticket's wait vanishes
    (a ticket finds both busy well under 1 % of the time, and waits 0.4 h then: under
    0.1 % of a down time) and each host is a renewal of response + repair + reboot."""
    hosts = racks * hosts_per_rack
    low, high = hardware_repair
    repair_mean, repair_var = (low + high) / 2, (high - low) ** 2 / 12
    down = response + repair_mean + reboot
    host = analytic.alternating_renewal_availability(hardware_mttf, down)
    rate = 1 / hardware_mttf
    busy = analytic.hands_on_utilization(rate, hosts, host, response + hands_on, operators)
    config = _quiet_fleet(
        racks, hosts_per_rack, 1,
        architectures={MONOLITHIC: {"reboot_time": reboot}},
        hardware={"fault": _exponential(hardware_mttf),
                  "repair": {"dist": "uniform", "low": low, "high": high},
                  "hands_on": hands_on},
        operators={"count": operators, "response_time": response},
    )  # fmt: skip
    return Case(
        name="hands-on-repair",
        title=f"hardware repairs, hands-on {hands_on:g} h of {low:g}-{high:g} h: "
        f"{operators} operators for {hosts} hosts, no queue",
        config=config,
        units=hosts,
        relaxation=down,
        checks=(
            Check("host_availability", host, "MTTF/(MTTF+response+repair+reboot), wait → 0",
                  1.0, _unavailability_hours(rate, down, repair_var / down**2)),
            Check("operator_utilization", busy, "λ·N·A·(response+hands-on)/c", None,
                  _count_hours(rate, host)),
            _incident_check("incidents.hardware", rate, hosts, host,
                            "λ·H·T·A (exposure = up-time)"),
        ),
    )  # fmt: skip


def driver_contained_case(
    racks: int = 4,
    hosts_per_rack: int = 4,
    guests: int = 4,
    driver_mttfs: tuple[float, ...] = (100.0, 250.0),
    restart: float = 0.5,
) -> Case:
    """Driver faults with crash probability 0: nothing on monolithic hosts (the first
    rack); a microkernel host (the other racks) is degraded while any driver restarts."""
    rates = [1 / m for m in driver_mttfs]
    degraded = analytic.degraded_fraction(rates, restart)
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        hosts={"architecture_mix": {MONOLITHIC: 1 / racks, MICROKERNEL: 1 - 1 / racks}},
        architectures=_both(driver_fault_host_crash_prob=0.0, driver_restart_time=restart),
        drivers=[{"name": f"d{i}", "fault": _exponential(m), "share": 1.0}
                 for i, m in enumerate(driver_mttfs)],
    )  # fmt: skip
    mono_p, micro_p = f"by_architecture.{MONOLITHIC}.", f"by_architecture.{MICROKERNEL}."
    return Case(
        name="driver-crash-prob-0",
        title="driver faults, crash probability 0: microkernel degraded, monolithic unaffected",
        config=config,
        units=(racks - 1) * hosts_per_rack,
        relaxation=restart,
        checks=(
            Check(micro_p + "degraded_min_per_year", analytic.MINUTES_PER_YEAR * degraded,
                  "525600·(1-Π 1/(1+λᵢ·r))", None, _unavailability_hours(sum(rates), restart)),
            Check(micro_p + "host_availability", 1.0, "degraded hosts are up", 1.0),
            Check(mono_p + "degraded_min_per_year", 0.0, "a driver reset does nothing"),
            Check(mono_p + "host_availability", 1.0, "a driver reset does nothing", 1.0),
            Check("incidents.driver", 0.0, "no contained fault is an incident"),
            Check("guest_availability", 1.0, "guests ride through", 1.0),
        ),
    )  # fmt: skip


def tor_series_case(
    racks: int = 4,
    hosts_per_rack: int = 4,
    guests: int = 4,
    hypervisor_mttf: float = 600.0,
    detection: float = 0.5,
    reboot: float = 5.5,
    boot: float = 0.25,
    tor_mttf: float = 400.0,
    tor_repair: float = 4.0,
    response: float = 0.5,
) -> Case:
    """A rack behind one failing ToR: its guests need their host (and its boot) *and* the
    switch, independent processes, so guest availability is a series system."""
    host_down = detection + reboot
    tor_down = response + tor_repair
    host = analytic.alternating_renewal_availability(hypervisor_mttf, host_down)
    serving = analytic.warmup_availability(hypervisor_mttf, host_down, boot)
    tor = analytic.alternating_renewal_availability(tor_mttf, tor_down)
    guest = analytic.series_availability(serving, tor)
    hosts = racks * hosts_per_rack
    effective = 1 - (1 - serving) ** hosts_per_rack  # a ToR fault finding a guest serving
    tor_incidents = _incident_check(
        "incidents.network",
        1 / tor_mttf,
        racks,
        tor * effective,
        "λ·racks·T·A_ToR·P(a guest serving)",
    )
    host_incidents = analytic.expected_incidents(1 / hypervisor_mttf, hosts, 1.0, host)
    blast = analytic.mean_blast_radius(
        [host_incidents, tor_incidents.analytic],
        [
            analytic.host_incident_blast_radius(guests, serving / host * tor),
            analytic.rack_incident_blast_radius(hosts_per_rack, guests, serving),
        ],
    )
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        architectures={MONOLITHIC: {
            "hypervisor_fault": _exponential(hypervisor_mttf), "crash_detection": detection,
            "reboot_time": reboot, "crash_auto_reboot": True}},
        network={"tor_fault": _exponential(tor_mttf), "tor_repair": tor_repair},
        guests={"boot_time": boot},
        operators={"count": racks, "response_time": response},
    )  # fmt: skip
    rack_hours = _unavailability_hours(1 / tor_mttf, tor_down)
    return Case(
        name="tor-series",
        title="rack behind one failing ToR: guest = host (with boot) × ToR, in series",
        config=config,
        units=racks,
        relaxation=max(tor_down, host_down + boot),
        checks=(
            Check("guest_availability", guest, "A_host,boot · A_ToR", 1.0, rack_hours),
            Check("host_availability", host, "MTTF/(MTTF+MTTR): a ToR fault spares hosts", 1.0,
                  _unavailability_hours(1 / hypervisor_mttf, host_down) / hosts_per_rack),
            tor_incidents,
            Check("blast_radius_mean", blast, "Σ Nᵢ·bᵢ/Σ Nᵢ; host g·P, ToR h·g·p/(1-(1-p)^h)",
                  None, tor_incidents.unit_hours),
        ),
    )  # fmt: skip


def tor_parallel_case(
    racks: int = 4,
    hosts_per_rack: int = 4,
    guests: int = 4,
    hypervisor_mttf: float = 2000.0,
    reboot: float = 2.0,
    tor_mttf: float = 60.0,
    tor_repair: float = 40.0,
) -> Case:
    """A rack behind two ToRs, reachable while either is up: a 1-of-2 parallel system in
    series with the host. Network incidents are the moments the last ToR fails."""
    host = analytic.alternating_renewal_availability(hypervisor_mttf, reboot)
    tor = analytic.alternating_renewal_availability(tor_mttf, tor_repair)
    network = analytic.parallel_availability(tor, tor)
    frequency = analytic.parallel_failure_frequency([1 / tor_mttf] * 2, [tor, tor])
    effective = 1 - (1 - host) ** hosts_per_rack
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        topology={"tors_per_rack": 2},
        architectures={MONOLITHIC: {
            "hypervisor_fault": _exponential(hypervisor_mttf), "reboot_time": reboot,
            "crash_auto_reboot": True}},
        network={"tor_fault": _exponential(tor_mttf), "tor_repair": _exponential(tor_repair)},
        operators={"count": 2 * racks},
    )  # fmt: skip
    # both-down episodes: rate f, exponential length 1/(2 mu); x1.2 for their clustering
    rack_hours = 1.2 * _unavailability_hours(frequency, tor_repair / 2, 1.0)
    return Case(
        name="tor-parallel",
        title="rack behind two ToRs: guest = host × (1-of-2 ToRs)",
        config=config,
        units=racks,
        relaxation=tor_repair,
        checks=(
            Check("guest_availability", analytic.series_availability(host, network),
                  "A_host · (1-(1-A_ToR)²)", 1.0, rack_hours),
            _incident_check("incidents.network", frequency, racks, effective,
                            "racks·T·Σᵢ λᵢ·Aᵢ·Πⱼ≠ᵢ(1-Aⱼ): the last ToR fails"),
        ),
    )  # fmt: skip


def power_case(
    racks: int = 4,
    hosts_per_rack: int = 4,
    guests: int = 4,
    power_mttf: float = 300.0,
    power_repair: float = 5.0,
    response: float = 0.5,
    reboot: float = 1.0,
) -> Case:
    """A rack on one failing power feed: hosts go down with it and boot by themselves when
    power returns, a warm-up that the next power fault may cut short."""
    feed_down = response + power_repair
    host = analytic.warmup_availability(power_mttf, feed_down, reboot)
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        architectures={MONOLITHIC: {"reboot_time": reboot}},
        network={"power_fault": _exponential(power_mttf),
                 "power_repair": _exponential(power_repair)},
        operators={"count": racks, "response_time": response},
    )  # fmt: skip
    cv2 = power_repair**2 / feed_down**2
    rack_hours = _unavailability_hours(1 / power_mttf, feed_down + reboot, cv2)
    return Case(
        name="power-feed",
        title="rack on one failing power feed: hosts reboot by themselves when power returns",
        config=config,
        units=racks,
        relaxation=(feed_down + reboot),
        checks=(
            Check("host_availability", host, "MTTF·e^(-reboot/MTTF)/(MTTF+MTTR)", 1.0,
                  rack_hours),
            _incident_check("incidents.power", 1 / power_mttf, racks, host,
                            "λ·racks·T·A_hosts (a fault finding hosts up)"),
            Check("blast_radius_mean", analytic.rack_incident_blast_radius(hosts_per_rack, guests),
                  "h·g (hosts per rack × guests)"),
        ),
    )  # fmt: skip


def rare_power_case(
    hosts: int = 4,
    guests: int = 4,
    power_mttf: float = 3000 * 8760.0,
    power_repair: float = 6.0,
    response: float = 0.5,
    reboot: float = 1.0,
    replications: int = 3000,
) -> Case:
    """A rack on one power feed that fails once in three thousand years, sampled at a
    boost that expects one outage a replication-year: the power-feed closed form
    (`power_case`) for an event that plain replications at the same cost would almost
    never see (``replications`` x 1 y / MTTF outages expected: 1 at the defaults). The
    repair lasts a fixed time, as in the default config."""
    feed_down = response + power_repair
    host = analytic.warmup_availability(power_mttf, feed_down, reboot)
    config = _quiet_fleet(
        1, hosts, guests,
        architectures={MONOLITHIC: {"reboot_time": reboot}},
        network={"power_fault": _exponential(power_mttf), "power_repair": power_repair},
        operators={"response_time": response},
    )  # fmt: skip
    year = 8760.0
    plain = replications * year / power_mttf
    return Case(
        name="rare-power-outage",
        title=f"rack on a feed failing once in {power_mttf / year:,.0f} y, importance-"
        f"sampled (plain sampling at this cost expects {plain:.1f} outages)",
        config=config,
        units=1,
        relaxation=feed_down + reboot,
        boost={"power": power_mttf / year},
        replications=replications,
        fixed_horizon=year,
        checks=(
            Check("host_availability", host, "MTTF·e^(-reboot/MTTF)/(MTTF+MTTR)", 1.0),
            _incident_check("incidents.power", 1 / power_mttf, 1, host,
                            "λ·T·A_hosts (a fault finding hosts up)"),
        ),
    )  # fmt: skip


def datastore_case(
    pods: int = 4,
    racks: int = 2,
    hosts_per_rack: int = 2,
    guests: int = 4,
    storage_mttf: float = 300.0,
    storage_repair: float = 5.0,
    response: float = 0.5,
) -> Case:
    """A shared datastore per pod that fails and is repaired (a ticket: response + repair):
    while it is down every guest of its pod is unavailable and every host keeps running,
    so guest availability is the datastore's alternating renewal and hosts are always up."""
    store_down = response + storage_repair
    available = analytic.alternating_renewal_availability(storage_mttf, store_down)
    per_pod = racks * hosts_per_rack * guests
    config = _quiet_fleet(
        racks, hosts_per_rack, guests,
        topology={"pods": pods},
        storage={"fault": _exponential(storage_mttf), "repair": _exponential(storage_repair),
                 "scope": "pod"},
        operators={"count": pods, "response_time": response},
    )  # fmt: skip
    cv2 = storage_repair**2 / store_down**2
    return Case(
        name="datastore",
        title="a shared datastore per pod: all paths down takes its guests, not its hosts",
        config=config,
        units=pods,
        relaxation=store_down,
        checks=(
            Check("guest_availability", available, "MTTF/(MTTF+response+repair)", 1.0,
                  _unavailability_hours(1 / storage_mttf, store_down, cv2)),
            Check("host_availability", 1.0, "hosts keep running through all paths down", 1.0),
            _incident_check("incidents.storage", 1 / storage_mttf, pods, available,
                            "λ·pods·T·A_datastore"),
            Check("blast_radius_mean", float(per_pod), "r·h·g: every guest of the pod"),
        ),
    )  # fmt: skip


def machine_repairman_case(
    operators: int,
    racks: int = 3,
    hosts_per_rack: int = 4,
    hardware_mttf: float = 25.0,
    hardware_repair: float = 20.0,
) -> Case:
    """The operator queue as a machine-repairman system M/M/c//N: hardware faults
    (exponential, only while up) queue for ``c`` operators whose task (response 0 +
    exponential repair + reboot 0) is exponential. A heavily loaded fleet, so that even four
    operators queue."""
    hosts = racks * hosts_per_rack
    queue = analytic.machine_repairman(hosts, operators, 1 / hardware_mttf, 1 / hardware_repair)
    config = _quiet_fleet(
        racks, hosts_per_rack, 1,
        hardware={"fault": _exponential(hardware_mttf), "repair": _exponential(hardware_repair)},
        operators={"count": operators},
    )  # fmt: skip

    # The hosts interact through the queue, so the fleet is one unit and the budgets come
    # from the Markov chain itself: the asymptotic variance of a time average, over the
    # square of its mean. The mean wait is a ratio, time-averaged queue over tickets served,
    # whose relative errors add at worst: (sqrt(queue) + sqrt(1 / throughput))^2.
    def budget(quantity: str, mean: float) -> float:
        return queue.time_average_variance(queue.state_values(quantity)) / mean**2

    wait_hours = (
        math.sqrt(budget("queue", queue.mean_queue)) + math.sqrt(1 / queue.throughput)
    ) ** 2
    # Starting with every host up, a saturated fleet first fails much faster than in steady
    # state: the chain gives the start-up terms exactly (the deviation matrix at state 0),
    # for the time failed, the operators' busy time and the faults, -λ·N·h_0(n / N).
    failed_area = queue.startup_area(queue.state_values("failed"))
    busy_area = queue.startup_area(queue.state_values("busy"))
    # The mean wait is (area under the queue) / (tickets opened), each with its start-up
    # excess: the queue starts empty, and the first faults come faster.
    tickets_excess = -queue.failure_rate * hosts * failed_area
    wait_startup = (
        queue.mean_wait * (queue.startup_area(queue.state_values("queue")) / queue.mean_queue
                           - tickets_excess / queue.throughput)
        if queue.mean_queue > 0 else 0.0
    )  # fmt: skip
    relaxation = max(
        abs(queue.startup_area(queue.state_values(quantity))) / mean
        for quantity, mean in (
            ("failed", 1 - queue.host_availability),
            ("queue", queue.mean_queue),
            ("busy", queue.operator_utilization),
        )
    )
    return Case(
        name=f"repairman-c{operators}",
        title=f"operator queue M/M/{operators}//{hosts}: {hosts} hosts, {operators} operator(s)",
        config=config,
        units=1,
        relaxation=relaxation,
        checks=(
            Check("host_availability", queue.host_availability, "1 - L/N (+ start-up)", 1.0,
                  budget("failed", 1 - queue.host_availability), startup=-failed_area),
            Check("ticket_wait_hours", queue.mean_wait, "W_q = L_q/(λ(N-L)) (+ start-up)", None,
                  wait_hours, startup=wait_startup),
            Check("operator_utilization", queue.operator_utilization, "(L - L_q)/c (+ start-up)",
                  None, budget("busy", queue.operator_utilization), startup=busy_area),
            replace(_incident_check("incidents.hardware", queue.throughput, 1, 1.0,
                                    "λ·(N-L)·T (+ start-up)"),
                    startup=tickets_excess),
        ),
    )  # fmt: skip


def quorum_case(
    groups: int = 2,
    hypervisor_mttf: float = 15.0,
    reboot_mean: float = 10.0,
) -> Case:
    """k-of-3 over hosts, read from the event log, and a 2-of-3 quorum service whose
    replicas sit on three independent hosts (one replica per host, nowhere to move)."""
    availability = analytic.alternating_renewal_availability(hypervisor_mttf, reboot_mean)
    hosts = 3 * groups
    config = _quiet_fleet(
        1, hosts, 0,
        architectures={MONOLITHIC: {
            "hypervisor_fault": _exponential(hypervisor_mttf),
            "reboot_time": _exponential(reboot_mean), "crash_auto_reboot": True}},
        services=[{"name": f"quorum{i}", "replicas": 3, "quorum": 2, "anti_affinity": "host",
                   "cpu": 1, "memory_gb": 1} for i in range(groups)],
    )  # fmt: skip
    rate = 1 / hypervisor_mttf

    def group_hours(k: int) -> float:
        """Fewer than k up is entered from exactly k up, at k·λ·P(k up); cv² 1 is
        conservative (those episodes vary less than exponential times)."""
        entry = k * rate * math.comb(3, k) * availability**k * (1 - availability) ** (3 - k)
        down = 1 - analytic.k_of_n_availability(k, 3, availability)
        return _unavailability_hours(entry, down / entry, 1.0)

    # 1 of 3 (parallel) is left to the ToR case: its rare all-down state would cost 7x more.
    checks = (
        Check("hosts_up_at_least.2_of_3", analytic.k_of_n_availability(2, 3, availability),
              "Σⱼ≥2 C(3,j)·Aʲ·(1-A)^(3-j)", 1.0, group_hours(2)),
        Check("hosts_up_at_least.3_of_3", analytic.k_of_n_availability(3, 3, availability),
              "A³ (series)", 1.0, group_hours(3)),
        Check("service_availability", analytic.k_of_n_availability(2, 3, availability),
              "2-of-3 of independent replicas", 1.0, group_hours(2)),
    )  # fmt: skip
    return Case(
        name="quorum-2-of-3",
        title="k-of-3 hosts up (event log) and a 2-of-3 quorum service on independent hosts",
        config=config,
        units=groups,
        relaxation=1 / (rate + 1 / reboot_mean),
        checks=checks,
        measure=hosts_up_in_groups,
    )


def hosts_up_in_groups(config: FleetConfig, events: pd.DataFrame) -> dict[str, float]:
    """From the event log: the fraction of time at least k of each group of 3 consecutive
    hosts (h0-h2, h3-h5, ...) is up, averaged over groups, for k = 1, 2, 3."""
    names = build_topology(config.topology).hosts
    groups = [names[i : i + 3] for i in range(0, len(names) - len(names) % 3, 3)]
    group_of = {name: g for g, members in enumerate(groups) for name in members}
    rows = events[events["entity"].isin(group_of)]
    up_count = [len(members) for members in groups]
    is_up = dict.fromkeys(group_of, True)
    last = [0.0] * len(groups)
    time_with = np.zeros((len(groups), 4))
    for t, entity, to_state in zip(rows["time"], rows["entity"], rows["to_state"], strict=True):
        g = group_of[entity]
        up = to_state in UP_STATES
        if up != is_up[entity]:
            time_with[g, up_count[g]] += t - last[g]
            last[g] = t
            up_count[g] += 1 if up else -1
            is_up[entity] = up
    for g in range(len(groups)):
        time_with[g, up_count[g]] += config.horizon - last[g]
    at_least = np.cumsum(time_with[:, ::-1], axis=1)[:, ::-1] / config.horizon
    return {f"hosts_up_at_least.{k}_of_3": float(at_least[:, k].mean()) for k in (1, 2, 3)}


def default_cases() -> tuple[Case, ...]:
    """The built-in suite."""
    return (
        monolithic_host_case(),
        microkernel_host_case(),
        guest_process_case(),
        slo_breach_case(),
        driver_crash_case(),
        immediate_crash_case(),
        driver_contained_case(),
        aging_case(),
        hands_on_case(),
        tor_series_case(),
        tor_parallel_case(),
        power_case(),
        rare_power_case(),
        machine_repairman_case(1),
        machine_repairman_case(2),
        machine_repairman_case(4),
        quorum_case(),
        datastore_case(),
    )


# -- running -------------------------------------------------------------------------------------


class Status(StrEnum):
    PASS = "pass"
    FAIL = "FAIL"
    IMPRECISE = "FAIL: CI too wide"
    ERROR = "ERROR"


@dataclass
class CheckResult:
    """A check against its simulated values (one per replication)."""

    case: str
    check: Check
    values: np.ndarray
    allowance: float = 0.0
    """Start-up bias allowed for: |reference| x relaxation / horizon."""
    status: Status = Status.PASS
    low: float = math.nan
    high: float = math.nan
    half_width: float = math.nan
    error: str | None = None
    log_weights: np.ndarray | None = None
    """Each replication's log likelihood ratio, when the case boosts rare faults."""

    def estimate(self) -> tuple[float, float, int]:
        """Mean, standard error and degrees of freedom of the simulated values: plain, or
        likelihood-weighted (`twin.rare_events.estimate`)."""
        if self.log_weights is not None:
            return rare_events.estimate(self.values, self.log_weights)
        n = self.values.size
        se = float(self.values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        return float(self.values.mean()), se, n - 1

    @property
    def mean(self) -> float:
        return self.estimate()[0] if self.values.size else math.nan

    @property
    def rel_error(self) -> float:
        """(simulated - analytic) / the estimated quantity (the shortfall for availability)."""
        reference = self.check.reference
        diff = self.mean - self.check.analytic
        if reference == 0:
            return 0.0 if abs(diff) <= _tolerance(self.check.analytic) else math.inf
        return diff / reference

    @property
    def precision(self) -> float:
        """The 95 % half-width over the estimated quantity (the guard is <= 5 %)."""
        reference = abs(self.check.reference)
        if reference == 0:
            return 0.0 if self.half_width <= _tolerance(self.check.analytic) else math.inf
        return self.half_width / reference

    def judge(self, checks_in_suite: int) -> None:
        """Simultaneous interval over ``checks_in_suite`` checks; the 95 % precision guard."""
        n = self.values.size
        if n == 0:
            self.status = Status.ERROR
            self.error = self.error or f"metric {self.check.metric!r} not produced"
            return
        _, se, dof = self.estimate()
        alpha = (1 - FAMILY_LEVEL) / max(checks_in_suite, 1)
        dof = max(dof, 1)
        wide = float(stats.t.ppf(1 - alpha / 2, dof)) * se
        self.half_width = float(stats.t.ppf(0.975, dof)) * se
        self.low, self.high = self.mean - wide, self.mean + wide
        tolerance = _tolerance(self.check.analytic) + self.allowance
        if not self.low - tolerance <= self.check.analytic <= self.high + tolerance:
            self.status = Status.FAIL
        elif self.precision > MAX_REL_HALF_WIDTH:
            self.status = Status.IMPRECISE
        else:
            self.status = Status.PASS

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: numbers that are not finite (no simulated value) become None."""
        numbers = {
            "analytic": self.check.analytic,
            "mean": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "ci95_half_width": self.half_width,
            "rel_error": self.rel_error,
            "precision": self.precision,
        }
        return {
            "case": self.case,
            "metric": self.check.metric,
            "formula": self.check.formula,
            **{k: v if math.isfinite(v) else None for k, v in numbers.items()},
            "status": self.status.value,
            "error": self.error,
        }


@dataclass
class CaseRun:
    case: Case
    horizon: float
    replications: int
    seconds: float
    results: list[CheckResult] = field(default_factory=list)


@dataclass
class SuiteResult:
    mode: Mode
    seed: int
    runs: list[CaseRun]
    seconds: float

    @property
    def checks(self) -> list[CheckResult]:
        return [r for run in self.runs for r in run.results]

    @property
    def passed(self) -> bool:
        return all(r.status is Status.PASS for r in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.name,
            "seed": self.seed,
            "replications": self.mode.replications,
            "family_level": FAMILY_LEVEL,
            "max_rel_half_width": MAX_REL_HALF_WIDTH,
            "seconds": self.seconds,
            "passed": self.passed,
            "cases": [
                {
                    "case": run.case.name,
                    "title": run.case.title,
                    "horizon_hours": run.horizon,
                    "replications": run.replications,
                    "seconds": run.seconds,
                    "checks": [r.as_dict() for r in run.results],
                }
                for run in self.runs
            ],
        }


def simulate(case: Case, replications: int, horizon: float, seed: int) -> dict[str, np.ndarray]:
    """Run the case ``replications`` times; every metric (and measured one) per replication."""
    config = case.fleet_config(horizon, seed)
    if case.boost is not None:
        config = rare_events.accelerated(config, case.boost)
    rows: list[dict[str, float]] = []
    for i in range(replications):
        rep = run_replication(config, i, seed, record_events=case.measure is not None)
        metrics = dict(rep.metrics) | {LOG_WEIGHT: rep.log_weight}
        if case.measure is not None and rep.events is not None:
            metrics |= case.measure(config, rep.events)
        rows.append(metrics)
    names = {name for row in rows for name in row}
    return {n: np.array([row[n] for row in rows if n in row], dtype=float) for n in names}


def run_suite(
    cases: Sequence[Case] | None = None,
    mode: Mode = FULL,
    seed: int = 42,
    replications: int | None = None,
    on_case: Callable[[CaseRun], None] | None = None,
) -> SuiteResult:
    """Run every case and judge every check; case ``i`` uses root seed ``seed + i``."""
    cases = default_cases() if cases is None else tuple(cases)
    if replications is not None:
        mode = replace(mode, replications=replications)
    start = time.perf_counter()
    runs: list[CaseRun] = []
    for i, case in enumerate(cases):
        replications = case.replications or mode.replications
        horizon = case.horizon(replications, mode.rel_half_width)
        t0 = time.perf_counter()
        try:
            values = simulate(case, replications, horizon, seed + i)
            error = None
        except Exception as err:  # a broken case is reported, the others still run
            values, error = {}, f"{type(err).__name__}: {err}"
        run = CaseRun(case, horizon, replications, time.perf_counter() - t0)
        empty = np.array([], dtype=float)
        weights = values.get(LOG_WEIGHT) if case.boost is not None else None
        results = []
        for check in case.checks:
            check = check.over(horizon)
            result = CheckResult(case.name, check, values.get(check.metric, empty), error=error,
                                 log_weights=weights)  # fmt: skip
            result.allowance = abs(check.reference) * case.relaxation / horizon
            results.append(result)
        run.results = results
        runs.append(run)
        if on_case is not None:
            on_case(run)
    suite = SuiteResult(mode, seed, runs, time.perf_counter() - start)
    m = len(suite.checks)
    for result in suite.checks:
        result.judge(m)
    return suite


def _tolerance(value: float) -> float:
    return 1e-9 * max(1.0, abs(value))
