"""What each hypervisor architecture does with a fault, an update or a reboot.

This is the one place that knows the difference between a monolithic (ESXi-style), a
microkernel (Hyper-V-style) and a kvm (Linux-as-hypervisor) host. Agents look up what an
event means here and carry it out with the verb the table names; they never branch on the
architecture's name. The *numbers* (fault rates, reboot times, probabilities) are config;
the table holds the qualitative facts of SPEC section 1, a few of which are also config
defaults a user may override (`Behaviour.config_facts`).

Adding an architecture is adding a `Behaviour` to `BEHAVIOURS` and its numeric defaults
to ``configs/default.yaml`` (and the schema's defaults, which mirror it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.config.schema import ArchitectureConfig


class FaultEffect(Enum):
    """What a driver fault does to a host and its guests."""

    HOST_CRASH = "host_crash"  # host and every guest down until detection and reboot
    ESCALATION = "escalation"  # host degraded for a grace window, then reboots by itself
    SERVICE_RESTART = "service_restart"  # host degraded while a parent-partition service restarts
    DRIVER_RESET = "driver_reset"  # the driver resets inside the hypervisor; nothing else happens


class UpdateEffect(Enum):
    """What applying an update does to a host."""

    REBOOT = "reboot"  # drained first when asked, then down for a reboot
    SERVICE_RESTART = "service_restart"  # degraded while the updated service restarts
    LIVE_PATCH = "live_patch"  # applied to the running kernel: nothing to see


UPDATE_SCOPES = ("driver", "hypervisor", "parent_os")
"""Update scopes that ship something new; whether each reboots is a config fact."""
REJUVENATION = "reboot"
"""The update scope that ships nothing: a planned reboot (time-based rejuvenation)."""

CRASH_PROB = "driver_fault_host_crash_prob"
ESCALATION_PROB = "driver_fault_escalation_prob"
DRIVER_FAULT_PROBABILITIES = (CRASH_PROB, ESCALATION_PROB)
"""Config keys of the probabilities of a driver fault's drawn outcomes, in draw order."""


@dataclass(frozen=True)
class Behaviour:
    """The qualitative semantics of one architecture.

    * ``driver_fault_outcomes``: the outcomes a driver fault may have besides the
      contained one, each with the config key of its probability, in draw order (one
      uniform draw ``u`` picks the first whose cumulative probability exceeds ``u``);
      ``driver_fault_contained`` is what the rest of the faults do. An architecture has no
      outcome but these: a probability for another is a config error.
    * ``crash_sources``: host-level fault processes besides the hypervisor's and the
      hardware's that crash the host, as (config key, cause): a parent partition's OS.
    * ``guest_processes``: each guest has a device-emulation process of its own whose crash
      (``guest_process_fault``) takes down that guest alone.
    * ``image_includes_drivers``: a hypervisor update replaces the drivers too.
    * ``update_reboots``: the update scopes that reboot the host by default; any other
      update (or one the config says needs no reboot) does ``update_in_place``.
    * ``crash_auto_reboot``: after a crash the host reboots by itself once detected.
    * ``cluster_limit``: most hosts one HA cluster may hold (the product's limit).
    """

    name: str
    driver_fault_outcomes: tuple[tuple[str, FaultEffect], ...]
    driver_fault_contained: FaultEffect
    update_reboots: frozenset[str]
    update_in_place: UpdateEffect
    crash_auto_reboot: bool
    image_includes_drivers: bool
    cluster_limit: int
    description: str
    crash_sources: tuple[tuple[str, Cause], ...] = ()
    guest_processes: bool = False

    @property
    def has_parent_os(self) -> bool:
        return any(cause is Cause.PARENT_OS for _, cause in self.crash_sources)

    def config_facts(self) -> dict[str, Any]:
        """The facts of this table that are config defaults a user may override."""
        return {
            "crash_auto_reboot": self.crash_auto_reboot,
            "update_requires_reboot": {
                scope: scope in self.update_reboots for scope in UPDATE_SCOPES
            },
        }


