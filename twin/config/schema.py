"""The fleet and scenario schema (SPEC section 3): key names are part of the contract.

Every default below equals the value in ``configs/default.yaml``, where each one is sourced;
a YAML file holding only ``name:`` is a valid fleet. All times are hours.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    field_validator,
    model_validator,
)

from twin.architectures import (
    ARCHITECTURES,
    BEHAVIOURS,
    DRIVER_FAULT_PROBABILITIES,
    REJUVENATION,
    UPDATE_SCOPES,
    outcome_probability_errors,
)
from twin.dates import Freeze, parse_month_day
from twin.periods import DEFAULT_START, Period

from .distributions import Dist, Distribution, DistributionError, parse_distribution
from .durations import Duration, PositiveDuration, invalid

Architecture = Literal[ARCHITECTURES]  # type: ignore[valid-type]
"""A row of the behaviour table (`twin.architectures.BEHAVIOURS`)."""
ArchitectureOrAll = Literal[(*ARCHITECTURES, "all")]  # type: ignore[valid-type]


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise invalid(f"expected a probability in [0, 1] (got {value!r})")
    return float(value)


Probability = Annotated[float, PlainValidator(_probability, json_schema_input_type=float)]
"""A probability or a share, in [0, 1]."""


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, as a new dict.

    Mappings merge key by key; lists and scalars replace. A mapping with a ``dist:`` key is a
    whole distribution and replaces, so an override can change the family (exponential to
    weibull) without inheriting the old parameters; ``{mean: 1000h}`` alone adjusts one.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping) and "dist" not in value:
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique_names(items: list[Any], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise invalid(f"duplicate {what} name {item.name!r}")
        seen.add(item.name)


def _existing_file(value: str | None) -> str | None:
    """A path that must name an existing file, made absolute (None passes)."""
    if value is None:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise invalid(f"file not found: {path}")
    return str(path)


class TopologyConfig(_Model):
    """The generated fabric: sites -> pods -> racks -> hosts, or a graph read from ``file``."""

    sites: int = Field(1, ge=1)
    pods: int = Field(2, ge=1, description="pods per site")
    racks_per_pod: int = Field(4, ge=1)
    hosts_per_rack: int = Field(16, ge=1)
    spines: int = Field(2, ge=1, description="spine switches per pod")
    tors_per_rack: int = Field(1, ge=1)
    power_feeds_per_rack: int = Field(1, ge=1)
    file: str | None = Field(None, description="GraphML or node-link JSON; replaces the counts")

    @field_validator("file")
    @classmethod
    def _file_exists(cls, value: str | None) -> str | None:
        return _existing_file(value)

    @property
    def n_hosts(self) -> int:
        """Hosts in the generated fabric (ignores ``file``)."""
        return self.sites * self.pods * self.racks_per_pod * self.hosts_per_rack


class HostsConfig(_Model):
    """Host capacity and which architecture each host runs."""

    cpu: float = Field(64, gt=0)
    memory_gb: float = Field(512, gt=0)
    architecture_mix: dict[str, float] = Field(
        default_factory=lambda: {"monolithic": 0.5, "microkernel": 0.5, "kvm": 0.0}
    )
    assign: Literal["by_rack", "random"] = "by_rack"
    cluster_size: int = Field(
        32, ge=1, description="hosts per HA/DRS cluster, inside one pod and one architecture"
    )
    inventory: str | None = Field(
        None, description="CSV of hosts (host, rack, pod, site, architecture); replaces the counts"
    )

    @model_validator(mode="after")
    def _clusters_within_product_limits(self) -> Self:
        for name, share in self.architecture_mix.items():
            limit = BEHAVIOURS[name].cluster_limit
            if share > 0 and self.cluster_size > limit:
                raise invalid(
                    f"{self.cluster_size} hosts exceed the {name} cluster limit of {limit}",
                    "cluster_size",
                )
        return self

    @field_validator("inventory")
    @classmethod
    def _inventory_exists(cls, value: str | None) -> str | None:
        return _existing_file(value)

    @field_validator("architecture_mix")
    @classmethod
    def _shares_sum_to_one(cls, mix: dict[str, float]) -> dict[str, float]:
        known = ", ".join(ARCHITECTURES)
        for name, share in mix.items():
            if name not in ARCHITECTURES:
                raise invalid(f"unknown architecture (known: {known})", name)
            if share < 0:
                raise invalid(f"share must be >= 0 (got {share:g})", name)
        total = math.fsum(mix.values())
        if abs(total - 1) > 1e-9:
            raise invalid(f"shares must sum to 1 (got {total:.10g})")
        return {name: float(mix.get(name, 0.0)) for name in ARCHITECTURES}


class UpdateRebootConfig(_Model):
    """Which update scopes need a host reboot on this architecture."""

    driver: bool = True
    hypervisor: bool = True
    parent_os: bool = True


class AgingConfig(_Model):
    """Software aging (SPEC 3): ``onset`` after each boot the hypervisor or parent OS is
    aged, and ``failure`` later it crashes (cause ``aging``) unless a reboot came first.
    ``never`` (the whole block, or either phase) switches it off."""

    onset: Dist
    failure: Dist

    @model_validator(mode="before")
    @classmethod
    def _never(cls, data: Any) -> Any:
        if isinstance(data, str) and data.strip().lower() == "never":
            return {"onset": "never", "failure": "never"}
        return data

    @property
    def never(self) -> bool:
        """No host of this architecture ever crashes of aging."""
        return self.onset.never or self.failure.never


class ArchitectureConfig(_Model):
    """What faults, detection, reboots and updates cost on one architecture.

    Every field is required here; ``ArchitecturesConfig`` fills in each architecture's own
    defaults, so a YAML file may give only the fields it changes.
    """

    hypervisor_fault: Dist
    crash_detection: Dist
    reboot_time: Dist
    driver_restart_time: Dist
    escalation_grace: Dist
    parent_os_fault: Dist
    guest_process_fault: Dist
    driver_fault_host_crash_prob: Probability
    driver_fault_escalation_prob: Probability
    aging: AgingConfig
    crash_auto_reboot: bool
    io_overhead: float = Field(ge=0, lt=1)
    update_requires_reboot: UpdateRebootConfig


_HYPERVISOR_FAULT = {"dist": "exponential", "mean": "2654h"}  # Nguyen 2014: VMM non-aging MTTF
_AGING = {  # Nguyen 2014, Table 3: VMM time to aging 1 month, aging to failure 1 week
    "onset": {"dist": "exponential", "mean": "730h"},
    "failure": {"dist": "exponential", "mean": "1w"},
}

ARCHITECTURE_DEFAULTS: dict[str, dict[str, Any]] = {
    "monolithic": {
        "hypervisor_fault": _HYPERVISOR_FAULT,
        "crash_detection": "15s",
        "reboot_time": "6m",
        "driver_restart_time": "30s",
        "escalation_grace": 0,
        "parent_os_fault": "never",
        "guest_process_fault": "never",
        "driver_fault_host_crash_prob": 0.9,
        "driver_fault_escalation_prob": 0.0,
        "aging": _AGING,
        "io_overhead": 0.02,
    },
    "microkernel": {
        "hypervisor_fault": _HYPERVISOR_FAULT,
        "crash_detection": "15s",
        "reboot_time": "15m",
        "driver_restart_time": "2m",
        "escalation_grace": "10m",
        "parent_os_fault": {"dist": "exponential", "mean": "2893h"},
        "guest_process_fault": "never",
        "driver_fault_host_crash_prob": 0.02,  # assumption: a bugcheck in the parent is rare
        "driver_fault_escalation_prob": 0.05,  # assumption: the seed article's escalation
        "aging": _AGING,
        "io_overhead": 0.05,
    },
    "kvm": {
        "hypervisor_fault": _HYPERVISOR_FAULT,
        "crash_detection": "15s",
        "reboot_time": "10m",
        "driver_restart_time": "30s",
        "escalation_grace": 0,
        "parent_os_fault": "never",
        "guest_process_fault": {"dist": "exponential", "mean": "2893h"},
        "driver_fault_host_crash_prob": 0.9,
        "driver_fault_escalation_prob": 0.0,
        "aging": _AGING,
        "io_overhead": 0.03,
    },
}
"""Each architecture's numeric defaults in YAML form, as in ``configs/default.yaml``; its
qualitative facts (``crash_auto_reboot``, ``update_requires_reboot``) come from the
behaviour table (`twin.architectures.Behaviour.config_facts`)."""


class ArchitecturesConfig(_Model):
    """One block of numbers per row of the behaviour table."""

    monolithic: ArchitectureConfig
    microkernel: ArchitectureConfig
    kvm: ArchitectureConfig

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        filled = dict(data)
        for name, behaviour in BEHAVIOURS.items():
            defaults = deep_merge(behaviour.config_facts(), ARCHITECTURE_DEFAULTS[name])
            given = data.get(name, {})
            if isinstance(given, Mapping):
                filled[name] = deep_merge(defaults, given)
        return filled

    @model_validator(mode="after")
    def _outcomes_of_the_table(self) -> Self:
        """Driver-fault probabilities only for the outcomes each architecture has, and
        summing to at most 1."""
        for name, behaviour in BEHAVIOURS.items():
            arch = self.get(name)
            probabilities = {key: getattr(arch, key) for key in DRIVER_FAULT_PROBABILITIES}
            for key, message in outcome_probability_errors(behaviour, probabilities):
                raise invalid(message, f"{name}.{key}")
        return self

    def get(self, name: str) -> ArchitectureConfig:
        """The numbers of architecture ``name``."""
        if name not in ARCHITECTURES:
            raise KeyError(name)
        return getattr(self, name)


class DriverConfig(_Model):
    """A driver type, its fault process and the share of hosts that have it."""

    name: str = Field(min_length=1)
    fault: Dist
    share: Probability = 1.0


WHOLE_REPAIR = "repair"
"""``hardware.hands_on: repair``: the operator is busy for the whole repair."""


def _hands_on(value: Any) -> Distribution | str:
    if isinstance(value, str) and value.strip().lower() == WHOLE_REPAIR:
        return WHOLE_REPAIR
    try:
        return parse_distribution(value)
    except DistributionError as err:
        raise invalid(f"{err.reason}, or the word {WHOLE_REPAIR!r}", err.key) from None


HandsOn = Annotated[
    Distribution | str,
    PlainValidator(_hands_on, json_schema_input_type=dict[str, Any] | str | float),
    PlainSerializer(lambda v: v if isinstance(v, str) else v.to_yaml()),
]
"""The hands-on part of a hardware repair: a distribution, or ``repair`` for all of it."""


class HardwareConfig(_Model):
    """Host hardware faults and their repair. An operator is busy for the ``hands_on``
    part (at most the repair); the host waits out the rest (parts) holding nobody."""

    fault: Dist = parse_distribution({"dist": "exponential", "mean": "1y"})
    repair: Dist = parse_distribution({"dist": "exponential", "mean": "3d"})
    hands_on: HandsOn = parse_distribution("2h")  # assumption (parameters.md)

    @property
    def hands_on_is_whole_repair(self) -> bool:
        """Machine-repairman semantics: the operator holds the host's whole repair."""
        return self.hands_on == WHOLE_REPAIR


