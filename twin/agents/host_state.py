"""A host's states (SPEC 2) and what each means for its share of the fleet's levels."""

from __future__ import annotations

from enum import StrEnum


class HostState(StrEnum):
    RUNNING = "running"
    DEGRADED = "degraded"
    DRAINING = "draining"
    MAINTENANCE = "maintenance"
    REBOOTING = "rebooting"
    CRASHED = "crashed"
    HW_FAILED = "hw_failed"


UP_STATES = frozenset({HostState.RUNNING, HostState.DEGRADED, HostState.DRAINING})
RUNNING_STATES = frozenset({HostState.RUNNING, HostState.DEGRADED})  # host_availability
STATE_FLAGS = {  # what `Host.refresh` asks of a state: up, running, degraded, draining
    state: (state in UP_STATES, state in RUNNING_STATES, state is HostState.DEGRADED,
            state is HostState.DRAINING)
    for state in HostState
}  # fmt: skip
