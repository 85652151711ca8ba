"""Shared infrastructure that fails and is repaired: top-of-rack and spine switches,
power feeds. Their outages are correlated by the topology: every host behind a
failed switch is unreachable, every host fed only by a failed feed loses power."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import mesa

from twin.config import Distribution

if TYPE_CHECKING:
    from twin.calendar import Timer
    from twin.fleet import Fleet


class ComponentState(StrEnum):
    UP = "up"
    DOWN = "down"


class Component(mesa.Agent):
    """A switch or a power feed of the fleet graph, with its fault and repair."""

    model: Fleet

    def __init__(
        self, model: Fleet, name: str, kind: str, fault: Distribution, repair: Distribution
    ) -> None:
        super().__init__(model)
        self.name = name
        self.kind = kind
        self.fault = fault
        self.repair = repair
        self.state = ComponentState.UP
        self._clock: Timer | None = None

    @property
    def cause(self) -> str:
        return "power" if self.kind == "power" else "network"

    def start_clock(self) -> None:
        self._clock = self.model.after(self.fault, self.fail)

    def fail(self, repair_hours: float | None = None) -> None:
        """Go down now; a repair ticket opens at once, or (for an injected outage of known
        length) the component comes back by itself after ``repair_hours``."""
        if self.state is ComponentState.DOWN:
            return
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None
        self._set(ComponentState.DOWN)
        if repair_hours is None:
            self.model.operators.request_repair(self, self.model.priority_of(self))
        else:
            self.model.after_hours(repair_hours, self.restore)

    def restore(self) -> None:
        if self.state is ComponentState.UP:
            return
        self._set(ComponentState.UP)
        self.start_clock()

    def _set(self, state: ComponentState) -> None:
        if self.model.record_events:
            self.model.log(self.name, self.state.value, state.value, self.cause)
        self.state = state
        self.model.on_component_change(self)