class NetworkConfig(_Model):
    """Top-of-rack, spine and power-feed faults and their repairs (operator tasks)."""

    tor_fault: Dist = parse_distribution({"dist": "exponential", "mean": "19.5y"})
    tor_repair: Dist = parse_distribution({"dist": "uniform", "low": "1h", "high": "6h"})
    spine_fault: Dist = parse_distribution({"dist": "exponential", "mean": "9.5y"})
    spine_repair: Dist = parse_distribution({"dist": "uniform", "low": "1h", "high": "6h"})
    power_fault: Dist = parse_distribution({"dist": "exponential", "mean": "10y"})
    power_repair: Dist = parse_distribution("6h")


BoostedKind = Literal["tor", "spine", "power", "storage"]
"""The kinds of component whose faults rare-event acceleration can boost."""


class RareEventsConfig(_Model):
    """Rare-event acceleration (`twin.rare_events`, ``twin run --rare-events``): each kind
    of component named draws its faults at ``boost`` times its hazard, and every
    replication is weighted by its likelihood ratio, so estimates stay unbiased."""

    boost: dict[BoostedKind, Annotated[float, Field(ge=1, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )


class AdmissionControlConfig(_Model):
    """The capacity HA keeps free in each cluster for restarts: ``host_failures`` reserves
    the cpu and memory of the ``host_failures_tolerated`` largest hosts (slot-free, the
    "percentage" style), ``percentage`` reserves ``cpu_reserved`` of the cluster's cpu.
    Placing guests into the reserve is refused; HA restarts may use it."""

    policy: Literal["none", "host_failures", "percentage"] = "host_failures"
    host_failures_tolerated: int = Field(1, ge=0)
    cpu_reserved: Probability = 0.25


class StorageConfig(_Model):
    """Shared datastores, one per pod or per cluster: while one is down (all paths down)
    its guests are unavailable though their hosts run; its repair is an operator task,
    ticketed with the network's priority."""

    fault: Dist = parse_distribution("never")
    repair: Dist = parse_distribution({"dist": "exponential", "mean": "3d"})
    scope: Literal["pod", "cluster"] = "pod"


class HAConfig(_Model):
    """High-availability restart of a crashed (or, with ``power_off``, isolated) host's
    guests elsewhere in its cluster."""

    enabled: bool = True
    restart_delay: Dist = parse_distribution("15s")
    retries: list[PositiveDuration] = Field(
        default_factory=lambda: [2 / 60, 6 / 60, 14 / 60, 30 / 60],
        description="when HA tries again to place the guests it could not, after its first "
        "attempt (increasing; empty: never); then they wait for their host",
    )
    admission_control: AdmissionControlConfig = Field(default_factory=AdmissionControlConfig)
    isolation_response: Literal["leave_on", "power_off"] = "leave_on"

    @field_validator("retries")
    @classmethod
    def _retries_increase(cls, retries: list[float]) -> list[float]:
        if any(later <= earlier for earlier, later in itertools.pairwise(retries)):
            raise ValueError("retries must increase (each is a time after the first attempt)")
        return retries


class LiveMigrationConfig(_Model):
    """Live migration: a guest moves in memory_gb x 8 / bandwidth_gbps seconds; it fails
    with ``fail_prob`` (the guest stays on its source), and a completed one stuns the
    guest for ``stun_time`` (downtime, cause ``migration``)."""

    bandwidth_gbps: float = Field(10, gt=0)
    max_concurrent: int = Field(4, ge=1)
    fail_prob: Probability = 0.0
    stun_time: Dist = parse_distribution({"dist": "uniform", "low": "0.06s", "high": "0.21s"})


class DRSConfig(_Model):
    """Load balancing inside each cluster: every ``every``, a cluster whose max-min cpu
    load share (used / capacity of its serving hosts) exceeds ``imbalance`` is rebalanced
    by live migrations."""

    enabled: bool = False
    every: PositiveDuration = 1.0
    imbalance: Probability = 0.2


class GuestsConfig(_Model):
    """The ordinary guests placed on every host."""

    per_host: int = Field(20, ge=0)
    cpu: float = Field(2, gt=0)
    memory_gb: float = Field(16, gt=0)
    boot_time: Dist = parse_distribution("30s")
    placement: Literal["spread", "pack"] = "spread"
    ha: HAConfig = Field(default_factory=HAConfig)
    live_migration: LiveMigrationConfig = Field(default_factory=LiveMigrationConfig)
    drs: DRSConfig = Field(default_factory=DRSConfig)


class ServiceConfig(_Model):
    """A replica group: up while at least ``quorum`` replicas are up and reachable.

    ``quorum`` defaults to a majority of ``replicas``.
    """

    name: str = Field(min_length=1)
    replicas: int = Field(3, ge=1)
    quorum: int = Field(2, ge=1)
    anti_affinity: Literal["host", "rack", "none"] = "host"
    cpu: float = Field(2, gt=0)
    memory_gb: float = Field(16, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _majority_quorum(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "quorum" not in data:
            replicas = data.get("replicas", 3)
            if isinstance(replicas, int) and not isinstance(replicas, bool):
                return {**data, "quorum": max(1, replicas // 2 + 1)}
        return data

    @model_validator(mode="after")
    def _quorum_within_replicas(self) -> Self:
        if self.quorum > self.replicas:
            raise invalid(
                f"quorum {self.quorum} exceeds replicas {self.replicas}: the service can "
                "never be up",
                "quorum",
            )
        return self


class OperatorsConfig(_Model):
    """The operator team that works the ticket queue."""

    count: int = Field(4, ge=0)
    response_time: Dist = parse_distribution({"dist": "lognormal", "median": "30m", "sigma": 0.5})
    oncall_response_time: Dist = parse_distribution(
        {"dist": "lognormal", "median": "90m", "sigma": 0.5}
    )
    shift: Literal["24x7", "business_hours"] = "24x7"
    error_prob: Probability = 0.01
    per_site: bool = Field(
        False,
        description="each site has its own team of `count` and rolls its own update campaigns",
    )


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WINDOW = re.compile(
    r"^(?P<day>[a-z]+)\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})$"
)
WINDOW_HINT = "expected 'always', 'daily HH:MM-HH:MM' or a weekday like 'Sat 02:00-06:00'"


class Window(NamedTuple):
    """A recurring maintenance window; simulation hour 0 is a Monday 00:00.

    ``weekday`` is 0 (Monday) to 6 (Sunday), or None for every day; ``end`` < ``start``
    means the window runs past midnight.
    """

    weekday: int | None
    start: float
    end: float

    @property
    def period(self) -> float:
        """Hours between two openings."""
        return 24.0 if self.weekday is None else 168.0

    @property
    def length(self) -> float:
        """Hours the window stays open."""
        return self.end - self.start if self.end > self.start else self.end + 24 - self.start

    def _phase(self, t: float) -> float:
        opening = self.start + 24 * (self.weekday or 0)
        return (t - opening) % self.period

    def is_open(self, t: float) -> bool:
        """Whether hour ``t`` falls inside the window."""
        return self._phase(t) < self.length

    def next_open(self, t: float) -> float:
        """``t`` if the window is open then, else the hour it next opens."""
        phase = self._phase(t)
        return t if phase < self.length else t + self.period - phase


def parse_window(text: str) -> Window | None:
    """A window from its YAML form; None for ``always``. Raises ``ValueError``."""
    spec = " ".join(text.split()).lower()
    if spec == "always":
        return None
    match = _WINDOW.match(spec)
    if match is None:
        raise ValueError(f"{WINDOW_HINT} (got {text!r})")
    day = match["day"]
    weekday = next((i for i, name in enumerate(WEEKDAYS) if day in (name, name[:3])), None)
    if weekday is None and day != "daily":
        raise ValueError(f"unknown day {day!r}: {WINDOW_HINT}")
    hours = []
    for h, m in ((match["h1"], match["m1"]), (match["h2"], match["m2"])):
        hour, minute = int(h), int(m)
        if minute >= 60 or hour > 24 or (hour == 24 and minute > 0):
            raise ValueError(f"{h}:{m} is not a time of day (in {text!r})")
        hours.append(hour + minute / 60)
    start, end = hours
    if start == 24 or start == end:
        raise ValueError(f"the window never opens or never closes (in {text!r}); use 'always'")
    return Window(weekday, start, end)


def _batch(value: Any) -> int | float:
    hint = "expected a fraction of hosts in (0, 1], a percentage like 10% or a host count >= 1"
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            value = float(value.strip()[:-1]) / 100
        except ValueError:
            raise invalid(f"{hint} (got {value!r})") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{hint} (got {value!r})")
    if isinstance(value, int):
        if value < 1:
            raise invalid(f"{hint} (got {value})")
        return value
    if not 0 < value <= 1:
        raise invalid(f"{hint} (got {value:g})")
    return value


Batch = Annotated[int | float, PlainValidator(_batch, json_schema_input_type=int | float | str)]
"""Hosts per batch of an update campaign: an int is a count, a float in (0, 1] a fraction."""


class FreezeConfig(_Model):
    """A yearly change freeze, ``from`` and ``to`` calendar days (MM-DD, inclusive; ``to``
    before ``from`` runs across New Year): no update batch starts inside."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    first: str = Field(alias="from")
    last: str = Field(alias="to")

    @field_validator("first", "last")
    @classmethod
    def _month_day(cls, value: Any) -> str:
        try:
            parse_month_day(value)
        except ValueError as err:
            raise invalid(str(err)) from None
        return str(value)

    @property
    def spec(self) -> Freeze:
        return Freeze(parse_month_day(self.first), parse_month_day(self.last))


class CanaryConfig(_Model):
    """The first batch of each release is ``hosts`` hosts; the campaign then waits
    ``soak`` and halts the release if any of them failed (rolled back)."""

    hosts: int = Field(1, ge=1)
    soak: PositiveDuration = 24.0


class UpdateConfig(_Model):
    """A rolling update campaign that repeats ``every`` so often, batch by batch."""

    name: str = Field(min_length=1)
    architecture: ArchitectureOrAll = "all"
    scope: Literal[(*UPDATE_SCOPES, REJUVENATION)]  # type: ignore[valid-type]
    driver: str | None = Field(None, description="for scope driver: which driver (None = all)")
    every: PositiveDuration
    start: Duration = 0.0
    batch: Batch = 1
    window: str = "always"
    drain: bool = True
    fail_prob: Probability = 0.0
    regression_prob: Probability = 0.0
    regression_fault_multiplier: float = Field(1.0, ge=1)
    canary: CanaryConfig | None = None
    freeze: list[FreezeConfig] = Field(default_factory=list)

    @field_validator("window")
    @classmethod
    def _window_parses(cls, value: str) -> str:
        try:
            parse_window(value)
        except ValueError as err:
            raise invalid(str(err)) from None
        return value

    @model_validator(mode="after")
    def _driver_only_for_driver_scope(self) -> Self:
        if self.driver is not None and self.scope != "driver":
            raise invalid("only an update of scope driver names a driver", "driver")
        return self

    @property
    def window_spec(self) -> Window | None:
        """The parsed window, None for ``always``."""
        return parse_window(self.window)

    def batch_size(self, n_hosts: int) -> int:
        """Hosts updated together out of ``n_hosts`` in scope: at least 1, at most all."""
        if isinstance(self.batch, int):
            wanted = self.batch
        else:
            wanted = math.ceil(self.batch * n_hosts - 1e-9)
        return max(1, min(wanted, n_hosts))


class SloConfig(_Model):
    """A service-level objective: availability ``target`` per calendar ``period``, for each
    guest or each service (``scope``)."""

    target: float = Field(0.9995, gt=0, le=1)
    period: Period = "month"
    scope: Literal["guest", "service"] = "guest"


NonNegative = Annotated[float, Field(ge=0)]


class CostsConfig(_Model):
    """What the fleet costs, in one currency unit: downtime per guest-hour, operators per
    operator-hour (paid whether busy or not), and per host-year by architecture (an
    architecture left out costs nothing)."""

    downtime_per_guest_hour: NonNegative = 0.0
    operator_per_hour: NonNegative = 0.0
    host_per_year: dict[Architecture, NonNegative] = Field(default_factory=dict)
    license_per_host_year: dict[Architecture, NonNegative] = Field(default_factory=dict)


def _default_drivers() -> list[DriverConfig]:
    return [
        DriverConfig(name="nic", fault=parse_distribution({"dist": "exponential", "mean": 4000})),
        DriverConfig(
            name="storage", fault=parse_distribution({"dist": "exponential", "mean": 4000})
        ),
        DriverConfig(
            name="gpu", fault=parse_distribution({"dist": "exponential", "mean": 2000}), share=0.1
        ),
    ]


class FleetConfig(_Model):
    """A whole fleet: topology, hosts and their architectures, faults, guests, operators."""

    name: str = Field(min_length=1)
    horizon: PositiveDuration = 8760.0
    seed: int = Field(42, ge=0)
    replications: int = Field(1, ge=1)
    sample_every: PositiveDuration = 24.0
    start_date: dt.date = Field(
        DEFAULT_START, description="the calendar day of hour 0 (default a Monday)"
    )
    topology: TopologyConfig = Field(default_factory=TopologyConfig)
    hosts: HostsConfig = Field(default_factory=HostsConfig)
    architectures: ArchitecturesConfig = Field(default_factory=ArchitecturesConfig)
    drivers: list[DriverConfig] = Field(default_factory=_default_drivers)
    hardware: HardwareConfig = Field(default_factory=HardwareConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    guests: GuestsConfig = Field(default_factory=GuestsConfig)
    services: list[ServiceConfig] = Field(default_factory=list)
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig)
    updates: list[UpdateConfig] = Field(default_factory=list)
    slo: SloConfig | None = None
    costs: CostsConfig | None = None
    rare_events: RareEventsConfig | None = None

    @field_validator("drivers")
    @classmethod
    def _driver_names_unique(cls, drivers: list[DriverConfig]) -> list[DriverConfig]:
        _unique_names(drivers, "driver")
        return drivers

    @field_validator("services")
    @classmethod
    def _service_names_unique(cls, services: list[ServiceConfig]) -> list[ServiceConfig]:
        _unique_names(services, "service")
        return services

    @field_validator("updates")
    @classmethod
    def _update_names_unique(cls, updates: list[UpdateConfig]) -> list[UpdateConfig]:
        _unique_names(updates, "update")
        return updates

    @model_validator(mode="after")
    def _guests_fit_a_host(self) -> Self:
        g, h = self.guests, self.hosts
        if g.per_host * g.cpu > h.cpu:
            raise invalid(
                f"{g.per_host} guests x {g.cpu:g} cpu do not fit a host of {h.cpu:g} cpu",
                "guests.per_host",
            )
        if g.per_host * g.memory_gb > h.memory_gb:
            raise invalid(
                f"{g.per_host} guests x {g.memory_gb:g} GB do not fit a host of "
                f"{h.memory_gb:g} GB memory",
                "guests.per_host",
            )
        for i, service in enumerate(self.services):
            if service.cpu > h.cpu or service.memory_gb > h.memory_gb:
                raise invalid(
                    f"a replica ({service.cpu:g} cpu, {service.memory_gb:g} GB) does not fit "
                    f"a host ({h.cpu:g} cpu, {h.memory_gb:g} GB)",
                    f"services.{i}",
                )
        return self

    @model_validator(mode="after")
    def _slo_scope_exists(self) -> Self:
        """An SLO of services needs services. (A horizon without a complete calendar
        period is allowed: its SLO metrics are absent, `twin.slo`.)"""
        if self.slo is not None and self.slo.scope == "service" and not self.services:
            raise invalid("scope 'service' needs at least one service in `services`",
                          "slo.scope")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _updates_name_known_drivers(self) -> Self:
        known = self.driver_names
        for i, update in enumerate(self.updates):
            if update.driver is not None and update.driver not in known:
                raise invalid(
                    f"unknown driver {update.driver!r} (known: {', '.join(known) or 'none'})",
                    f"updates.{i}.driver",
                )
        return self

    @model_validator(mode="after")
    def _boosted_faults_have_a_hazard(self) -> Self:
        if self.rare_events is None:
            return self
        processes = self.component_processes
        for kind, factor in self.rare_events.boost.items():
            try:
                processes[kind][0].hazard_scaled(factor)
            except ValueError as err:
                raise invalid(
                    f"{kind} faults cannot be boosted: {err} (use exponential, "
                    "weibull, lognormal or gamma)",
                    f"rare_events.boost.{kind}",
                ) from err
        return self

    @property
    def component_processes(self) -> dict[str, tuple[Dist, Dist]]:
        """Fault and repair of each kind of failing component (``tor``, ``spine``,
        ``power``, ``storage``: the topology's node kinds)."""
        net = self.network
        return {
            "tor": (net.tor_fault, net.tor_repair),
            "spine": (net.spine_fault, net.spine_repair),
            "power": (net.power_fault, net.power_repair),
            "storage": (self.storage.fault, self.storage.repair),
        }

    @property
    def driver_names(self) -> list[str]:
        """Names of the configured driver types, in file order."""
        return [driver.name for driver in self.drivers]

    def driver(self, name: str) -> DriverConfig:
        """The driver type called ``name``."""
        for driver in self.drivers:
            if driver.name == name:
                return driver
        raise KeyError(name)


class _Injection(_Model):
    at: Duration


class DriverRegression(_Injection):
    """A bad driver release: ``share`` of the hosts with ``driver`` fault ``k`` times as often."""

    action: Literal["driver_regression"]
    driver: str
    share: Probability = 1.0
    fault_multiplier: float = Field(ge=1)


class PowerLoss(_Injection):
    """A rack loses power; back after ``duration``, or after a normal power repair if None."""

    action: Literal["power_loss"]
    rack: str
    duration: Dist | None = None


class TorFault(_Injection):
    """A rack's top-of-rack switch fails; back after ``duration`` or a normal ToR repair."""

    action: Literal["tor_fault"]
    rack: str
    duration: Dist | None = None


class HostCrash(_Injection):
    """One host crashes, attributed to ``cause``."""

    action: Literal["host_crash"]
    host: str
    cause: Literal["hypervisor", "driver", "parent_os", "hardware"] = "hypervisor"


class StartCampaign(_Injection):
    """An update campaign starts now, outside its cadence."""

    action: Literal["start_campaign"]
    update: str


class ConvertArchitecture(_Injection):
    """``share`` of the hosts not yet on architecture ``to`` are converted to it."""

    action: Literal["convert_architecture"]
    share: Probability
    to: Architecture


Injection = Annotated[
    DriverRegression | PowerLoss | TorFault | HostCrash | StartCampaign | ConvertArchitecture,
    Field(discriminator="action"),
]
"""A timed event of a scenario, told apart by its ``action``."""


def _in_time_order(injections: list[Any]) -> list[Any]:
    for i in range(1, len(injections)):
        if injections[i].at < injections[i - 1].at:
            raise invalid("injections must be in time order", f"{i}.at")
    return injections


class Arm(BaseModel):
    """One arm of a scenario: fleet overrides (any config key), and two keys about the
    experiment itself: ``injections`` replaces the scenario's timed injections in this arm
    (``[]``: none, as in a control arm), ``control`` names the arm it is compared against
    (default: the first arm)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    injections: list[Injection] | None = None
    control: str | None = None

    @field_validator("injections")
    @classmethod
    def _injections_in_time_order(cls, injections: list[Any] | None) -> list[Any] | None:
        return None if injections is None else _in_time_order(injections)

    @property
    def overrides(self) -> dict[str, Any]:
        """The fleet keys this arm overrides (deep-merged into the scenario's fleet)."""
        return dict(self.model_extra or {})


class Scenario(_Model):
    """An experiment on a fleet: overrides, timed injections, arms, a sweep grid, and the
    metrics whose differences from the control answer its question (``verdict``)."""

    name: str = Field(min_length=1)
    question: str = ""
    base: str = Field(description="the fleet config, relative to the scenario file")
    overrides: dict[str, Any] = Field(default_factory=dict)
    injections: list[Injection] = Field(default_factory=list)
    arms: dict[str, Arm] = Field(default_factory=dict)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    verdict: list[str] = Field(default_factory=lambda: ["guest_downtime_min_per_year"])

    @field_validator("injections")
    @classmethod
    def _injections_in_time_order(cls, injections: list[Any]) -> list[Any]:
        return _in_time_order(injections)

    @field_validator("sweep")
    @classmethod
    def _sweep_grid(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in sweep.items():
            if not key or any(not part for part in key.split(".")):
                raise invalid("expected a dotted key like operators.count", key)
            if not values:
                raise invalid("expected a non-empty list of values", key)
        return sweep

    @field_validator("verdict")
    @classmethod
    def _verdict_metrics(cls, verdict: list[str]) -> list[str]:
        if not verdict:
            raise invalid("expected a non-empty list of metric names")
        return verdict

    @model_validator(mode="after")
    def _controls_are_arms(self) -> Self:
        names = list(self.arms)
        for name, arm in self.arms.items():
            if arm.control is not None and arm.control not in names:
                known = ", ".join(n for n in names if n != name)
                raise invalid(f"unknown arm {arm.control!r} (known: {known})",
                              f"arms.{name}.control")  # fmt: skip
            if arm.control == name:
                raise invalid("an arm cannot be its own control", f"arms.{name}.control")
        return self

    def arm_injections(self, arm: str | None) -> list[Injection]:
        """The timed injections of an arm: its own list if it has one, else the scenario's."""
        own = self.arms[arm].injections if arm is not None else None
        return list(self.injections if own is None else own)

    def control_of(self, arm: str) -> str | None:
        """The arm ``arm`` is compared against: its ``control``, else the first arm (which
        itself has none)."""
        first = next(iter(self.arms), None)
        own = self.arms[arm].control
        return own if own is not None else (None if arm == first else first)
