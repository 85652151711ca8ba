"""The live runner: one fleet model advanced in a background thread at a chosen speed.

Every read and every change of the model goes through one lock, so the web server's
threads and the runner never see a fleet half-way through an event. The dashboard
reads the model only through its public state (``metrics``, ``samples``, ``events``,
``hosts``, ``components``, ``operators``, ``incidents``) and changes it only through the
same injections a scenario uses (`twin.processes.injections.inject`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import reduce
from operator import or_
from pathlib import Path

from dashboard.figures import (
    FleetView,
    Hits,
    Links,
    architecture_names,
    rack_links,
    take_view,
)
from twin import Fleet, load_experiment, rare_events
from twin.agents import ComponentState
from twin.config import ConfigError
from twin.config.schema import (
    DriverRegression,
    HostCrash,
    Injection,
    PowerLoss,
    StartCampaign,
    TorFault,
)
from twin.placement import hosts_with_share, largest_remainder
from twin.processes.injections import check, convert, inject

LIVE_SAMPLE_EVERY = "1h"
"""The dashboard samples the fleet hourly (configs usually say daily) so the availability
chart moves at live speeds; sampling never changes availability, which is exact."""

TICK_SECONDS = 0.1
"""How often the runner advances the model while playing."""

MAX_SLICE_HOURS = 6.0
"""The longest stretch of simulated time advanced under one hold of the lock, so a fast
speed on a large fleet never starves the web server's reads."""

WATCH_SPEED = 0.25
"""Simulated hours per second while an injection is watched: a 1-hour crash lasts 4 s on
screen, a 6-hour power cut 24 s, slow enough to follow, fast enough to see it end."""

WATCH_LIMIT_HOURS = 48.0
"""The longest an injection is watched (simulated hours): a repair waiting days for parts
does not hold the clock at `WATCH_SPEED` for many minutes."""


class WatchMode(StrEnum):
    """What the clock does when an injection hits: slows to `WATCH_SPEED` until the
    injection is over, or pauses on it (Play then runs it at `WATCH_SPEED`)."""

    SLOW = "slow"
    PAUSE = "pause"


def hours_text(hours: float) -> str:
    """A length of simulated time as a person reads it: ``30 min``, ``4 h``."""
    return f"{round(hours * 60, 1):g} min" if hours < 1 else f"{round(hours, 2):g} h"


@dataclass(frozen=True)
class Watch:
    """An injection being watched: what it hit, when, and how long it is meant to last.
    It is over when every host it hit serves again and every component it hit is up (or
    after `WATCH_LIMIT_HOURS`)."""

    action: str
    target: str
    length: str
    at: float
    hits: Hits

    def over(self, fleet: Fleet) -> bool:
        if fleet.time - self.at >= WATCH_LIMIT_HOURS:
            return True
        hosts, components = fleet.hosts_by_name, fleet.components
        return all(hosts[h].serving for h in self.hits.hosts) and all(
            components[c].state is ComponentState.UP for c in self.hits.components
        )


def watch_of(fleet: Fleet, spec: Injection) -> Watch:
    """What an injection hits and for how long, as the confirmation says it; only a host
    crash, a ToR fault and a power cut hit something that comes back (``hits`` is empty
    for the others, which are not watched)."""
    at = fleet.time
    if isinstance(spec, HostCrash):
        host = fleet.hosts_by_name[spec.host]
        return Watch(spec.action, f"host {spec.host} (rack {host.rack})",
                     "until crash detection and a reboot bring it back", at,
                     Hits(hosts=frozenset({spec.host})))  # fmt: skip
    if isinstance(spec, PowerLoss | TorFault):
        topo, rack = fleet.topology, spec.rack
        parts = topo.feeds_of_rack(rack) if isinstance(spec, PowerLoss) else topo.tors_of_rack(rack)
        hosts = frozenset(h.name for h in fleet.hosts if h.rack == rack)
        repair = "power_repair" if isinstance(spec, PowerLoss) else "tor_repair"
        length = (f"until an operator repairs it (network.{repair})" if spec.duration is None
                  else f"for {hours_text(spec.duration.mean)}")  # fmt: skip
        hits = Hits(hosts, frozenset({rack}), frozenset(parts))
        return Watch(spec.action, f"rack {rack} ({len(hosts)} hosts)", length, at, hits)
    if isinstance(spec, DriverRegression):
        target = f"driver {spec.driver} on {spec.share:.0%} of its hosts"
        return Watch(spec.action, target, f"faulting x{spec.fault_multiplier:g} from now on",
                     at, Hits())  # fmt: skip
    if isinstance(spec, StartCampaign):
        return Watch(spec.action, f"update {spec.update}", "batch by batch", at, Hits())
    return Watch(spec.action, "the fleet", "", at, Hits())


