"""How far a long command is: one mechanism for every command.

The experiment functions take a callback ``progress(done, total)`` (``Progress``); the
command line hands them a ``ProgressReporter``, which draws a rich progress bar (done/total,
rate, elapsed, ETA) on a terminal, prints one line per 10 % when the output is a file or a
pipe (a log shows the run advancing without a line per replication), and nothing at all
when quiet (``--quiet``, ``--json``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as work finishes (``total`` may grow, never shrinks)."""


class RateColumn(ProgressColumn):
    """Finished units per second."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Any) -> Text:
        speed = task.speed
        rate = "-" if speed is None else f"{speed:.2f}"
        return Text(f"{rate} {self.unit}/s", style="cyan")


class ProgressReporter:
    """``progress(done, total, failed=0)`` for a command, shown on ``console`` (stderr).

    Use as a context manager around the work: the bar is drawn while inside. ``unit``
    names what is counted (``replications``, ``cases``, ``tasks``); ``count_failures``
    adds a column of failed units (a sweep).
    """

    def __init__(
        self,
        description: str,
        console: Console,
        *,
        quiet: bool = False,
        unit: str = "replications",
        count_failures: bool = False,
    ) -> None:
        self.description = description
        self.console = console
        self.quiet = quiet
        self.unit = unit
        self.count_failures = count_failures
        self.done = 0
        self.total = 0
        self._decile = 0  # of the total last printed against
        self._printed = 0  # done when a line was last printed
        self._bar: RichProgress | None = None
        self._task: Any = None

    @property
    def live(self) -> bool:
        """A bar is drawn: not quiet, and the console is a terminal."""
        return not self.quiet and self.console.is_terminal

    def __enter__(self) -> ProgressReporter:
        if self.live:
            columns: list[ProgressColumn] = [
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                RateColumn(self.unit[:-1] if self.unit.endswith("s") else self.unit),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            ]  # fmt: skip
            if self.count_failures:
                columns.append(TextColumn("[red]{task.fields[failed]} failed"))
            self._bar = RichProgress(*columns, console=self.console)
            self._task = self._bar.add_task(self.description, total=None, failed=0)
            self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, done: int, total: int, failed: int = 0) -> None:
        if total != self.total and total > 0:  # more work (precision rounds): deciles of it
            self._decile = 10 * self._printed // total
        self.done, self.total = done, total
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total, failed=failed)
            return
        if self.quiet or total <= 0:
            return
        decile = 10 * done // total
        if decile > self._decile:
            self._decile, self._printed = decile, done
            failures = f", {failed} failed" if self.count_failures else ""
            self.console.print(
                f"{self.description}: {done}/{total} {self.unit} done "
                f"({100 * done // total} %){failures}",
                markup=False,
                highlight=False,
            )

    def tick(self, *_: Any) -> None:
        """One more unit done (for a callback that reports each finished unit)."""
        self(self.done + 1, self.total)
