"""What each hypervisor architecture does with a fault, an update or a reboot.

This is the one place that knows the difference between a monolithic
(ESXi-style) and a microkernel (Hyper-V-style) host. Agents ask the table what
an event means and carry it out; they never branch on the architecture name.
The *numbers* (fault rates, reboot times, probabilities) are config; the table
holds only the qualitative semantics of SPEC section 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from twin.config.schema import ArchitectureConfig


class FaultEffect(Enum):
    """What a fault does to a host and its guests."""

    HOST_CRASH = "host_crash"  # host and every guest down until detection and reboot
    ESCALATION = "escalation"  # host degraded for a grace window, then reboots by itself
    SERVICE_RESTART = "service_restart"  # host degraded while a parent-partition service restarts
    DRIVER_RESET = "driver_reset"  # the driver resets inside the hypervisor; nothing else happens


class UpdateEffect(Enum):
    """What applying an update does to a host."""

    REBOOT = "reboot"
    SERVICE_RESTART = "service_restart"


@dataclass(frozen=True)
class Behaviour:
    """The qualitative semantics of one architecture.

    ``driver_fault_severe`` is what a driver fault does when it is severe (with
    probability ``driver_fault_host_crash_prob``), ``driver_fault_contained`` what
    it does otherwise. ``has_parent_os`` says whether a parent partition exists
    whose crash is a host crash. ``image_includes_drivers`` says whether a
    hypervisor update replaces the drivers too (they ship inside the image).
    """

    name: str
    driver_fault_severe: FaultEffect
    driver_fault_contained: FaultEffect
    has_parent_os: bool
    image_includes_drivers: bool
    description: str


BEHAVIOURS: dict[str, Behaviour] = {
    "monolithic": Behaviour(
        name="monolithic",
        driver_fault_severe=FaultEffect.HOST_CRASH,
        driver_fault_contained=FaultEffect.DRIVER_RESET,
        has_parent_os=False,
        image_includes_drivers=True,
        description="drivers inside the hypervisor: a driver fault panics the host",
    ),
    "microkernel": Behaviour(
        name="microkernel",
        driver_fault_severe=FaultEffect.ESCALATION,
        driver_fault_contained=FaultEffect.SERVICE_RESTART,
        has_parent_os=True,
        image_includes_drivers=False,
        description="drivers in a parent partition: a driver fault restarts a service",
    ),
}


def driver_fault_effect(behaviour: Behaviour, severe: bool, grace_hours: float) -> FaultEffect:
    """The effect of one driver fault; an escalation with no grace window is a crash."""
    effect = behaviour.driver_fault_severe if severe else behaviour.driver_fault_contained
    if effect is FaultEffect.ESCALATION and grace_hours <= 0.0:
        return FaultEffect.HOST_CRASH
    return effect


def update_effect(arch: ArchitectureConfig, scope: str) -> UpdateEffect:
    """Whether an update of ``scope`` (driver, hypervisor, parent_os) reboots the host."""
    needs_reboot = getattr(arch.update_requires_reboot, scope)
    return UpdateEffect.REBOOT if needs_reboot else UpdateEffect.SERVICE_RESTART
