"""DRS: load balancing inside each cluster by live migration.

Every ``guests.drs.every`` hours each cluster is looked at: among its hosts accepting
guests, the cpu load share is used / capacity. While the most and least loaded differ by
more than ``imbalance``, guests of the fleet's one kind (service replicas stay where their
anti-affinity put them) live-migrate from the most loaded host to the least loaded, enough
to even the pair out; each host takes part in one move per pass. So guests that HA
restarted elsewhere, or that a drain moved, come back to the host that has room again.
The migrations are `Evacuation` s along planned moves: they count in ``migrations``, may
fail (``fail_prob``) and stun their guests (``stun_time``) like any other.
"""

from __future__ import annotations

import math
from array import array
from typing import TYPE_CHECKING

import numpy as np

from twin.processes.migration import Evacuation, movable

if TYPE_CHECKING:
    from twin.agents.host import Host
    from twin.fleet import Fleet


class Balancer:
    """The fleet's DRS: one pass over every cluster each ``every`` hours."""

    def __init__(self, model: Fleet) -> None:
        self.model = model
        self.spec = model.config.guests.drs
        model.engine.schedule(self.tick, after=self.spec.every)

    def tick(self) -> None:
        self.model.engine.schedule(self.tick, after=self.spec.every)
        for _, hosts in self.model.clusters.items():
            if len(hosts) > 1:
                self.balance(hosts)

    def balance(self, hosts: list[Host]) -> int:
        """Even out one cluster's cpu load; returns how many guests were set moving."""
        model = self.model
        capacity = model.capacity
        members = model.clusters.indices(hosts[0])
        size = np.array([h.cpu for h in hosts])
        load = np.where(
            np.isfinite(capacity.room[members]), 1.0 - capacity.free_cpu[members] / size, np.nan
        )
        need_cpu, need_memory = capacity.guest_kind
        started = 0
        while np.count_nonzero(~np.isnan(load)) > 1:
            hi, lo = int(np.nanargmax(load)), int(np.nanargmin(load))
            if load[hi] - load[lo] <= self.spec.imbalance:
                break
            source, target = hosts[hi], hosts[lo]
            # moving n guests closes the gap by n x (cpu / source size + cpu / target size)
            wanted = math.floor((load[hi] - load[lo]) / (need_cpu / size[hi] + need_cpu / size[lo]))
            load[hi] = load[lo] = np.nan  # one move per host and pass
            fits = min(target.cpu_free // need_cpu, target.memory_free // need_memory)
            plain = [i for i in movable(source) if model.guests[i].service is None]
            count = int(min(wanted, fits, len(plain)))
            if count <= 0:
                continue
            ids = array("q", plain[-count:])
            target.take(count * need_cpu, count * need_memory)
            Evacuation(source, moves=[(target, ids)], retry=False)
            started += count
        return started