BEHAVIOURS: dict[str, Behaviour] = {
    "monolithic": Behaviour(
        name="monolithic",
        driver_fault_outcomes=((CRASH_PROB, FaultEffect.HOST_CRASH),),  # a PSOD, or a reset
        driver_fault_contained=FaultEffect.DRIVER_RESET,
        update_reboots=frozenset(UPDATE_SCOPES),  # the image ships everything (SPEC 1)
        update_in_place=UpdateEffect.SERVICE_RESTART,
        crash_auto_reboot=False,  # assumption: a PSOD stays on screen until an operator acts
        image_includes_drivers=True,
        cluster_limit=96,  # vSphere 8 configuration maximums
        description="drivers inside the hypervisor: a driver fault panics the host",
    ),
    "microkernel": Behaviour(
        name="microkernel",
        # a kernel-mode driver crash in the root partition is a bugcheck; the hypervisor may
        # also recover and ask for a reboot with time to move guests; else a service restart
        driver_fault_outcomes=(
            (CRASH_PROB, FaultEffect.HOST_CRASH),
            (ESCALATION_PROB, FaultEffect.ESCALATION),
        ),
        driver_fault_contained=FaultEffect.SERVICE_RESTART,
        update_reboots=frozenset({"hypervisor", "parent_os"}),  # drivers: in the parent
        update_in_place=UpdateEffect.SERVICE_RESTART,
        crash_auto_reboot=True,  # assumption: Windows restarts after a bugcheck by default
        image_includes_drivers=False,
        cluster_limit=64,  # Windows Server failover cluster
        description="drivers in a parent partition: a driver fault restarts a service",
        crash_sources=(("parent_os_fault", Cause.PARENT_OS),),
    ),
    "kvm": Behaviour(
        name="kvm",
        # drivers live in the Linux kernel: a panic, or a reset
        driver_fault_outcomes=((CRASH_PROB, FaultEffect.HOST_CRASH),),
        driver_fault_contained=FaultEffect.DRIVER_RESET,
        update_reboots=frozenset({"driver", "parent_os"}),  # kernel fixes: live-patched
        update_in_place=UpdateEffect.LIVE_PATCH,
        crash_auto_reboot=True,  # assumption: kernel.panic=N, the common distribution default
        image_includes_drivers=False,
        # assumption: no hard product limit (Pacemaker/corosync documents about 32 nodes
        # as tested; OpenStack cells are larger); 64 as the microkernel's
        cluster_limit=64,
        description="Linux is the hypervisor: in-kernel drivers, a device-emulation "
        "process per guest, kernel fixes live-patched",
        guest_processes=True,
    ),
}

ARCHITECTURES: tuple[str, ...] = tuple(BEHAVIOURS)
"""The architectures a host can run, in the table's order."""

MONOLITHIC, MICROKERNEL, KVM = ARCHITECTURES
"""Names of the table's rows, for code that is about one of them (validation cases)."""


def driver_fault_outcome(
    behaviour: Behaviour, probabilities: Mapping[str, float], u: float
) -> FaultEffect:
    """The drawn outcome of one driver fault, given a uniform draw ``u`` in [0, 1): the first
    of the architecture's outcomes whose cumulative probability (``probabilities`` by config
    key) exceeds ``u``, else the contained outcome."""
    cumulative = 0.0
    for key, outcome in behaviour.driver_fault_outcomes:
        cumulative += probabilities[key]
        if u < cumulative:
            return outcome
    return behaviour.driver_fault_contained


def with_grace(effect: FaultEffect, grace_hours: float) -> FaultEffect:
    """An escalation with no grace window is a crash (SPEC 3)."""
    if effect is FaultEffect.ESCALATION and grace_hours <= 0.0:
        return FaultEffect.HOST_CRASH
    return effect


def driver_fault_effect(
    behaviour: Behaviour, probabilities: Mapping[str, float], u: float, grace_hours: float
) -> FaultEffect:
    """What one driver fault does: its drawn outcome, with the grace window applied."""
    return with_grace(driver_fault_outcome(behaviour, probabilities, u), grace_hours)


def outcome_probability_errors(
    behaviour: Behaviour, probabilities: Mapping[str, float]
) -> list[tuple[str, str]]:
    """What is wrong with an architecture's driver-fault probabilities, as (key, message):
    a probability for an outcome the architecture lacks, or a sum above 1."""
    own = {key for key, _ in behaviour.driver_fault_outcomes}
    errors = [
        (key, f"{behaviour.name} has no such driver-fault outcome (its outcomes: "
              f"{', '.join(sorted(own))}); expected 0 (got {probabilities[key]:g})")
        for key in DRIVER_FAULT_PROBABILITIES
        if key not in own and probabilities.get(key, 0.0) > 0.0
    ]  # fmt: skip
    total = math.fsum(probabilities.get(key, 0.0) for key in own)
    if total > 1.0 + 1e-12:
        last = [key for key, _ in behaviour.driver_fault_outcomes][-1]
        terms = " + ".join(key for key, _ in behaviour.driver_fault_outcomes)
        errors.append((last, f"{terms} must sum to at most 1 (got {total:g})"))
    return errors


def update_effect(behaviour: Behaviour, arch: ArchitectureConfig, scope: str) -> UpdateEffect:
    """What an update of ``scope`` (driver, hypervisor, parent_os, reboot) does: a reboot
    when it is a planned reboot or the config says it needs one, otherwise what this
    architecture does in place."""
    if scope == REJUVENATION or getattr(arch.update_requires_reboot, scope):
        return UpdateEffect.REBOOT
    return behaviour.update_in_place
