"""Rolling update campaigns.

A campaign (one ``updates:`` entry) starts every ``every`` hours and rolls a new
release over the hosts in its scope, ``batch`` hosts at a time, starting batches
only inside its maintenance ``window``. Each batch is an operator ticket (lowest
priority): a short-staffed team slows campaigns down. On each host an
`UpdateJob` does what the architecture's table says the scope needs: a service
restart in the parent partition (no reboot), or a reboot, after draining the
host by live migration when ``drain`` is set and capacity allows. A failed update
rolls back with a second reboot; a regressed release multiplies the fault rate
of the drivers it ships until the next update replaces them. A campaign of scope
``reboot`` ships nothing: it is a planned reboot (time-based rejuvenation, which resets
software aging). A release still rolling when the next is due is superseded, and the
hosts it had not reached are counted as missed (`twin.processes.compliance`).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

from twin.agents.host import HostState
from twin.architectures import UpdateEffect, update_effect
from twin.dates import freeze_end, week_offset
from twin.processes.compliance import Compliance
from twin.processes.migration import Evacuation, Moves, movable, plan_departures
from twin.vocabulary import Cause

if TYPE_CHECKING:
    from collections.abc import Callable

    from twin.agents.host import Host
    from twin.agents.operator import Operator
    from twin.config.schema import UpdateConfig
    from twin.fleet import Fleet


class UpdateJob:
    """One host's part of a campaign."""

    def __init__(self, host: Host, campaign: Campaign, on_done: Callable[[], None]) -> None:
        self.host = host
        self.campaign = campaign
        self.on_done = on_done
        self.rollback = False
        self.effect = update_effect(host.behaviour, host.arch, campaign.spec.scope)
        """What this update does on this host (the behaviour table, and the config)."""

    @property
    def drains(self) -> bool:
        """Whether this host is drained first: a reboot is coming and drain is asked for."""
        return self.effect is UpdateEffect.REBOOT and self.campaign.spec.drain

    def prepare(self) -> None:
        """Claim the host; a host to be drained stops accepting guests now, so that the
        hosts of one batch do not migrate guests onto each other."""
        self.host.update_job = self
        if self.drains:
            self.host.set_draining()

    def start(self, moves: Moves | None = None) -> None:
        """Begin what the update does here (`UPDATE_VERBS`); a reboot drains first, along
        ``moves`` when they were planned with the rest of the batch."""
        if self.host.update_job is self:
            UPDATE_VERBS[self.effect](self, moves)

    def restart_service(self, moves: Moves | None = None) -> None:
        """Apply the update by restarting its service: the host is degraded meanwhile."""
        host = self.host
        restart = host.model.draws.sample(host.arch.driver_restart_time)
        host.degrade(restart, cause=Cause.UPDATE)
        self.install()
        host.model.engine.schedule(self.finish, after=restart)

    def live_patch(self, moves: Moves | None = None) -> None:
        """Patch the running kernel: installed at once, nothing else happens."""
        self.install()
        self.finish()

    def drain_and_reboot(self, moves: Moves | None = None) -> None:
        if self.host.state is HostState.DRAINING:
            Evacuation(self.host, on_done=self.reboot, moves=moves)
        else:
            self.reboot()

    def reboot(self) -> None:
        """Take the host down for the update (its remaining guests with it) and reboot."""
        host = self.host
        if host.update_job is not self:
            return
        incident = host.model.accounts.open_incident(Cause.UPDATE)
        host.go_down(HostState.MAINTENANCE, Cause.UPDATE, incident)
        host.begin_reboot()

    def rebooted(self) -> None:
        """The host is back from an update reboot: a failed update rolls back with a
        second reboot; a good one installs the release."""
        model = self.host.model
        if not self.rollback and model.draws.chance(self.campaign.spec.fail_prob):
            self.rollback = True
            model.log.state(self.host.name, "updated", "rollback", Cause.UPDATE)
            self.reboot()
            return
        if not self.rollback:
            self.install()
        self.finish()

    def install(self) -> None:
        """The host runs the release now (a planned reboot ships nothing but counts)."""
        campaign = self.campaign
        spec = campaign.spec
        campaign.compliance.installed(self.host)
        image = spec.scope == "hypervisor" and self.host.behaviour.image_includes_drivers
        if spec.scope == "driver" or image:
            multiplier = spec.regression_fault_multiplier if campaign.regressed else 1.0
            self.host.install_drivers(spec.driver, campaign.release, multiplier)

    def finish(self) -> None:
        if self.host.update_job is self:
            self.host.update_job = None
            self.on_done()

    def abandon(self) -> None:
        """The host went down for another reason: it misses this release."""
        if self.host.update_job is self:
            self.campaign.compliance.missed(self.host)
        self.finish()


