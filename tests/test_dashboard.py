"""The live dashboard (SPEC 5, issue 6): its callbacks as plain functions, its security
rules, its refresh cost on a 2,000-host fleet, and the page itself in a real browser."""

from __future__ import annotations

import ast
import io
import os
import signal
import socket
import subprocess
import threading
import time
import tokenize
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conftest import CHROMIUM, CHROMIUM_ARGS, QUIET, require_chromium

from dashboard import callbacks, figures, layout
from dashboard import live as live_module
from dashboard.app import BindRefused, create_app, credentials, is_loopback, quiet_server
from dashboard.live import WATCH_SPEED, LiveFleet, allowed_sources
from twin.architectures import BEHAVIOURS

ROOT = Path(__file__).resolve().parents[1]
TWIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "twin"


@pytest.fixture
def live(tmp_path: Path) -> LiveFleet:
    """A quiet 4-host fleet (nothing fails unless told to), not yet running."""
    path = tmp_path / "configs" / "quiet.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(QUIET))
    return LiveFleet(allowed_sources(tmp_path), "configs/quiet.yaml", seed=1)


def host_cell(live: LiveFleet, name: str) -> list:
    """The heatmap's customdata cell of one host: [name, architecture, state, guests]."""
    heatmap = callbacks.refresh(live)[callbacks.VIEW_OUTPUTS.index("heatmap")]
    cells = [c for row in heatmap["data"][0]["customdata"] for c in row if c[0] == name]
    assert len(cells) == 1
    return cells[0]


# -- views -------------------------------------------------------------------------------


def test_refresh_fills_every_view_with_fleet_and_architecture_figures(live: LiveFleet) -> None:
    live.advance(50)
    out = dict(zip(callbacks.VIEW_OUTPUTS, callbacks.refresh(live), strict=True))
    assert "quiet.yaml" in out["status"]
    assert len(out["kpis"]) == 4  # availability, downtime, incidents, degraded time
    names = [t["name"] for t in out["availability"]["data"]]
    assert names == ["fleet", "monolithic", "microkernel"]
    assert len(out["availability"]["data"][0]["x"]) >= 5  # hourly samples over 50 h
    cells = [c for row in out["heatmap"]["data"][0]["customdata"] for c in row if c[0]]
    assert sorted(c[0] for c in cells) == ["h0", "h1", "h2", "h3"]
    assert {c[2] for c in cells} == {"running"}


def test_kpis_give_availability_in_nines_for_the_fleet_and_each_architecture() -> None:
    assert figures.nines(0.999) == pytest.approx(3.0)
    view = figures.FleetView(
        time=10.0, metrics={"guest_availability": 0.99, "by_architecture.monolithic."
                            "guest_availability": 0.9, "incidents.driver": 2.0},
        architectures=["monolithic"], samples=[], racks=[], hosts=[], components={},
        events=[], incidents=[], operators=[], tickets_waiting=0,
    )  # fmt: skip
    cards = figures.kpis(view)
    assert cards[0]["values"] == [("fleet", "99.00000% (2.00 nines)"),
                                  ("monolithic", "90.00000% (1.00 nines)")]  # fmt: skip
    assert cards[2]["values"][0] == ("fleet", "2")


def test_a_long_history_is_thinned_to_a_drawable_number_of_points_keeping_the_latest() -> None:
    points = list(range(10_000))
    thinned = figures.thin(points, limit=1000)
    assert len(thinned) <= 1001 and thinned[-1] == 9999 and thinned[0] == 0


# -- controls ----------------------------------------------------------------------------


def act(live: LiveFleet, trigger: str, **controls) -> str:
    """Press a fault button with these controls set (the rest as the page leaves them)."""
    return callbacks.act(live, trigger, callbacks.Controls(**controls))


def mix(live: LiveFleet, **shares) -> str:
    """Type these shares into the architecture-mix inputs and press Convert."""
    ids = [{"type": "mix-share", "architecture": a} for a in shares]
    return callbacks.act(live, "apply-mix", callbacks.Controls(), ids, list(shares.values()))


