"""``twin sweep`` and ``twin report``: batch runs at scale (SPEC 5, 6; issue 5).

The scenario is small on purpose: 8 hosts, two arms (all-monolithic, all-microkernel), a
sweep over operators.count [1, 2] and 2 replications, so 8 tasks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from twin.experiments.backends import PoolBackend
from twin.experiments.report import write_report
from twin.experiments.runner import TIMESERIES_COLUMNS
from twin.experiments.sweep import (
    SweepAborted,
    SweepRefused,
    cell_summary,
    open_results,
    plan_sweep,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[1]
TWIN = shutil.which("twin", path=str(Path(sys.executable).parent)) or "twin"

FLEET = {
    "name": "tiny",
    "horizon": "30d",
    "seed": 7,
    "replications": 2,
    "sample_every": "1d",
    "topology": {"sites": 1, "pods": 1, "racks_per_pod": 2, "hosts_per_rack": 4, "spines": 1,
                 "tors_per_rack": 1, "power_feeds_per_rack": 1},
    "hosts": {"architecture_mix": {"monolithic": 0.5, "microkernel": 0.5}},
    "hardware": {"fault": {"dist": "exponential", "mean": "20d"}, "repair": "4h"},
    "architectures": {
        "monolithic": {"hypervisor_fault": {"dist": "exponential", "mean": "30d"}},
        "microkernel": {"hypervisor_fault": {"dist": "exponential", "mean": "30d"}},
    },
    "guests": {"per_host": 4},
    "operators": {"count": 1},
}  # fmt: skip
SCENARIO = {
    "name": "tiny-sweep",
    "question": "Does a second operator help either architecture?",
    "base": "fleet.yaml",
    "arms": {
        "all-monolithic": {"hosts": {"architecture_mix": {"monolithic": 1, "microkernel": 0}}},
        "all-microkernel": {"hosts": {"architecture_mix": {"monolithic": 0, "microkernel": 1}}},
    },
    "sweep": {"operators.count": [1, 2]},
}
ARMS = ["all-monolithic", "all-microkernel"]
TASKS = 8


def twin(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    return subprocess.run(
        [TWIN, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def write_scenario(folder: Path, **changes) -> Path:
    """The tiny fleet and the scenario on it (with ``changes`` to the scenario's keys)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fleet.yaml").write_text(yaml.safe_dump(FLEET))
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, **changes}, sort_keys=False))
    return path


