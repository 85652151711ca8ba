"""The fleet graph: construction, loading, reachability and power."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import quiet_config

from twin.config import ConfigError
from twin.config.schema import TopologyConfig
from twin.fleet import Fleet
from twin.topology import NodeKind, build_topology, load_topology, write_topology

ROOT = Path(__file__).resolve().parents[1]


def small() -> TopologyConfig:
    return TopologyConfig(sites=1, pods=2, racks_per_pod=2, hosts_per_rack=3, spines=2,
                          tors_per_rack=2, power_feeds_per_rack=2)  # fmt: skip


def test_built_graph_has_typed_nodes_in_the_configured_numbers():
    topo = build_topology(small())
    kinds = [d["kind"] for _, d in topo.graph.nodes(data=True)]
    assert kinds.count(NodeKind.CORE) == 1
    assert kinds.count(NodeKind.SPINE) == 4
    assert kinds.count(NodeKind.TOR) == 8
    assert kinds.count(NodeKind.POWER) == 8
    assert kinds.count(NodeKind.STORAGE) == 2
    assert topo.n_hosts == 12 and len(topo.racks) == 4
    assert topo.rack_hosts["r1"] == [3, 4, 5]


def test_one_of_two_tors_down_keeps_the_rack_reachable_both_down_cut_it_off():
    topo = build_topology(small())
    assert topo.reachable_hosts({"tor-r0-0"}).all()
    cut = topo.reachable_hosts({"tor-r0-0", "tor-r0-1"})
    assert list(cut) == [False] * 3 + [True] * 9


def test_all_spines_of_a_pod_down_cut_off_the_whole_pod():
    topo = build_topology(small())
    cut = topo.reachable_hosts({"spine-s0p0-0", "spine-s0p0-1"})
    assert list(cut) == [False] * 6 + [True] * 6


def test_a_host_keeps_power_while_one_of_its_feeds_is_live():
    topo = build_topology(small())
    assert topo.powered_hosts({"pdu-r0-0"}).all()
    assert list(topo.powered_hosts({"pdu-r0-0", "pdu-r0-1"})[:4]) == [False] * 3 + [True]


@pytest.mark.parametrize("suffix", [".graphml", ".json"])
def test_a_written_graph_loads_back_the_same(tmp_path, suffix):
    topo = build_topology(small())
    path = tmp_path / f"fleet{suffix}"
    write_topology(topo, path)
    back = load_topology(path)
    assert back.hosts == topo.hosts
    assert back.host_rack == topo.host_rack
    assert sorted(back.graph.edges) == sorted(topo.graph.edges) or (
        back.graph.number_of_edges() == topo.graph.number_of_edges()
    )
    assert list(back.reachable_hosts({"tor-r0-0", "tor-r0-1"})) == list(
        topo.reachable_hosts({"tor-r0-0", "tor-r0-1"})
    )


def test_the_shipped_example_graph_runs_as_a_fleet():
    cfg = quiet_config(
        topology={"file": str(ROOT / "configs" / "topologies" / "two-racks.graphml")}
    )
    fleet = Fleet(cfg, 1)
    assert len(fleet.hosts) == 8
    assert {h.architecture for h in fleet.hosts} == {"monolithic", "microkernel"}
    fleet.components["tor-r0-0"].fail()
    assert sum(not h.reachable for h in fleet.hosts) == 4


def test_a_graph_with_an_unknown_node_kind_is_a_config_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"directed": false, "multigraph": false, "graph": {}, '
                    '"nodes": [{"id": "x", "kind": "router"}], "links": []}')  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_topology(path)
    assert err.value.path == "topology.file" and "router" in str(err.value)


def test_a_missing_graph_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_topology(tmp_path / "nope.graphml")


def test_reachability_is_recomputed_only_when_a_switch_changes(monkeypatch):
    fleet = Fleet(quiet_config(), 1)
    calls = []
    original = fleet.topology.reachable_hosts
    monkeypatch.setattr(
        fleet.topology, "reachable_hosts", lambda down: calls.append(1) or original(down)
    )
    fleet.hosts[0].crash("hypervisor")
    fleet.components["pdu-r1-0"].fail()
    fleet.run_until(50)
    assert calls == []
    fleet.components["tor-r0-0"].fail()
    fleet.run_until(60)
    assert len(calls) == 2  # down, and back up after the repair


def test_the_shipped_graphml_config_checks_ok():
    import subprocess

    from test_cli import TWIN

    r = subprocess.run([TWIN, "check", str(ROOT / "configs" / "two-racks-graphml.yaml")],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "8 hosts" in r.stdout