def test_crash_host_turns_it_red_in_the_heatmap_and_logs_the_event(live: LiveFleet) -> None:
    message = act(live, "crash", host="h2")
    assert message.startswith("host_crash: host h2 (rack r1) until crash detection")
    assert host_cell(live, "h2")[2] == "crashed"
    assert figures.STATE_COLOURS["crashed"] == "#d62728"
    rows = figures.events_rows(live.view())
    assert any(r["entity"] == "h2" and r["to"] == "crashed" for r in rows)


def test_tor_fault_and_power_cut_take_down_a_rack(live: LiveFleet) -> None:
    assert act(live, "tor", rack="r0").startswith("tor_fault: rack r0 (2 hosts)")
    assert host_cell(live, "h0")[2] == "unreachable"
    assert act(live, "power", rack="r1").startswith("power_loss: rack r1 (2 hosts)")
    assert host_cell(live, "h3")[2] not in ("running", "unreachable")
    topo = callbacks.refresh(live)[callbacks.VIEW_OUTPUTS.index("topology")]
    assert "tor-r0-0: down" in topo["data"][1]["text"]


def test_a_datastore_down_shows_red_in_the_storage_row_of_the_topology(live: LiveFleet) -> None:
    datastore = next(iter(live.fleet.infrastructure.datastore_hosts))
    with live.lock:
        live.fleet.components[datastore].fail()
    topo = callbacks.refresh(live)[callbacks.VIEW_OUTPUTS.index("topology")]
    parts = topo["data"][1]
    at = parts["text"].index(f"{datastore}: down")
    assert parts["y"][at] == -1.0
    assert parts["marker"]["color"][at] == figures.DOWN_COLOUR
    assert "storage" in topo["layout"]["yaxis"]["ticktext"]


def test_the_guest_downtime_histogram_holds_every_guest_and_the_crash(live: LiveFleet) -> None:
    act(live, "crash", host="h2")
    live.advance(5.0)
    out = callbacks.refresh(live)[callbacks.VIEW_OUTPUTS.index("guest-downtime")]
    bars = out["data"][0]
    assert sum(bars["y"]) == len(live.fleet.guests)  # every guest, in 50 bins
    down = [g for g in live.fleet.guests if g.host is not None and g.host.name == "h2"]
    above_zero = sum(n for x, n in zip(bars["x"], bars["y"], strict=True) if x > bars["width"])
    assert above_zero >= len(down) > 0
    assert "p99" in out["layout"]["title"]["text"]


def test_names_not_in_the_running_fleet_are_refused(live: LiveFleet) -> None:
    assert "unknown host" in act(live, "crash", host="h99")
    assert "unknown rack" in act(live, "tor", rack="r9")
    assert "unknown driver" in act(live, "driver-push", driver="x", driver_share=0.5,
                                   driver_multiplier=2)  # fmt: skip
    assert act(live, "driver-push", driver="nic", driver_share=7, driver_multiplier=2).startswith(
        "refused"
    )  # a share of 7 is not a probability
    assert live.view().hits == figures.Hits()  # nothing refused is watched


# -- injections: a duration, a clock slowed or paused until they are over, highlights ------


def test_a_power_cut_of_a_given_length_comes_back_by_itself_after_it(live: LiveFleet) -> None:
    message = act(live, "power", rack="r1", duration="2h")
    assert message.startswith("power_loss: rack r1 (2 hosts) for 2 h, at t=0.0 h")
    feed = live.fleet.topology.feeds_of_rack("r1")[0]
    live.advance(1.9)
    assert live.fleet.components[feed].state.value == "down"
    live.advance(0.2)
    assert live.fleet.components[feed].state.value == "up"
    assert live.fleet.operators.waiting == 0  # no repair ticket: it was a timed outage


def test_a_tor_fault_without_a_length_waits_for_an_operator(live: LiveFleet) -> None:
    message = act(live, "tor", rack="r0", duration="  ")
    assert "until an operator repairs it (network.tor_repair)" in message


@pytest.mark.parametrize("duration", ["soon", "-1h", "0", "0m"])
def test_an_outage_length_that_is_not_a_positive_duration_is_refused(
    live: LiveFleet, duration: str
) -> None:
    assert act(live, "power", rack="r1", duration=duration).startswith("refused")
    assert all(c.state.value == "up" for c in live.fleet.components.values())