class UpdateBatch:
    """The operator task of rolling one batch of hosts; busy until every host is done."""

    kind = "update"

    def __init__(self, campaign: Campaign, hosts: list[Host]) -> None:
        self.campaign = campaign
        self.hosts = hosts
        self.priority = campaign.model.operators.update_priority
        spec = campaign.spec.architecture
        self.arch = None if spec == "all" else spec
        self.pending = 0
        self.jobs: list[UpdateJob] = []
        self.operator: Operator | None = None

    def work(self, operator: Operator) -> float | None:
        jobs = []
        for host in self.hosts:
            if host.is_up and host.update_job is None:
                jobs.append(UpdateJob(host, self.campaign, self._host_done))
            else:  # down, or busy with another release: it misses this one
                self.campaign.compliance.missed(host)
        self.jobs = jobs
        self.pending = len(jobs)
        for job in jobs:
            job.prepare()
        draining = [job.host for job in jobs if job.host.state is HostState.DRAINING]
        plans = plan_departures(self.campaign.model, [(h, movable(h)) for h in draining])
        moves = dict(zip(draining, plans, strict=True))
        for job in jobs:
            job.start(moves.get(job.host))
        if self.pending == 0:
            return 0.0
        self.operator = operator  # released by the last host to finish
        return None

    def _host_done(self) -> None:
        self.pending -= 1
        if self.pending == 0 and self.operator is not None:
            self.operator.release()

    def done(self) -> None:
        self.campaign.batch_done(self)

    @property
    def failed(self) -> bool:
        """Whether an update of this batch failed (and rolled back)."""
        return any([job.rollback for job in self.jobs])


