"""Timed injections from scenarios (or the dashboard): one class of event each, fired at
its ``at`` time. Names in an injection (racks, hosts, drivers, updates) are checked when
the fleet is built, so a typo fails before any simulation time is spent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from twin.agents.host import HostState
from twin.architectures import ARCHITECTURES
from twin.config import ConfigError
from twin.config.schema import (
    ConvertArchitecture,
    DriverRegression,
    HostCrash,
    Injection,
    PowerLoss,
    StartCampaign,
    TorFault,
)
from twin.placement import hosts_with_share
from twin.vocabulary import Cause

if TYPE_CHECKING:
    from twin.agents.host import Host
    from twin.fleet import Fleet


class Injected:
    """One scheduled injection; ``fire`` carries it out."""

    def __init__(self, model: Fleet, spec: Injection, where: str) -> None:
        self.model = model
        self.spec = spec
        self.where = where
        check(model, spec, where)
        model.engine.schedule(self.fire, after=max(0.0, spec.at - model.engine.now))

    def fire(self) -> None:
        inject(self.model, self.spec)


def check(model: Fleet, spec: Injection, where: str) -> None:
    """Fail with a ConfigError naming the injection when it names something unknown."""
    racks = set(model.topology.racks)
    if isinstance(spec, PowerLoss | TorFault) and spec.rack not in racks:
        raise ConfigError(f"{where}.rack", f"unknown rack {spec.rack!r} (racks: r0..)")
    if isinstance(spec, HostCrash) and spec.host not in model.hosts_by_name:
        raise ConfigError(f"{where}.host", f"unknown host {spec.host!r}")
    if isinstance(spec, StartCampaign) and spec.update not in model.campaigns:
        raise ConfigError(f"{where}.update", f"unknown update {spec.update!r}")


def inject(model: Fleet, spec: Injection) -> None:
    """Carry out one injection now."""
    topo = model.topology
    model.log.state("scenario", "", spec.action, "injection")
    if isinstance(spec, DriverRegression):
        drivers = [d for h in model.hosts for d in h.drivers if d.kind == spec.driver]
        for i in hosts_with_share(len(drivers), spec.share, model.rng):
            drivers[i].install(drivers[i].version + 1, spec.fault_multiplier)
    elif isinstance(spec, PowerLoss | TorFault):
        names = (
            topo.feeds_of_rack(spec.rack)
            if isinstance(spec, PowerLoss)
            else topo.tors_of_rack(spec.rack)
        )
        duration = None if spec.duration is None else model.draws.sample(spec.duration)
        for name in names:
            model.components[name].fail(duration)
    elif isinstance(spec, HostCrash):
        host = model.hosts_by_name[spec.host]
        if spec.cause == "hardware":
            host.fail_hardware()
        else:
            host.crash(spec.cause)
    elif isinstance(spec, StartCampaign):
        model.campaigns[spec.update].start()
    elif isinstance(spec, ConvertArchitecture):
        others = [h for h in model.hosts if h.architecture != spec.to]
        for i in hosts_with_share(len(others), spec.share, model.rng):
            convert(model, others[i], spec.to)


def convert(model: Fleet, host: Host, architecture: str) -> None:
    """Reinstall a host with another hypervisor: a planned reboot into it."""
    if host.architecture == architecture:
        return
    was_up = host.is_up
    if was_up:
        host.go_down(
            HostState.MAINTENANCE, Cause.UPDATE, model.accounts.open_incident(Cause.UPDATE)
        )
    model.clusters.leave(host)
    host.withdraw()
    host.set_architecture(architecture)
    model.accounts.guest_time.convert(host.index, host.guest_ids, ARCHITECTURES.index(architecture))
    model.clusters.join(host)
    host.refresh()
    if was_up:
        host.begin_reboot()


def schedule_injections(model: Fleet, injections: Sequence[Injection]) -> list[Injected]:
    return [Injected(model, spec, f"injections.{i}") for i, spec in enumerate(injections)]