def test_an_injection_slows_the_clock_until_it_is_over_then_the_chosen_speed_returns(
    live: LiveFleet,
) -> None:
    live.set_speed(24)
    message = act(live, "power", rack="r1", duration="2h")
    assert message.endswith(f"slowed to {WATCH_SPEED:g} h/s until it is over")
    assert live.state.clock_speed == WATCH_SPEED
    status = callbacks.refresh(live)[callbacks.VIEW_OUTPUTS.index("status")]
    assert f"at {WATCH_SPEED:g} h/s" in status and "watching power_loss on rack r1" in status
    live.advance(2.1)  # power is back, the hosts are still booting
    assert live.state.clock_speed == WATCH_SPEED
    live.advance(0.5)  # rebooted (15 min) and guests booted (6 min): every host serves
    assert live.state.watches == [] and live.state.clock_speed == 24
    assert live.state.message.startswith("power_loss on rack r1 (2 hosts) over after")


def test_the_runner_really_runs_an_injection_at_watch_speed(live: LiveFleet) -> None:
    live.set_speed(168)
    act(live, "crash", host="h0")  # about 1 h until it serves again
    began = time.monotonic()
    live.start()
    try:
        while live.fleet.time == 0 and time.monotonic() - began < 10:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        live.stop()
    wall = time.monotonic() - began
    assert 0 < live.fleet.time <= WATCH_SPEED * wall  # at 168 h/s one tick is 16.8 h


def test_pause_mode_stops_the_clock_on_the_injection_and_play_watches_it(
    live: LiveFleet,
) -> None:
    assert callbacks.set_watch_mode(live, "pause") == "on an injection: pause"
    assert callbacks.set_watch_mode(live, "fast").startswith("refused")
    assert act(live, "crash", host="h1").endswith(f"paused on it: Play watches it at "
                                                   f"{WATCH_SPEED:g} h/s")  # fmt: skip
    assert not live.state.playing
    assert callbacks.toggle_play(live) == "Pause"
    assert live.state.clock_speed == WATCH_SPEED


def test_a_speed_picked_while_watching_applies_at_once(live: LiveFleet) -> None:
    act(live, "crash", host="h1")
    callbacks.set_speed(live, 6)
    assert live.state.clock_speed == 6
    act(live, "crash", host="h2")  # a new injection is watched again
    assert live.state.clock_speed == WATCH_SPEED


def test_the_views_outline_what_an_injection_hit_until_it_is_over(live: LiveFleet) -> None:
    act(live, "power", rack="r1", duration="1h")
    act(live, "crash", host="h0")
    out = dict(zip(callbacks.VIEW_OUTPUTS, callbacks.refresh(live), strict=True))
    assert [s["name"] for s in out["heatmap"]["layout"]["shapes"]] == ["hit: h0", "hit: r1"]
    ringed = out["topology"]["data"][-1]
    assert ringed["name"] == "hit by an injection"
    feed = live.fleet.topology.feeds_of_rack("r1")[0]
    assert set(ringed["text"]) == {"r1: hit by an injection", f"{feed}: hit by an injection"}
    by_cluster = figures.heatmap_figure(live.view(), "cluster")  # a rack is its hosts there
    outlined = sorted(s["name"] for s in by_cluster["layout"]["shapes"])
    assert outlined == ["hit: h0", "hit: h2, h3"]  # neighbours share one frame
    live.advance(3)
    out = dict(zip(callbacks.VIEW_OUTPUTS, callbacks.refresh(live), strict=True))
    assert out["heatmap"]["layout"]["shapes"] == []
    assert out["topology"]["data"][-1].get("name") != "hit by an injection"


@pytest.mark.usefixtures("live")  # writes configs/quiet.yaml, the scenario's base
def test_a_scenarios_timed_injection_is_watched_from_the_moment_it_fires(tmp_path: Path) -> None:
    scenario = tmp_path / "scenarios" / "cut.yaml"
    scenario.parent.mkdir()
    scenario.write_text(yaml.safe_dump({
        "name": "cut", "base": "../configs/quiet.yaml",
        "injections": [{"at": "10h", "action": "power_loss", "rack": "r1", "duration": "2h"}],
    }))  # fmt: skip
    live = LiveFleet(allowed_sources(tmp_path), "scenarios/cut.yaml", seed=1)
    live.set_speed(168)
    live.advance(50)
    assert live.fleet.time == pytest.approx(10.0)  # it stopped where the cut began
    assert live.state.message.startswith("scenario power_loss: rack r1 (2 hosts) for 2 h")
    assert live.state.clock_speed == WATCH_SPEED and "r1" in live.view().hits.racks
    live.advance(3)
    assert live.state.watches == [] and live.state.clock_speed == 168