class Campaign:
    """A recurring rollout of one ``updates:`` entry."""

    def __init__(self, model: Fleet, spec: UpdateConfig, site: str | None = None) -> None:
        self.model = model
        self.spec = spec
        self.site = site  # with operators.per_site: the one site it rolls over
        self.name = spec.name if site is None else f"{spec.name}@s{site}"
        self.window = spec.window_spec
        self.freezes = [freeze.spec for freeze in spec.freeze]
        self.week_offset = week_offset(model.config.start_date)
        self.canary: UpdateBatch | None = None  # this release's canary, until it has soaked
        self._canary_due = False  # the next batch is the canary
        self.release = 0
        self.regressed = False
        self.running = False
        self.queued = 0
        self.queue: list[Host] = []
        self.history: list[tuple[float, float]] = []
        self._started = 0.0
        self.compliance = Compliance(model.engine, model.accounts.ledger, self.rollout_order())
        model.engine.schedule(self.tick, after=spec.start)

    def tick(self) -> None:
        """The cadence: start a release now and arm the next one."""
        self.model.engine.schedule(self.tick, after=self.spec.every)
        self.start()

    def start(self) -> None:
        """Start a release now, or right after the batch in hand of the one still rolling
        out, which it supersedes: the hosts that one has not reached miss it (and a release
        that was itself waiting to start misses every host in scope)."""
        if self.running:
            unreached = self.queue if not self.queued else self.rollout_order()
            self.compliance.superseded(unreached, self.arch)
            self.queue = []
            self.queued = 1
            return
        model, spec = self.model, self.spec
        self.running = True
        self.release += 1
        self._started = model.engine.now
        self.regressed = model.draws.chance(spec.regression_prob)
        self.queue = self.rollout_order()
        self.compliance.new_release(self.queue)
        self.batch = spec.batch_size(len(self.queue)) if self.queue else 1
        self.canary, self._canary_due = None, spec.canary is not None
        model.log.state(f"campaign/{self.name}", "idle", "rolling", Cause.UPDATE)
        self.next_batch()

    def batch_done(self, batch: UpdateBatch) -> None:
        """A batch is over: the canary soaks first, then the release goes on or halts."""
        if batch is self.canary:
            self.model.engine.schedule(self._canary_soaked, after=self.spec.canary.soak)
        else:
            self.next_batch()

    def _canary_soaked(self) -> None:
        """A canary that failed (rolled back) halts this release: no other host gets it."""
        if self.canary is not None and self.canary.failed:
            self.model.log.state(f"campaign/{self.spec.name}", "rolling", "halted", Cause.UPDATE)
            self.queue = []
        self.canary = None
        self.next_batch()

    def next_start(self, now: float) -> float:
        """The first hour from ``now`` at which a batch may start: inside the maintenance
        window (read on ``start_date``'s weekday) and outside every change freeze."""
        t, offset, start = now, self.week_offset, self.model.config.start_date
        for _ in range(64):  # a window and the freezes settle in a step or two
            free = freeze_end(t, self.freezes, start) if self.freezes else t
            if self.window is not None and free < math.inf:
                free = self.window.next_open(free + offset) - offset
            if free == t:
                return t
            t = free
        return t

    @property
    def arch(self) -> str | None:
        """The architecture in scope (None: all)."""
        return None if self.spec.architecture == "all" else self.spec.architecture

    def rollout_order(self) -> list[Host]:
        """The hosts in scope, taking one from each cluster in turn (as cluster-aware
        updating does), so that a batch drains a few hosts of every cluster rather than a
        whole cluster with nowhere for its guests to go."""
        scope = self.spec.architecture
        clusters = [hosts for hosts in self.model.clusters.groups.values()
                    if hosts and scope in ("all", hosts[0].architecture)
                    and self._rolls_over(hosts)]  # fmt: skip
        return [h for turn in itertools.zip_longest(*clusters) for h in turn if h is not None]

    def _rolls_over(self, cluster: list[Host]) -> bool:
        """Whether the cluster is in this campaign's site (a cluster is in one site)."""
        sites = self.model.topology.host_site
        return self.site is None or (bool(cluster) and sites[cluster[0].index] == self.site)

    def next_batch(self) -> None:
        model = self.model
        now = model.engine.now
        if not self.queue:
            self.running = False
            self.history.append((self._started, now))
            model.log.state(f"campaign/{self.name}", "rolling", "idle", Cause.UPDATE)
            if self.queued:
                self.queued -= 1
                self.start()
            return
        start = self.next_start(now)
        if start > now:
            if start < math.inf:
                model.engine.schedule(self.next_batch, at=start)
            return
        canary = self.spec.canary if self._canary_due else None
        size = self.batch if canary is None else canary.hosts
        batch, self.queue = self.queue[:size], self.queue[size:]
        task = UpdateBatch(self, batch)
        if canary is not None:
            self._canary_due, self.canary = False, task
        model.operators.open(task)


UPDATE_VERBS = {
    UpdateEffect.REBOOT: UpdateJob.drain_and_reboot,
    UpdateEffect.SERVICE_RESTART: UpdateJob.restart_service,
    UpdateEffect.LIVE_PATCH: UpdateJob.live_patch,
}
"""The verb that carries out each effect of an update on a host (the table says which)."""
