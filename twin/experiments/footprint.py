"""How much memory a fleet needs, estimated from its config before anything is built.

The costs are measured (peak RSS above the imported twin, default fleet with the host and
guest counts varied, Python 3.12, Mesa 3.5): a host with its drivers, fault clocks and
topology node about 4.5 kB, a guest about 0.37 kB, and the event log of ``twin run --out``
about 18 kB per simulated host-year, kept for every replication until it is written. The
constants round these up (by a third for a host and for a guest), so the estimate errs
on the side of refusing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from twin.config import FleetConfig

BYTES_PER_HOST = 14_000
BYTES_PER_GUEST = 700
EVENT_BYTES_PER_HOST_YEAR = 20_000
HOURS_PER_YEAR = 8760.0
LIMIT_ENV = "TWIN_MEMORY_LIMIT"
"""Set to a size (``2G``, ``500M``, bytes) to take that as the machine's memory."""
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Footprint:
    """A fleet's estimated memory, and what it is made of."""

    hosts: int
    guests: int
    bytes: int

    def describe(self) -> str:
        return (
            f"{self.hosts:,} hosts and {self.guests:,} guests need about {gigabytes(self.bytes)} "
            f"({BYTES_PER_HOST / 1000:g} kB a host, {BYTES_PER_GUEST / 1000:g} kB a guest)"
        )


class TooLarge(Exception):
    """A fleet's estimate exceeds the memory the machine has; the text is one line."""


def gigabytes(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.0f} MB"


def parse_size(text: str) -> int:
    """Bytes in ``2G``, ``500M``, ``1.5GB``, ``123456`` (powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"expected a size like 2G or 500M, got {text!r}")
    power = " kmgt".index((match[2] or " ").lower())
    return int(float(match[1]) * 1024**power)


def fleet_counts(config: FleetConfig) -> tuple[int, int] | None:
    """Hosts and guests (per-host guests and service replicas) of ``config``; ``None`` when
    a topology or inventory file gives the hosts."""
    if config.topology.file is not None or config.hosts.inventory is not None:
        return None
    hosts = config.topology.n_hosts
    return hosts, hosts * config.guests.per_host + sum(s.replicas for s in config.services)


def fleet_footprint(
    config: FleetConfig, *, record_events: bool = False, replications: int = 1
) -> Footprint | None:
    """The memory one fleet of ``config`` needs; with ``record_events``, also its event logs
    for ``replications`` runs. ``None`` when the host count is not in the config (a
    topology or inventory file gives it)."""
    counts = fleet_counts(config)
    if counts is None:
        return None
    hosts, guests = counts
    size = hosts * BYTES_PER_HOST + guests * BYTES_PER_GUEST
    if record_events:
        size += int(EVENT_BYTES_PER_HOST_YEAR * hosts * config.horizon / HOURS_PER_YEAR) * max(
            1, replications
        )
    return Footprint(hosts, guests, size)


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def available_memory() -> int:
    """Memory the twin can have: ``TWIN_MEMORY_LIMIT`` if set, else the machine's available
    memory (``MemAvailable``; physical memory where there is none), capped by a cgroup
    limit (a container's)."""
    if text := os.environ.get(LIMIT_ENV):
        return parse_size(text)
    available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    limit = _cgroup_limit()
    return min(available, limit) if limit else available


def check_footprint(footprint: Footprint | None, copies: int = 1, what: str = "the fleet") -> None:
    """Raise ``TooLarge`` when ``copies`` fleets of ``footprint`` (one per worker) need more
    memory than there is."""
    if footprint is None:
        return
    need = footprint.bytes * max(1, copies)
    have = available_memory()
    if need > have:
        times = f"; x {copies} workers = {gigabytes(need)}" if copies > 1 else ""
        raise TooLarge(
            f"{what}: {footprint.describe()}{times}, more than the {gigabytes(have)} of memory "
            "available; make it smaller, or pass --allow-large to run it anyway"
        )