def test_runs_of_hit_cells_are_framed_together() -> None:
    assert figures.runs([True, True, False, True, False, False, True]) == [(0, 1), (3, 3),
                                                                           (6, 6)]  # fmt: skip
    assert figures.runs([]) == [] and figures.runs([False]) == []


def test_reset_clears_every_message_and_every_watch(live: LiveFleet) -> None:
    act(live, "crash", host="h0")
    live.advance(5)  # the crash is over: the runner says so
    act(live, "tor", rack="r0")
    assert live.state.message and live.state.watches
    out = callbacks.reset(live, "configs/quiet.yaml", 1)
    assert out[-1] == ""  # the action message
    assert live.state.message == "" and live.state.watches == []
    status = callbacks.refresh(live)[callbacks.VIEW_OUTPUTS.index("status")]
    assert "over" not in status and "watching" not in status


# -- architectures: names, colours and the mix from the behaviour table -------------------


@pytest.fixture
def third_architecture(monkeypatch: pytest.MonkeyPatch) -> str:
    """``kvm`` in the behaviour table: the real one once it has landed, else a copy of the
    monolithic row under that name (the dashboard must not care which)."""
    if "kvm" not in BEHAVIOURS:
        monkeypatch.setitem(BEHAVIOURS, "kvm", replace(BEHAVIOURS["monolithic"], name="kvm"))
    return "kvm"


def test_every_architecture_of_the_table_has_its_own_colour_and_line_a_third_too(
    third_architecture: str,
) -> None:
    names = figures.architecture_names()
    assert len(names) >= 3 and third_architecture in names
    colours = [figures.architecture_colour(a) for a in names]
    assert len(set(colours) | {figures.architecture_colour("*")}) == len(names) + 1
    view = figures.FleetView(
        time=2.0, metrics={}, architectures=names, racks=[], hosts=[], components={},
        samples=[(1.0, scope, 1.0) for scope in ["*", *names]],
        events=[], incidents=[], operators=[], tickets_waiting=0,
    )  # fmt: skip
    lines = figures.availability_figure(view)["data"]
    assert [t["name"] for t in lines] == ["fleet", *names]
    assert [t["line"]["color"] for t in lines[1:]] == colours
    assert all(len(card["values"]) == len(names) + 1 for card in figures.kpis(view))


def test_the_mix_control_has_one_share_input_per_architecture(
    live: LiveFleet, third_architecture: str
) -> None:
    inputs = [group.children[1] for group in layout.mix_controls(live).children]
    assert [i.id["architecture"] for i in inputs] == figures.architecture_names()
    assert [i.value for i in inputs][-1] == 0  # no host runs the third one yet
    out = callbacks.reset(live, "configs/quiet.yaml", 1)
    assert len(out[-2]) == len(inputs)  # a reset sets every input


def test_mix_moves_take_hosts_from_the_architectures_over_their_share() -> None:
    moves = live_module.mix_moves({"a": 4, "b": 4, "c": 0}, {"a": 2, "b": 3, "c": 3})
    assert moves == [("a", "c", 2), ("b", "c", 1)]
    assert live_module.mix_moves({"a": 1, "b": 3}, {"a": 1, "b": 3}) == []
    assert live_module.mix_moves({"a": 0, "b": 3, "c": 1}, {"a": 2, "b": 1, "c": 1}) == [
        ("b", "a", 2)
    ]


def test_the_mix_inputs_convert_hosts_live_with_shares_normalised(live: LiveFleet) -> None:
    assert mix(live, monolithic=0, microkernel=5).startswith("converted 2 monolithic -> "
                                                             "microkernel")  # fmt: skip
    assert {h.architecture for h in live.fleet.hosts} == {"microkernel"}
    assert mix(live, monolithic=3, microkernel=1).endswith(
        "monolithic 75%, microkernel 25%, kvm 0%"
    )
    assert mix(live, monolithic=0.75, microkernel=0.25).startswith("mix unchanged")
    live.advance(1)
    assert all(h.serving for h in live.fleet.hosts)  # a planned reboot into the new one