def mix_moves(counts: Mapping[str, int], target: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """The conversions ``(from, to, hosts)`` that take ``counts`` hosts per architecture to
    ``target`` (same total): every architecture over its target gives hosts to those under
    theirs, in the table's order."""
    spare = [[a, n - target.get(a, 0)] for a, n in counts.items() if n > target.get(a, 0)]
    moves: list[tuple[str, str, int]] = []
    for to, want in target.items():
        need = want - counts.get(to, 0)
        for giver in spare:
            take = min(need, giver[1])
            if take > 0:
                moves.append((giver[0], to, take))
                giver[1] -= take
                need -= take
    return moves


def shares_text(shares: Mapping[str, float]) -> str:
    """An architecture mix as the confirmation says it: ``monolithic 25%, microkernel 75%``."""
    return ", ".join(f"{a} {s:.0%}" for a, s in shares.items())


def allowed_sources(root: Path, extra: Iterable[Path] = ()) -> dict[str, Path]:
    """The config and scenario files the picker may offer: YAML under ``root/configs`` and
    ``root/scenarios``, plus the files named on the command line. Keys are the names shown
    to the browser; the browser only ever sends a key back, never a path."""
    root = root.resolve()
    sources: dict[str, Path] = {}
    for path in extra:
        path = Path(path).resolve()
        try:
            name = str(path.relative_to(root))
        except ValueError:
            name = str(path)
        sources[name] = path
    for folder in ("configs", "scenarios"):
        for path in sorted((root / folder).glob("*.y*ml")):
            sources.setdefault(str(path.relative_to(root)), path.resolve())
    return sources


@dataclass
class RunnerState:
    """What the runner is doing, as the controls show it."""

    source: str
    seed: int
    playing: bool = True
    speed: float = 12.0
    """Simulated hours per wall-clock second, as chosen."""
    message: str = ""
    watch_mode: WatchMode = WatchMode.SLOW
    watches: list[Watch] = field(default_factory=list)
    """The injections being watched, oldest first."""
    speed_chosen: bool = False
    """A speed was picked while watching: it applies at once, watch or not."""

    @property
    def clock_speed(self) -> float:
        """Simulated hours per second now: `WATCH_SPEED` while an injection is watched
        (unless a speed was picked since), else the chosen speed."""
        if self.watches and not self.speed_chosen:
            return min(self.speed, WATCH_SPEED)
        return self.speed

    @property
    def hits(self) -> Hits:
        """Everything the watched injections hit."""
        return reduce(or_, (w.hits for w in self.watches), Hits())


class LiveFleet:
    """A fleet model that lives in a background thread and is advanced, paused, reset and
    injected into from the dashboard's callbacks."""

    def __init__(self, sources: dict[str, Path], source: str, seed: int = 42) -> None:
        if source not in sources:
            raise ValueError(f"unknown source {source!r}")
        self.sources = sources
        self.lock = threading.RLock()
        self.state = RunnerState(source=source, seed=seed)
        self.fleet, self.guest_names, self.links, self.timed = self._build(source, seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the model ------------------------------------------------------------------------

    def _build(
        self, source: str, seed: int
    ) -> tuple[Fleet, frozenset[str], Links, list[Injection]]:
        """A fresh fleet of the named source (a scenario brings its timed injections), its
        guests' names, its topology view's links, and its timed injections yet to fire."""
        experiment = load_experiment(self.sources[source], [f"sample_every={LIVE_SAMPLE_EVERY}"])
        rare_events.require_unweighted(experiment.config, "the dashboard")
        injections = list(experiment.injections)
        fleet = Fleet(experiment.config, rng=seed, injections=injections)
        timed = sorted(injections, key=lambda spec: spec.at)
        return fleet, frozenset(g.name for g in fleet.guests), rack_links(fleet), timed

    def reset(self, source: str, seed: int) -> str:
        """Start over with the named source and seed; a name not on the server's list is
        refused (the browser never chooses a path)."""
        if source not in self.sources:
            return f"refused: {source!r} is not an offered config or scenario"
        try:
            built = self._build(source, int(seed))
        except ConfigError as err:
            return f"cannot load {source}: {err}"
        with self.lock:
            self.fleet, self.guest_names, self.links, self.timed = built
            self.state.source, self.state.seed = source, int(seed)
            self.state.message = ""
            self.state.watches, self.state.speed_chosen = [], False
        return f"reset: {source}, seed {int(seed)}"

    def inject(self, spec: Injection) -> str:
        """Carry out one injection now, after checking the names it uses; say what it hit
        and for how long, and watch it (slowed or paused) until it is over."""
        with self.lock:
            try:
                check(self.fleet, spec, spec.action)
            except ConfigError as err:
                return f"refused: {err}"
            drivers = {d.name for d in self.fleet.config.drivers}
            if isinstance(spec, DriverRegression) and spec.driver not in drivers:
                return f"refused: {spec.action}.driver: unknown driver {spec.driver!r}"
            watch = watch_of(self.fleet, spec)
            inject(self.fleet, spec)
            return self._watch(watch)

    def _watch(self, watch: Watch) -> str:
        """Watch an injection that just hit (if it hit something that comes back): slow the
        clock or pause on it. Returns the confirmation: target, length, what the clock does."""
        said = f"{watch.action}: {watch.target} {watch.length}, at t={watch.at:.1f} h"
        if not (watch.hits.hosts or watch.hits.components):
            return said
        self.state.watches.append(watch)
        self.state.speed_chosen = False
        if self.state.watch_mode is WatchMode.PAUSE:
            self.state.playing = False
            return f"{said} · paused on it: Play watches it at {WATCH_SPEED:g} h/s"
        return f"{said} · slowed to {WATCH_SPEED:g} h/s until it is over"

    def _watch_timed(self) -> None:
        """Watch the scenario's timed injections that have fired, as if pressed now."""
        while self.timed and self.timed[0].at <= self.fleet.time:
            spec = self.timed.pop(0)
            self.state.message = "scenario " + self._watch(watch_of(self.fleet, spec))

    def mix_now(self) -> dict[str, float]:
        """The share of hosts on each architecture of the behaviour table, now."""
        with self.lock:
            hosts = self.fleet.hosts
            return {a: sum(h.architecture == a for h in hosts) / max(len(hosts), 1)
                    for a in architecture_names()}  # fmt: skip

    def convert_mix(self, shares: Mapping[str, float]) -> str:
        """Convert hosts (`convert`: a planned reboot into the other hypervisor) so
        the fleet's architecture mix is as close to ``shares`` (summing to 1) as whole
        hosts allow; the hosts that move are drawn at random from those over their share."""
        with self.lock:
            fleet = self.fleet
            for name, share in shares.items():
                try:
                    fleet.config.architectures.get(name)
                except KeyError:
                    if share > 0:
                        return f"refused: this fleet's config cannot run {name!r}"
            pools = {a: [h for h in fleet.hosts if h.architecture == a] for a in shares}
            target = largest_remainder(len(fleet.hosts), shares)
            moves = mix_moves({a: len(p) for a, p in pools.items()}, target)
            for frm, to, count in moves:
                pool = pools[frm]
                picked = set(hosts_with_share(len(pool), count / len(pool), fleet.rng).tolist())
                pools[frm] = [h for i, h in enumerate(pool) if i not in picked]
                for i in sorted(picked):
                    convert(fleet, pool[i], to)
            now = shares_text(self.mix_now())
            if not moves:
                return f"mix unchanged: {now}"
            said = ", ".join(f"{n} {frm} -> {to}" for frm, to, n in moves)
            return f"converted {said} at t={fleet.time:.1f} h: mix now {now}"

    def view(self) -> FleetView:
        """A consistent copy of what the dashboard shows, taken under the lock."""
        with self.lock:
            view = take_view(self.fleet, self.guest_names, self.state.hits)
            view.rack_links, view.spines, view.datastores = self.links
        return view

    # -- the clock ------------------------------------------------------------------------

    def set_playing(self, playing: bool) -> None:
        """Play or pause. A fleet stops by itself at its configured horizon, which bounds
        what its event log, samples and incidents hold (and so the cost of a refresh)."""
        with self.lock:
            self.state.playing = playing and self.fleet.time < self.fleet.horizon
            self.state.message = ""

    def set_speed(self, hours_per_second: float) -> None:
        """Take a speed; picked while an injection is watched, it applies at once."""
        with self.lock:
            self.state.speed = max(0.0, float(hours_per_second))
            self.state.speed_chosen = bool(self.state.watches)

    def set_watch_mode(self, mode: WatchMode) -> None:
        with self.lock:
            self.state.watch_mode = mode

    def advance(self, hours: float) -> None:
        """Advance the model by ``hours`` of simulated time, in slices that release the
        lock; a scenario's timed injection is watched from the moment it fires (the
        advance stops there), and a watched injection that is over stops being watched."""
        remaining = hours
        while remaining > 0:
            with self.lock:
                step = min(remaining, MAX_SLICE_HOURS)
                if self.timed:  # stop at the scenario's next injection, to watch it
                    step = min(step, max(self.timed[0].at - self.fleet.time, 0.0))
                self.fleet.run_until(self.fleet.time + step)
                watched = len(self.state.watches)
                self._watch_timed()
                began = len(self.state.watches) > watched
                self._end_watches()
            remaining -= step
            if began:  # the rest of this stretch is run at the watch's pace
                return

    def _end_watches(self) -> None:
        """Stop watching the injections that are over, and say so."""
        state = self.state
        over = [w for w in state.watches if w.over(self.fleet)]
        if not over:
            return
        state.watches = [w for w in state.watches if w not in over]
        last = over[-1]
        state.message = f"{last.action} on {last.target} over after " + hours_text(
            self.fleet.time - last.at
        )
        if not state.watches:
            state.speed_chosen = False
            state.message += f": back to {state.speed:g} h/s"

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK_SECONDS):
            now = time.monotonic()
            elapsed, last = min(now - last, 1.0), now  # a slow tick is not caught up on
            with self.lock:
                hours = self.state.clock_speed * elapsed if self.state.playing else 0.0
                left = self.fleet.horizon - self.fleet.time
                if self.state.playing and left <= 0:
                    self.state.playing = False
                    self.state.message = "reached the horizon: reset to run again"
            if hours > 0:
                self.advance(min(hours, left))

    def start(self) -> None:
        """Start the background runner (a daemon thread)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="live-fleet", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background runner and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
