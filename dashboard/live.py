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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dashboard.figures import FleetView, Links, rack_links, take_view
from twin import Fleet, load_experiment
from twin.config import ConfigError
from twin.config.schema import DriverRegression, Injection
from twin.processes.injections import check, inject

LIVE_SAMPLE_EVERY = "1h"
"""The dashboard samples the fleet hourly (configs usually say daily) so the availability
chart moves at live speeds; sampling never changes availability, which is exact."""

TICK_SECONDS = 0.1
"""How often the runner advances the model while playing."""

MAX_SLICE_HOURS = 6.0
"""The longest stretch of simulated time advanced under one hold of the lock, so a fast
speed on a large fleet never starves the web server's reads."""


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
    """Simulated hours per wall-clock second."""
    message: str = ""


class LiveFleet:
    """A fleet model that lives in a background thread and is advanced, paused, reset and
    injected into from the dashboard's callbacks."""

    def __init__(self, sources: dict[str, Path], source: str, seed: int = 42) -> None:
        if source not in sources:
            raise ValueError(f"unknown source {source!r}")
        self.sources = sources
        self.lock = threading.RLock()
        self.state = RunnerState(source=source, seed=seed)
        self.fleet, self.guest_names, self.links = self._build(source, seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the model ------------------------------------------------------------------------

    def _build(self, source: str, seed: int) -> tuple[Fleet, frozenset[str], Links]:
        """A fresh fleet of the named source (a scenario brings its timed injections), its
        guests' names and its topology view's links."""
        experiment = load_experiment(self.sources[source], [f"sample_every={LIVE_SAMPLE_EVERY}"])
        injections = experiment.scenario.injections if experiment.scenario else ()
        fleet = Fleet(experiment.config, rng=seed, injections=injections)
        return fleet, frozenset(g.name for g in fleet.guests), rack_links(fleet)

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
            self.fleet, self.guest_names, self.links = built
            self.state.source, self.state.seed = source, int(seed)
            self.state.message = ""
        return f"reset: {source}, seed {int(seed)}"

    def inject(self, spec: Injection) -> str:
        """Carry out one injection now, after checking the names it uses."""
        with self.lock:
            try:
                check(self.fleet, spec, spec.action)
            except ConfigError as err:
                return f"refused: {err}"
            drivers = {d.name for d in self.fleet.config.drivers}
            if isinstance(spec, DriverRegression) and spec.driver not in drivers:
                return f"refused: {spec.action}.driver: unknown driver {spec.driver!r}"
            inject(self.fleet, spec)
            return f"{spec.action} at t={self.fleet.time:.1f} h"

    def view(self) -> FleetView:
        """A consistent copy of what the dashboard shows, taken under the lock."""
        with self.lock:
            view = take_view(self.fleet, self.guest_names)
            view.rack_links, view.spines = self.links
        return view

    # -- the clock ------------------------------------------------------------------------

    def set_playing(self, playing: bool) -> None:
        """Play or pause. A fleet stops by itself at its configured horizon, which bounds
        what its event log, samples and incidents hold (and so the cost of a refresh)."""
        with self.lock:
            self.state.playing = playing and self.fleet.time < self.fleet.horizon
            self.state.message = ""

    def set_speed(self, hours_per_second: float) -> None:
        with self.lock:
            self.state.speed = max(0.0, float(hours_per_second))

    def advance(self, hours: float) -> None:
        """Advance the model by ``hours`` of simulated time, in slices that release the lock."""
        remaining = hours
        while remaining > 0:
            step = min(remaining, MAX_SLICE_HOURS)
            with self.lock:
                self.fleet.run_until(self.fleet.time + step)
            remaining -= step

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK_SECONDS):
            now = time.monotonic()
            elapsed, last = min(now - last, 1.0), now  # a slow tick is not caught up on
            with self.lock:
                hours = self.state.speed * elapsed if self.state.playing else 0.0
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
