"""The twin's shared words: why something went down (`Cause`).

Causes are the keys of SPEC 4's ``incidents`` counts and of incident logs; every module
names them through this enum (a `StrEnum`, so a cause is also its plain string in JSON,
Parquet and logs). Host, guest, operator and component states live with their agents
(`twin.agents`); architecture names come from the behaviour table
(`twin.architectures.ARCHITECTURES`).
"""

from __future__ import annotations

from enum import StrEnum


class Cause(StrEnum):
    """Why hosts or guests went down (SPEC 4)."""

    DRIVER = "driver"
    HYPERVISOR = "hypervisor"
    PARENT_OS = "parent_os"
    HARDWARE = "hardware"
    NETWORK = "network"
    POWER = "power"
    STORAGE = "storage"
    AGING = "aging"
    GUEST_PROCESS = "guest_process"
    MIGRATION = "migration"
    UPDATE = "update"
    OPERATOR_ERROR = "operator_error"


CAUSES: tuple[Cause, ...] = tuple(Cause)
PLANNED_CAUSES = frozenset({Cause.UPDATE})
"""Causes of planned downtime (`planned_downtime_min_per_year`)."""
