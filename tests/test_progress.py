"""How far a long command is, as a log shows it: a line per tenth of the work, also when
precision rounds add work after the first round is done."""

from __future__ import annotations

import io

from rich.console import Console

from twin.experiments.progress import ProgressReporter


def lines_of(calls: list[tuple[int, int]]) -> list[str]:
    out = io.StringIO()
    reporter = ProgressReporter("storm", Console(file=out, width=200), unit="tasks")
    with reporter:
        for done, total in calls:
            reporter(done, total)
    return out.getvalue().splitlines()


def test_a_log_gets_a_line_per_tenth_of_the_work():
    lines = lines_of([(i, 20) for i in range(21)])
    assert (
        lines[0] == "storm: 2/20 tasks done (10 %)"
        and lines[-1] == "storm: 20/20 tasks done (100 %)"
    )
    assert len(lines) == 10


def test_work_added_by_a_later_round_is_reported_to_its_end():
    # a first round of 100 all done, then a second round to 150 (a resumed precision sweep)
    lines = lines_of([(100, 100), *((i, 150) for i in range(100, 151))])
    assert lines[0] == "storm: 100/100 tasks done (100 %)"
    assert lines[-1] == "storm: 150/150 tasks done (100 %)"
    assert "storm: 105/150 tasks done (70 %)" in lines


def test_quiet_prints_nothing():
    out = io.StringIO()
    with ProgressReporter("storm", Console(file=out), quiet=True) as reporter:
        reporter(5, 5)
    assert out.getvalue() == ""