@pytest.mark.parametrize(
    "shares", [{"monolithic": -1, "microkernel": 1}, {"monolithic": "all", "microkernel": 0},
               {"monolithic": 0, "microkernel": 0}, {"xen": 1, "monolithic": 0}],
)  # fmt: skip
def test_a_mix_that_is_not_shares_of_known_architectures_is_refused(
    live: LiveFleet, shares: dict
) -> None:
    before = [h.architecture for h in live.fleet.hosts]
    assert mix(live, **shares).startswith("refused")
    assert [h.architecture for h in live.fleet.hosts] == before
    ids = [{"type": "mix-share", "architecture": "monolithic"}]
    assert callbacks.act(live, "apply-mix", callbacks.Controls(), ids, [1, 0]).startswith(
        "refused"
    )  # a value without a name


def test_the_dashboard_writes_no_architecture_name_as_a_string_literal() -> None:
    names = {*figures.architecture_names(), "monolithic", "microkernel", "kvm"}
    found = []
    for path in sorted((ROOT / "dashboard").glob("*.py")):
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.STRING and ast.literal_eval(token.string) in names:
                found.append(f"{path.name}:{token.start[0]} {token.string}")
    assert found == []


def test_the_heatmap_groups_hosts_by_cluster_on_demand(live: LiveFleet) -> None:
    heatmap = callbacks.refresh(live, "cluster")[callbacks.VIEW_OUTPUTS.index("heatmap")]
    rows = {
        row: sorted(c[0] for c in cells if c[0])
        for row, cells in zip(
            heatmap["data"][0]["y"], heatmap["data"][0]["customdata"], strict=True
        )
    }
    clusters = {key if isinstance(key, str) else "/".join(key): sorted(h.name for h in hosts)
                for key, hosts in live.fleet.clusters.items()}  # fmt: skip
    assert rows == clusters and len(rows) == 2
    assert heatmap["layout"]["title"]["text"] == "Hosts by cluster"
    by_rack = callbacks.refresh(live, "nonsense")[callbacks.VIEW_OUTPUTS.index("heatmap")]
    assert by_rack["data"][0]["y"] == ["r0", "r1"]


def test_pause_stops_simulated_time_and_play_resumes_it(live: LiveFleet) -> None:
    live.set_speed(100.0)
    live.start()
    try:
        assert callbacks.toggle_play(live) == "Play"
        time.sleep(0.3)
        paused_at = live.fleet.time
        time.sleep(0.4)
        assert live.fleet.time == paused_at
        assert callbacks.toggle_play(live) == "Pause"
        time.sleep(0.5)
        assert live.fleet.time > paused_at
    finally:
        live.stop()


def test_the_runner_stops_at_the_configured_horizon(live: LiveFleet) -> None:
    live.set_speed(168.0)  # the quiet fleet's horizon is 100 h: about 0.6 s
    live.start()
    try:
        deadline = time.monotonic() + 5
        while live.state.playing and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        live.stop()
    assert not live.state.playing
    assert live.fleet.time == pytest.approx(live.fleet.horizon)
    label, status = callbacks.refresh(live)[:2]
    assert label == "Play" and "horizon" in status
    assert callbacks.toggle_play(live) == "Play"  # nothing left to play


def test_speed_is_taken_only_from_the_offered_list(live: LiveFleet) -> None:
    assert callbacks.set_speed(live, 24) == "speed 24 h/s"
    assert live.state.speed == 24
    assert callbacks.set_speed(live, 1e9).startswith("refused")
    assert live.state.speed == 24


def test_reset_rebuilds_the_fleet_with_the_new_seed(live: LiveFleet) -> None:
    live.advance(10)
    out = callbacks.reset(live, "configs/quiet.yaml", 7)
    assert out[0] == "reset: configs/quiet.yaml, seed 7"
    assert live.fleet.time == 0 and live.state.seed == 7
    assert [o["value"] for o in out[1]] == ["h0", "h1", "h2", "h3"]


