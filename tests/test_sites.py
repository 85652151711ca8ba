"""Sites that share nothing (``operators.per_site``) run apart and merge exactly (issue 21).

A small fleet of three sites (16 hosts each, a quarter-year) runs site by site in this
process, on a process pool and on a Dask `LocalCluster`, and gives the same JSON bit for
bit; the merge adds integrals and counts and takes percentiles over all sites' incidents.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.config import load_config
from twin.experiments.backends import DaskBackend
from twin.experiments.runner import run_replication, run_replications
from twin.experiments.sites import (
    SiteTask,
    dependent_sites,
    merge_sites,
    run_site,
    site_seeds,
)
from twin.fleet import Fleet
from twin.metrics import Books
from twin.topology import build_topology

ROOT = Path(__file__).resolve().parents[1]
TWIN = shutil.which("twin", path=str(Path(sys.executable).parent)) or "twin"
DEFAULT = ROOT / "configs" / "default.yaml"
SITES = ["topology.sites=3", "topology.pods=1", "topology.racks_per_pod=2",
         "topology.hosts_per_rack=8", "operators.per_site=true", "operators.count=2",
         "horizon=0.25y", "sample_every=1w"]  # fmt: skip


@pytest.fixture(scope="module")
def config():
    return load_config(DEFAULT, SITES)


@pytest.fixture(scope="module")
def serial(config):
    return run_replications(config, 2, seed=11)


def test_a_per_site_fleet_without_shared_services_runs_by_site(config):
    assert dependent_sites(config) is None
    assert "per_site" in dependent_sites(load_config(DEFAULT, [*SITES, "operators.per_site=false"]))
    with_service = load_config(DEFAULT, [*SITES, "services=[{name: web, replicas: 3}]"])
    assert "services" in dependent_sites(with_service)
    assert "one site" in dependent_sites(load_config(DEFAULT, [*SITES, "topology.sites=1"]))


def test_a_dask_local_cluster_gives_the_serial_runs_json_bit_for_bit(config, serial):
    with DaskBackend("local", 2) as backend:
        distributed = run_replications(config, 2, seed=11, backend=backend)
    assert json.dumps(distributed.summary()) == json.dumps(serial.summary())
    pd.testing.assert_frame_equal(distributed.timeseries(), serial.timeseries(), check_exact=True)


def test_twin_run_with_workers_prints_the_serial_runs_json_bit_for_bit(serial):
    sets = [arg for kv in SITES for arg in ("--set", kv)]
    cmd = [TWIN, "run", str(DEFAULT), *sets, "-r", "2", "--seed", "11", "--json", "--workers", "2"]
    pooled = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert pooled.stdout == json.dumps(serial.summary()) + "\n"


def test_workers_for_a_fleet_whose_sites_share_a_team_is_refused_before_any_work():
    args = ["run", str(DEFAULT), "--set", "topology.sites=2", "--workers", "2"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2
    assert done.stderr.strip().count("\n") == 0
    assert "operators.per_site is false" in done.stderr


def test_each_site_draws_from_its_own_child_of_the_replications_seed(config):
    seeds = site_seeds(11, 1, 3)
    child = np.random.SeedSequence(11).spawn(2)[1]
    assert [s.spawn_key for s in seeds] == [(*child.spawn_key, k) for k in range(3)]
    alone = Fleet(config, seeds[2], record_events=False, site=2)
    alone.run_until(alone.horizon)
    assert Books.of(alone).incidents == run_site(SiteTask(config, 1, 11, 2)).books.incidents


def test_the_merge_adds_integrals_and_counts_and_pools_incidents(config, serial):
    parts = [run_site(SiteTask(config, 0, 11, s)) for s in range(3)]
    merged = merge_sites(0, parts).metrics
    assert merged == serial.replications[0].metrics
    site = [p.books for p in parts]
    fleet = [b.incidents.scopes["*"] for b in site]
    for cause in ("hypervisor", "update", "driver"):
        assert merged[f"incidents.{cause}"] == sum(t.causes[cause] for t in fleet)
    assert merged["blast_radius_max"] == max(max(t.radii) for t in fleet)
    radii = [r for t in fleet for r, n in t.radii.items() for _ in range(n)]
    assert merged["blast_radius_p95"] == np.percentile(radii, 95)
    hours = [b.ledger.integral("guests", "*", b.now) for b in site]
    up = [b.ledger.integral("guests_up", "*", b.now) for b in site]
    assert merged["guest_availability"] == pytest.approx(sum(up) / sum(hours), rel=1e-12)
    assert merged["migrations"] == sum(b.migrations.get("*", 0) for b in site)


def test_a_single_site_or_shared_team_fleet_keeps_the_whole_fleets_stream():
    for sets in (["topology.sites=2", "horizon=30d"], ["operators.per_site=true", "horizon=30d"]):
        config = load_config(DEFAULT, sets)
        whole = Fleet(config, np.random.SeedSequence(3).spawn(1)[0], record_events=False)
        assert run_replication(config, 0, 3).metrics == whole.run()


def test_one_site_alone_is_named_as_in_the_whole_fleet(config):
    whole, alone = build_topology(config.topology), build_topology(config.topology, site=1)
    assert alone.hosts == whole.hosts[16:32]
    assert alone.racks == whole.racks[2:4]
    assert set(alone.host_site) == {"1"}


def test_a_whole_fleet_with_per_site_has_a_team_and_campaigns_per_site(config):
    with_service = load_config(DEFAULT, [*SITES, "services=[{name: web, replicas: 3}]"])
    fleet = Fleet(with_service, 1, record_events=False)
    assert len(fleet.operators.operators) == 3 * 2
    assert {op.name for op in fleet.operators.teams["2"].operators} == {"s2-op0", "s2-op1"}
    host = fleet.hosts[40]  # site 2
    fleet.operators.request_reboot(host)
    assert [t.kind for t in fleet.operators.teams["2"].tickets] == ["reboot"]
    for campaign in fleet.campaigns.values():
        for site, by_site in campaign.by_site.items():
            order = by_site.rollout_order()
            assert order and {fleet.topology.host_site[h.index] for h in order} == {site}