def finished_parts(out: Path) -> int:
    return len(list((out / "parts").glob("*.parquet")))


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def results(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(out / "summary.parquet"), pd.read_parquet(out / "timeseries.parquet")


def assert_same_results(a: Path, b: Path) -> None:
    for left, right in zip(results(a), results(b), strict=True):
        pd.testing.assert_frame_equal(left, right)


def wait_for_parts(out: Path, count: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while finished_parts(out) < count:
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "no results appeared"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    return write_scenario(tmp_path_factory.mktemp("scenario"))


@pytest.fixture(scope="module")
def pool_run(scenario, tmp_path_factory) -> Path:
    """The scenario swept on a local process pool of 2 workers."""
    out = tmp_path_factory.mktemp("pool") / "results"
    r = twin("sweep", str(scenario), "--workers", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def pool() -> Iterator[PoolBackend]:
    """A local pool of 2 worker processes shared by the sweeps run in this process."""
    with PoolBackend(2) as backend:
        yield backend


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """A Dask cluster of 2 worker processes on 127.0.0.1, shut down after these tests."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        yield cluster.scheduler_address


# -- planning ---------------------------------------------------------------------------------


def test_a_plain_fleet_config_is_one_arm_at_one_point(scenario):
    plan = plan_sweep(scenario.parent / "fleet.yaml", replications=3)
    assert plan.arms == ["base"] and plan.points == [{}]
    assert [(t.arm, t.point, t.replication) for t in plan.tasks()] == [
        ("base", {}, 0), ("base", {}, 1), ("base", {}, 2)
    ]  # fmt: skip


def test_tasks_are_arms_times_grid_points_times_replications(scenario):
    plan = plan_sweep(scenario)
    tasks = plan.tasks()
    assert len(tasks) == TASKS
    assert [(t.arm, t.point["operators.count"], t.replication) for t in tasks[:4]] == [
        ("all-monolithic", 1, 0), ("all-monolithic", 1, 1),
        ("all-monolithic", 2, 0), ("all-monolithic", 2, 1),
    ]  # fmt: skip
    assert {t.cell.config.operators.count for t in tasks} == {1, 2}
    assert len({t.key for t in tasks}) == TASKS


def test_the_scenario_hash_ignores_the_replication_count_but_not_the_fleet(scenario):
    plain = plan_sweep(scenario)
    assert plan_sweep(scenario, replications=5).scenario_hash == plain.scenario_hash
    assert plan_sweep(scenario, ["seed=8"]).scenario_hash != plain.scenario_hash


def test_a_bad_sweep_value_is_refused_before_anything_runs(tmp_path):
    path = write_scenario(tmp_path, sweep={"guests.per_host": [2, -1]})
    out = tmp_path / "results"
    r = twin("sweep", str(path), "--out", str(out))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "guests.per_host" in r.stderr and "-1" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


# -- results ----------------------------------------------------------------------------------


def test_summary_has_one_row_per_replication_in_arm_point_replication_order(pool_run):
    summary, timeseries = results(pool_run)
    assert len(summary) == TASKS
    assert list(summary.columns[:5]) == ["arm", "point", "operators.count", "replication", "seed"]
    assert list(summary["arm"]) == [a for a in ARMS for _ in range(4)]
    assert list(summary["operators.count"]) == [1, 1, 2, 2] * 2
    assert list(summary["replication"]) == [0, 1] * 4
    assert [json.loads(p) for p in summary["point"][:3]] == [
        {"operators.count": 1}, {"operators.count": 1}, {"operators.count": 2}
    ]  # fmt: skip
    assert (summary["seed"] == 7).all()
    assert summary["guest_availability"].between(0, 1).all()
    assert {"incidents.hardware", "blast_radius_max"} <= set(summary.columns)
    assert list(timeseries.columns) == ["arm", "point", "replication", *TIMESERIES_COLUMNS]
    assert set(timeseries["architecture"]) >= {"*"}


def test_manifest_records_scenario_hash_seeds_and_versions(pool_run, scenario):
    m = manifest(pool_run)
    assert m["scenario_hash"] == plan_sweep(scenario).scenario_hash
    assert m["complete"] and m["done"] == m["tasks"] == TASKS
    assert [(c["arm"], c["point"], c["seed"], c["replications"]) for c in m["cells"][:2]] == [
        ("all-monolithic", {"operators.count": 1}, 7, 2),
        ("all-monolithic", {"operators.count": 2}, 7, 2),
    ]  # fmt: skip
    assert "SeedSequence" in m["seeding"]
    assert {"fleet-twin", "mesa", "distributed", "plotly"} <= m["versions"].keys()
    last = m["runs"][-1]
    assert last["backend"] == "pool" and last["ran"] == TASKS
    assert last["failed"] == 0 and not last["interrupted"]


def test_a_local_pool_and_a_dask_cluster_give_identical_results(
    pool_run, scenario, dask_scheduler, tmp_path
):
    out = tmp_path / "dask"
    r = twin("sweep", str(scenario), "--out", str(out), env={"TWIN_DASK_ADDRESS": dask_scheduler})
    assert r.returncode == 0, r.stderr
    assert manifest(out)["runs"][-1]["backend"] == "dask"
    assert_same_results(pool_run, out)


def test_the_summary_table_shows_each_arm_and_grid_point(pool_run):
    cells = cell_summary(results(pool_run)[0])
    assert [(a, json.loads(p)) for a, p in zip(cells["arm"], cells["point"], strict=True)] == [
        (arm, {"operators.count": n}) for arm in ARMS for n in (1, 2)
    ]
    assert (cells["replications"] == 2).all()
    ok = cells["guest_availability_ci95_low"] <= cells["guest_availability"]
    assert ok.all()


# -- interruption and resume ------------------------------------------------------------------

SLOW_SETS, SLOW_REPLICATIONS = ["horizon=2y"], 3  # 12 tasks of ~0.1 s
SLOW = ("--set", *SLOW_SETS, "--replications", str(SLOW_REPLICATIONS))
SLOW_TASKS = 12


@pytest.fixture(scope="module")
def slow_reference(scenario, pool, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("slow") / "results"
    plan = plan_sweep(scenario, SLOW_SETS, SLOW_REPLICATIONS)
    assert run_sweep(plan, out, pool).finished == SLOW_TASKS
    return out


def start_sweep(scenario: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [TWIN, "sweep", str(scenario), *SLOW, "--workers", "1", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def test_a_sweep_killed_with_sigkill_resumes_to_identical_results(
    scenario, slow_reference, tmp_path
):
    out = tmp_path / "results"
    proc = start_sweep(scenario, out)
    wait_for_parts(out, 3, proc)
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait(timeout=30)
    finished = finished_parts(out)
    assert 3 <= finished < SLOW_TASKS
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, "worker processes outlived the killed driver"

    r = twin("sweep", str(scenario), *SLOW, "--workers", "1", "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert re.search(rf"ran {SLOW_TASKS - finished} task\(s\)", r.stdout), r.stdout
    last = manifest(out)["runs"][-1]
    assert (last["ran"], last["skipped"]) == (SLOW_TASKS - finished, finished)
    assert_same_results(slow_reference, out)


def test_sigterm_keeps_every_finished_replication_and_asks_for_resume(scenario, tmp_path):
    out = tmp_path / "results"
    proc = start_sweep(scenario, out)
    wait_for_parts(out, 3, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "--resume" in stderr
    summary, _ = results(out)
    assert len(summary) == finished_parts(out) >= 3
    m = manifest(out)
    assert m["runs"][-1]["interrupted"] and not m["complete"]
    assert m["done"] == len(summary)


def test_a_pool_worker_that_dies_stops_the_sweep_and_keeps_what_finished(scenario, tmp_path):
    out = tmp_path / "results"
    before = {child.pid for child in psutil.Process().children(recursive=True)}

    def kill_the_worker(progress, task, result) -> None:
        if progress.finished == 2:  # as the kernel's OOM killer would
            for child in psutil.Process().children(recursive=True):
                if child.pid not in before and "spawn_main" in " ".join(child.cmdline()):
                    child.kill()

    plan = plan_sweep(scenario, SLOW_SETS, SLOW_REPLICATIONS)
    with pytest.raises(SweepAborted, match="died abruptly"), PoolBackend(1) as backend:
        run_sweep(plan, out, backend, on_task=kill_the_worker)
    m = manifest(out)
    assert m["runs"][-1]["interrupted"] and 2 <= m["done"] < SLOW_TASKS
    assert len(results(out)[0]) == m["done"] == finished_parts(out)


def test_resume_of_a_finished_sweep_runs_nothing(pool_run, scenario, pool, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(pool_run, out)
    progress = run_sweep(plan_sweep(scenario), out, pool, resume=True)
    assert (progress.ran, progress.skipped) == (0, TASKS)
    assert_same_results(pool_run, out)


def test_more_replications_extend_a_finished_sweep(pool_run, scenario, pool, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(pool_run, out)
    progress = run_sweep(plan_sweep(scenario, replications=3), out, pool, resume=True)
    assert (progress.ran, progress.skipped) == (4, TASKS)
    before, extended = results(pool_run)[0], results(out)[0]
    assert list(extended["replication"]) == [0, 1, 2] * 4
    kept = extended[extended["replication"] < 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)


def test_results_of_a_changed_scenario_are_never_mixed(pool_run, tmp_path):
    changed = write_scenario(tmp_path / "changed", sweep={"operators.count": [1, 3]})
    out = tmp_path / "results"
    shutil.copytree(pool_run, out)
    r = twin("sweep", str(changed), "--out", str(out), "--resume")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "different scenario" in r.stderr
    assert_same_results(pool_run, out)


def test_an_existing_sweep_is_not_redone_without_resume(pool_run, scenario):
    with pytest.raises(SweepRefused, match=r"already holds 8 of 8 .* pass --resume"):
        open_results(pool_run, plan_sweep(scenario), resume=False)


def test_a_directory_that_holds_no_sweep_is_refused(scenario, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SweepRefused, match=r"holds no sweep manifest\.json"):
        open_results(tmp_path, plan_sweep(scenario), resume=True)


def test_resume_into_an_empty_directory_starts_afresh(scenario, tmp_path):
    assert open_results(tmp_path / "new", plan_sweep(scenario), resume=True) == (set(), {})


# -- failures ---------------------------------------------------------------------------------


def test_a_task_failing_at_run_time_is_reported_by_key_while_the_others_finish(
    dask_scheduler, pool, tmp_path
):
    # The loader only checks that a topology file exists; a graph without hosts fails
    # when a worker builds the fleet, in the tasks of grid point 1 only.
    empty = tmp_path / "empty-fabric.json"
    empty.write_text(json.dumps({"directed": False, "multigraph": False, "graph": {},
                                 "nodes": [], "links": []}))  # fmt: skip
    path = write_scenario(tmp_path, sweep={"topology.file": [None, str(empty)]})
    out = tmp_path / "results"
    r = twin("sweep", str(path), "--out", str(out), "--dask", dask_scheduler)
    assert r.returncode == 1, r.stderr
    failed = sorted(re.findall(r"failed: (a\d-p\d-r\d) ", r.stderr))
    assert failed == ["a0-p1-r0", "a0-p1-r1", "a1-p1-r0", "a1-p1-r1"], r.stderr
    assert "the graph has no node" in r.stderr
    summary, _ = results(out)
    assert len(summary) == 4 and summary["topology.file"].isna().all()
    m = manifest(out)
    assert sorted(f["key"] for f in m["failures"]) == failed and not m["complete"]

    again = run_sweep(plan_sweep(path), out, pool, resume=True)
    assert (again.skipped, again.finished, again.failed) == (4, 0, 4)  # only the failed ran
    assert sorted(f.key for f in again.failures) == failed


# -- report -----------------------------------------------------------------------------------


def test_the_report_is_one_self_contained_html_file_with_every_figure(pool_run, tmp_path):
    output = tmp_path / "report.html"
    r = twin("report", str(pool_run), "--output", str(output))
    assert r.returncode == 0, r.stderr
    page = output.read_text()
    assert page.count('class="plotly-graph-div"') == 8  # one against the swept key, seven per cell
    for title in ("Headline metrics against operators.count", "Capacity and headroom",
                  "Guest availability by arm and grid point", "Incidents by cause",
                  "planned (updates, hatched) and unplanned", "Blast radius",
                  "Guest availability to date over time, by architecture",
                  "own downtime (minutes per guest-year"):  # fmt: skip
        assert title in page, title
    assert not re.search(r"<script[^>]+src=[\"']?https?:", page), "loads a script from the web"
    assert "plotly.js v" in page  # the library itself is inline
    assert "<table>" in page and "all-microkernel" in page and "operators.count=2" in page


def test_there_is_no_report_of_a_directory_without_results(tmp_path):
    with pytest.raises(SweepRefused, match=r"no manifest\.json"):
        write_report(tmp_path)