# -- security ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../configs/default.yaml", "configs/../../x.yaml", None, 3]
)
def test_reset_never_reads_a_file_outside_the_offered_list(live: LiveFleet, name) -> None:
    before = live.fleet
    assert callbacks.reset(live, name, 1)[0].startswith("refused")
    assert live.fleet is before


def test_picker_offers_only_yaml_under_configs_and_scenarios_and_the_command_line_file(
    tmp_path: Path,
) -> None:
    for name in ("configs/a.yaml", "scenarios/b.yaml", "secrets/c.yaml", "configs/d.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("name: x\n")
    extra = tmp_path / "mine.yaml"
    extra.write_text("name: mine\n")
    sources = allowed_sources(tmp_path, [extra])
    assert sorted(sources) == ["configs/a.yaml", "mine.yaml", "scenarios/b.yaml"]


def test_loopback_needs_no_auth_and_a_public_address_does() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert credentials("127.0.0.1", None, env={}) is None
    with pytest.raises(BindRefused):
        credentials("0.0.0.0", None, env={})
    assert credentials("0.0.0.0", "ops:s3cret", env={}) == ("ops", "s3cret")
    assert credentials("10.0.0.5", None, env={"TWIN_DASHBOARD_AUTH": "a:b"}) == ("a", "b")
    with pytest.raises(BindRefused):
        credentials("0.0.0.0", "no-colon", env={})


def test_cli_refuses_a_public_host_without_auth_in_one_line_with_exit_2() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TWIN_DASHBOARD_AUTH"}
    proc = subprocess.run([str(TWIN), "dashboard", "--host", "0.0.0.0"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=env)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: --host 0.0.0.0")


def test_the_served_dashboard_logs_no_line_per_request_only_where_it_is(tmp_path: Path) -> None:
    config = tmp_path / "quiet.yaml"
    config.write_text(yaml.safe_dump(QUIET))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([str(TWIN), "dashboard", str(config), "--port", str(port)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        for path in ("/", "/_dash-layout", "/_dash-dependencies", "/_twin/bootstrap.min.css"):
            assert urllib.request.urlopen(url + path, timeout=5).status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    lines = (out + err).strip().splitlines()
    assert lines == [f"fleet twin dashboard on {url}/ (Ctrl-C stops it)"]


def test_basic_auth_guards_every_page_when_credentials_are_given(live: LiveFleet) -> None:
    client = create_app(live, ("ops", "s3cret")).server.test_client()
    assert client.get("/").status_code == 401
    assert client.get("/", auth=("ops", "wrong")).status_code == 401
    assert client.get("/", auth=("ops", "s3cret")).status_code == 200


# -- cost --------------------------------------------------------------------------------


def test_refresh_of_a_2000_host_fleet_takes_under_200_ms(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump({
        "name": "big", "base": str(ROOT / "configs" / "default.yaml"),
        "overrides": {"topology": {"pods": 5, "racks_per_pod": 10, "hosts_per_rack": 40}},
    }))  # fmt: skip
    live = LiveFleet({"big.yaml": path}, "big.yaml")
    assert len(live.fleet.hosts) == 2000
    live.advance(24 * 14)
    callbacks.refresh(live)
    best = min(_timed(callbacks.refresh, live) for _ in range(3))
    assert best < 0.2


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


# -- the page in a real browser ----------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, LiveFleet]]:
    """The dashboard of the default fleet on a free 127.0.0.1 port, stopped afterwards."""
    live = LiveFleet(allowed_sources(ROOT), "configs/default.yaml", seed=3)
    live.set_speed(24.0)
    server = quiet_server(create_app(live), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    live.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", live
    finally:
        live.stop()
        server.shutdown()
        thread.join(timeout=5)


POINTS = "document.querySelector('#availability .js-plotly-plot').data[0].x.length"
HOST_STATE = """name => {
    const cells = document.querySelector('#heatmap .js-plotly-plot').data[0].customdata.flat();
    const cell = cells.find(c => c[0] === name);
    return cell ? cell[2] : null;
}"""


def test_browser_shows_the_live_fleet_pauses_and_crashes_a_host(served, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a shared, loaded machine: bounds, not waits

    url, live = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            expect(page.locator(".kpi")).to_have_count(4, timeout=20_000)
            expect(page.locator(".kpi").first).to_contain_text("nines")
            for graph in (
                "availability",
                "heatmap",
                "topology",
                "incidents",
                "blast",
                "guest-downtime",
            ):
                expect(page.locator(f"#{graph} .main-svg").first).to_be_visible(timeout=20_000)

            page.wait_for_function(f"{POINTS} > 0", timeout=10_000)
            before = page.evaluate(POINTS)
            page.wait_for_function(f"{POINTS} > {before}", timeout=10_000)

            page.click("#play")
            expect(page.locator("#play")).to_have_text("Play")
            expect(page.locator("#status")).to_contain_text("paused", timeout=20_000)
            paused = page.evaluate(POINTS)
            page.wait_for_timeout(2_500)
            assert page.evaluate(POINTS) == paused

            host = live.fleet.hosts[0].name
            page.click("#crash")
            expect(page.locator("#action-message")).to_contain_text("host_crash")
            expect(page.locator("#events")).to_contain_text(host, timeout=20_000)
            expect(page.locator("#events")).to_contain_text("crashed")
            page.wait_for_function(f"({HOST_STATE})('{host}') === 'crashed'", timeout=20_000)

            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert errors == []
            if target := os.environ.get("TWIN_DASHBOARD_SCREENSHOT"):
                page.screenshot(path=target, full_page=False)
        finally:
            browser.close()


HEATMAP = "document.querySelector('#heatmap .js-plotly-plot')"
TOPOLOGY = "document.querySelector('#topology .js-plotly-plot')"


def test_browser_watches_an_injection_of_a_given_length_and_reset_clears_it(
    served, third_architecture: str, tmp_path: Path
) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a shared, loaded machine: bounds, not waits

    url, live = served
    rack = live.fleet.topology.racks[0]
    hosts = sum(h.rack == rack for h in live.fleet.hosts)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            expect(page.locator(".kpi")).to_have_count(4, timeout=20_000)
            names = figures.architecture_names()
            expect(page.locator("input[id*='mix-share']")).to_have_count(len(names))

            page.fill("#duration", "2h")
            page.click("#power")
            message = page.locator("#action-message")
            expect(message).to_contain_text(f"power_loss: rack {rack} ({hosts} hosts) for 2 h")
            expect(message).to_contain_text(f"slowed to {WATCH_SPEED:g} h/s")
            status = page.locator("#status")
            expect(status).to_contain_text(f"watching power_loss on rack {rack}", timeout=20_000)
            expect(status).to_contain_text(f"playing at {WATCH_SPEED:g} h/s")
            page.wait_for_function(
                f"{HEATMAP}.layout.shapes.some(s => s.name === 'hit: {rack}')", timeout=20_000
            )
            page.wait_for_function(
                f"{TOPOLOGY}.data.some(t => t.name === 'hit by an injection')", timeout=20_000
            )
            began = live.fleet.time
            page.wait_for_timeout(2_000)
            assert live.fleet.time - began < 4 * WATCH_SPEED  # about 0.5 h, not 48 h

            page.click("text=hosts by cluster")
            page.wait_for_function(
                f"{HEATMAP}.layout.title.text.startsWith('Hosts by cluster')", timeout=20_000
            )

            mine = names.index(third_architecture)
            for i, name in enumerate(names):
                share = "1" if i == 1 else "0"
                page.fill(f'input[id*=\'"architecture":"{name}"\']', share)
            page.click("#apply-mix")
            expect(message).to_contain_text(f"-> {names[1]}")
            expect(message).to_contain_text(f"{names[mine]} 0%")

            page.click("#reset")
            expect(page.locator("#reset-message")).to_contain_text("reset:")
            expect(message).to_have_text("")
            expect(status).not_to_contain_text("watching", timeout=20_000)
            expect(status).not_to_contain_text(f"at {WATCH_SPEED:g} h/s")

            page.click("text=pause on it")
            page.click("#crash")
            expect(message).to_contain_text("paused on it")
            expect(page.locator("#play")).to_have_text("Play", timeout=20_000)
            expect(status).to_contain_text("paused")
            assert errors == []
        finally:
            browser.close()
