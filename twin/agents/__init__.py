"""The fleet's agents: hosts, guests, drivers, operators, and shared components."""

from twin.agents.component import Component, ComponentState
from twin.agents.driver import Driver
from twin.agents.guest import Guest, GuestState
from twin.agents.host import UP_STATES, Host, HostState
from twin.agents.operator import Operator, OperatorState, OperatorTeam, Priority

__all__ = [
    "UP_STATES",
    "Component",
    "ComponentState",
    "Driver",
    "Guest",
    "GuestState",
    "Host",
    "HostState",
    "Operator",
    "OperatorState",
    "OperatorTeam",
    "Priority",
]
