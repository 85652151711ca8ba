"""A twin of a real fleet: inventory import, incident logs, calibration, replay, backtest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from twin.calibration.backtest import backtest
from twin.calibration.calibrate import calibrate, calibrated_config, fleet_inventory
from twin.calibration.fitting import (
    Sample,
    crow_amsaa,
    fit_family,
    laplace_trend,
    poisson_rate,
)
from twin.calibration.logs import IncidentLog, LogError, read_csv_log, read_lanl_log
from twin.calibration.replay import replay
from twin.cli import app
from twin.config import ConfigError, load_config, validate_config
from twin.fleet import Fleet

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "data" / "lanl-system-6.csv"
SHARED_LANL = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "lanl-failures-1996-2005.csv.xz"
)
DEFAULT = ROOT / "configs" / "default.yaml"
runner = CliRunner()

WINDOW_START = pd.Timestamp("2024-01-01")


def synthetic_log(path: Path, hosts: int = 200, years: float = 1.0, seed: int = 7) -> Path:
    """A log generated with the twin's semantics from known processes: on each host, every
    cause's clock starts when the host is up; the first to fire takes it down for a
    lognormal repair (median 2 h, sigma 0.5), then every clock starts again."""
    rng = np.random.default_rng(seed)
    horizon = years * 8760
    draw = {
        "hardware": lambda: 2000 * rng.weibull(0.7),  # Weibull shape 0.7, scale 2000 h
        "hypervisor": lambda: rng.exponential(5000),  # exponential, mean 5000 h
    }
    rows = []
    for h in range(hosts):
        t = 0.0
        while True:
            times = {cause: t + f() for cause, f in draw.items()}
            cause = min(times, key=times.get)
            start = times[cause]
            if start >= horizon:
                break
            end = start + rng.lognormal(math.log(2), 0.5)
            rows.append((start, end, f"h{h}", cause))
            t = end
    frame = pd.DataFrame(rows, columns=["start", "end", "host", "cause"])
    for column in ("start", "end"):
        frame[column] = (WINDOW_START + pd.to_timedelta(frame[column], unit="h")).dt.strftime(
            "%Y-%m-%dT%H:%M:%S.%f"
        )
    inventory = path.with_name("hosts.csv")
    pd.DataFrame({"host": [f"h{h}" for h in range(hosts)]}).to_csv(inventory, index=False)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_log(tmp_path_factory.mktemp("log") / "incidents.csv")


def read_synthetic(path: Path) -> IncidentLog:
    return read_csv_log(path, inventory=path.with_name("hosts.csv"),
                        start="2024-01-01", end="2024-12-30")  # fmt: skip


# -- fitting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "params", "draw"),
    [
        ("weibull", {"shape": 0.7, "scale": 2000.0}, lambda r, n: 2000 * r.weibull(0.7, n)),
        ("lognormal", {"median": 3.0, "sigma": 1.2}, lambda r, n: r.lognormal(math.log(3), 1.2, n)),
        ("gamma", {"shape": 2.5, "scale": 40.0}, lambda r, n: r.gamma(2.5, 40.0, n)),
        ("exponential", {"mean": 700.0}, lambda r, n: r.exponential(700.0, n)),
    ],
)
def test_censored_mle_recovers_known_parameters_within_ten_percent(family, params, draw) -> None:
    rng = np.random.default_rng(3)
    times = draw(rng, 3000)
    censor = rng.exponential(np.median(times) * 3, 3000)  # about a fifth censored
    sample = Sample.of(np.minimum(times, censor), times <= censor)
    fit = fit_family(family, sample)
    for key, value in params.items():
        assert fit.params[key] == pytest.approx(value, rel=0.10), key
    assert fit.ks_distance < 0.05


def test_rate_interval_is_the_exact_poisson_interval() -> None:
    rate = poisson_rate(10, 8760.0)  # 10 events in one host-year
    assert (rate.mean, rate.ci95_low, rate.ci95_high) == pytest.approx(
        (10, 4.7954, 18.3904), abs=1e-3
    )
    assert poisson_rate(0, 8760.0).ci95_high == pytest.approx(3.6889, abs=1e-3)


def test_laplace_test_sees_a_falling_rate_and_not_a_constant_one() -> None:
    rng = np.random.default_rng(1)
    constant = np.sort(rng.uniform(0, 1000, 400))
    falling = 1000 * rng.uniform(0, 1, 400) ** 3
    assert not laplace_trend(constant, 1000).significant
    trend = laplace_trend(falling, 1000)
    assert trend.significant and trend.statistic < 0 and trend.beta < 1


def test_crow_amsaa_recovers_the_shape_of_a_power_law_process() -> None:
    rng = np.random.default_rng(2)
    horizon, beta = 10_000.0, 0.6  # given n events, times are iid with cdf (t / T) ** beta
    times = horizon * rng.uniform(size=2000) ** (1 / beta)
    lam, fitted = crow_amsaa(times, horizon)
    assert fitted == pytest.approx(beta, rel=0.10)
    assert lam * horizon**fitted == pytest.approx(2000)


# -- calibration on logs from known processes ------------------------------------------------


def test_calibration_recovers_the_processes_that_generated_a_log(synthetic: Path) -> None:
    cal = calibrate(read_synthetic(synthetic))
    hardware, hypervisor = cal.causes["hardware"], cal.causes["hypervisor"]
    assert hardware.fault.family == "weibull"
    assert hardware.fault.params["shape"] == pytest.approx(0.7, rel=0.10)
    assert hardware.fault.params["scale"] == pytest.approx(2000, rel=0.10)
    assert hypervisor.fault.frozen().mean() == pytest.approx(5000, rel=0.10)
    assert hardware.repair.family == "lognormal"
    assert hardware.repair.params["median"] == pytest.approx(2.0, rel=0.10)
    assert hardware.repair.params["sigma"] == pytest.approx(0.5, rel=0.10)


def test_exposure_counts_hosts_without_incidents(tmp_path: Path) -> None:
    log_path = tmp_path / "log.csv"
    log_path.write_text(
        "start,end,host,cause\n2024-01-10T00:00:00,2024-01-10T02:00:00,a,hardware\n"
    )
    inventory = tmp_path / "hosts.csv"
    inventory.write_text("host,production_start\na,\nb,\nc,2024-01-16T00:00:00\n")
    log = read_csv_log(log_path, inventory=inventory, start="2024-01-01", end="2024-01-31")
    assert log.exposure_hours() == pytest.approx(2 * 30 * 24 + 15 * 24)
    assert poisson_rate(1, log.exposure_hours()).mean == pytest.approx(8760 / (75 * 24))


def test_calibrated_config_is_a_valid_fleet_carrying_the_fits(
    synthetic: Path, tmp_path: Path
) -> None:
    log = read_synthetic(synthetic)
    cal = calibrate(log)
    fleet_inventory(log, tmp_path / "fleet.hosts.csv")
    text = calibrated_config(cal, inventory="fleet.hosts.csv")
    (tmp_path / "fleet.yaml").write_text(text)
    config = load_config(tmp_path / "fleet.yaml")
    assert config.hardware.fault == cal.causes["hardware"].fault.distribution()
    assert config.architectures.monolithic.hypervisor_fault.mean == pytest.approx(
        cal.causes["hypervisor"].fault.frozen().mean()
    )
    assert "# Calibrated from" in text and "2024-01-01 to 2024-12-30" in text
    assert len(Fleet(config, 0, record_events=False).hosts) == 200


# -- LANL ----------------------------------------------------------------------------------


def test_lanl_reader_maps_causes_and_counts_every_node_of_the_system() -> None:
    log = read_lanl_log(FIXTURE, 6)
    assert len(log.incidents) == 64
    assert len(log.hosts) == 32  # 27 nodes have records; the `nodes` column says 32
    assert log.window_start == pd.Timestamp("2003-09-01")
    assert log.window_end == pd.Timestamp("2006-01-01")
    assert log.exposure_hours() == pytest.approx(32 * log.window_hours)
    assert {"power", "hardware", "software"} <= set(log.causes)
    outage = log.incidents[log.incidents["start"] == pd.Timestamp("2003-09-26 16:40")].iloc[0]
    assert (outage["host"], outage["source_cause"]) == ("n0", "Facilities/Power Outage")
    assert outage["cause"] == "power"


def test_lanl_cause_mapping_is_configurable() -> None:
    log = read_lanl_log(FIXTURE, 6, causes={"Facilities": "facility"})
    assert "facility" in set(log.causes) and "power" not in set(log.causes)


@pytest.mark.skipif(
    not SHARED_LANL.is_file(), reason=f"shared LANL data not found at {SHARED_LANL}"
)
def test_lanl_reader_parses_every_record_of_the_shared_file() -> None:
    raw = pd.read_csv(SHARED_LANL, usecols=["System"])
    total = 0
    for system in sorted(raw["System"].unique()):
        log = read_lanl_log(SHARED_LANL, int(system))
        assert log.exposure_hours() > 0
        assert (log.incidents["end"] >= log.incidents["start"]).all()
        total += len(log.incidents)
    assert total == len(raw) == 20455


# -- replay --------------------------------------------------------------------------------


def test_replay_gives_the_host_availability_of_the_log_itself(tmp_path: Path) -> None:
    log_path = tmp_path / "log.csv"
    log_path.write_text(
        "start,end,host,cause\n"
        "2024-01-01T10:00:00,2024-01-01T12:30:00,h1,hardware\n"
        "2024-01-01T11:00:00,2024-01-01T13:00:00,h1,hypervisor\n"  # overlaps the one before
        "2024-01-01T13:00:00,2024-01-01T14:00:00,h1,network\n"  # starts as the last one ends
        "2024-02-01T00:00:00,2024-02-03T00:00:00,h2,power\n"
        "2024-03-01T05:00:00,2024-03-01T05:06:00,h3,hypervisor\n"
    )
    log = read_csv_log(log_path, start="2024-01-01", end="2024-04-01")
    assert log.host_availability() == pytest.approx(1 - (4 + 48 + 0.1) / (3 * 91 * 24))
    metrics = replay(load_config(DEFAULT), log, seed=1)
    assert metrics["host_availability"] == pytest.approx(log.host_availability(), abs=1e-12)


def test_replay_of_a_lanl_system_matches_its_availability() -> None:
    log = read_lanl_log(FIXTURE, 6)
    metrics = replay(load_config(DEFAULT), log, seed=1)
    assert metrics["host_availability"] == pytest.approx(log.host_availability(), abs=1e-12)


# -- backtest ------------------------------------------------------------------------------


def test_backtest_predicts_the_test_window_of_a_stationary_log(synthetic: Path) -> None:
    log = read_synthetic(synthetic)
    result = backtest(log, ("2024-01-01", "2024-09-01"), ("2024-09-01", None),
                      load_config(DEFAULT), replications=3, seed=1)  # fmt: skip
    observed, predicted = result.observed, result.predicted
    assert set(predicted["incidents_per_host_year"]) == {"hardware", "hypervisor"}
    hyper = predicted["incidents_per_host_year"]["hypervisor"]["mean"]
    assert hyper == pytest.approx(observed["incidents_per_host_year"]["hypervisor"], rel=0.25)
    assert predicted["host_availability"]["mean"] == pytest.approx(
        observed["host_availability"], abs=5e-4
    )


# -- inventory -----------------------------------------------------------------------------


def write_fleet(tmp_path: Path, inventory: str) -> Path:
    (tmp_path / "hosts.csv").write_text(inventory)
    config = tmp_path / "fleet.yaml"
    config.write_text("name: inv\nhosts: {inventory: hosts.csv}\nguests: {per_host: 2}\n")
    return config


def test_inventory_builds_the_fleet_exactly_as_listed(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, "host,rack,pod,site,architecture,cpu,drivers\n"
                         "esx1,r1,p1,dc,monolithic,32,nic\n"
                         "esx2,r1,p1,dc,microkernel,,nic;gpu\n"
                         "esx3,r2,p2,dc,microkernel,,\n")  # fmt: skip
    fleet = Fleet(load_config(config), 0, record_events=False)
    listed = [(h.name, h.rack, h.pod, h.architecture, h.cpu, sorted(d.kind for d in h.drivers))
              for h in fleet.hosts]  # fmt: skip
    assert listed == [
        ("esx1", "r1", "p1", "monolithic", 32.0, ["nic"]),
        ("esx2", "r1", "p1", "microkernel", 64.0, ["gpu", "nic"]),
        ("esx3", "r2", "p2", "microkernel", 64.0, []),
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a,r1,p1,dc,monolithic\na,r1,p1,dc,monolithic\n", "row 3: duplicate host 'a'"),
        ("a,r1,p1,dc,xen\n", "architecture 'xen'"),
        ("a,r1,p1,dc,monolithic\nb,r1,p2,dc,monolithic\n", "unknown rack 'r1' in pod 'p2'"),
    ],
)
def test_inventory_errors_name_the_row_and_the_problem(
    tmp_path: Path, rows: str, message: str
) -> None:
    config = write_fleet(tmp_path, "host,rack,pod,site,architecture\n" + rows)
    with pytest.raises(ConfigError, match=r"hosts\.inventory") as err:
        Fleet(load_config(config), 0, record_events=False)
    assert message in str(err.value)


def test_inventory_that_does_not_exist_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"hosts\.inventory"):
        validate_config({"name": "x", "hosts": {"inventory": "/nonexistent/hosts.csv"}})


# -- CLI -----------------------------------------------------------------------------------


def test_twin_calibrate_json_has_the_documented_keys(tmp_path: Path) -> None:
    out = tmp_path / "calibrated.yaml"
    result = runner.invoke(app, ["calibrate", str(FIXTURE), "--format", "lanl", "--system", "6",
                                 "--json", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"hosts", "exposure_host_hours", "causes"} <= set(data)
    assert data["hosts"] == 32
    hardware = data["causes"]["hardware"]
    assert {"count", "rate_per_host_year", "fault", "repair"} <= set(hardware)
    assert set(hardware["rate_per_host_year"]) == {"mean", "ci95_low", "ci95_high"}
    assert load_config(out).hosts.inventory.endswith("calibrated.hosts.csv")


def test_twin_calibrate_report_draws_every_fit_against_the_data(tmp_path: Path) -> None:
    report = tmp_path / "calibration.html"
    result = runner.invoke(app, ["calibrate", str(FIXTURE), "--format", "lanl", "--system", "6",
                                 "--report", str(report)])  # fmt: skip
    assert result.exit_code == 0, result.output
    page = report.read_text()
    assert "Kaplan-Meier (data)" in page and "Los Alamos National Laboratory" in page
    assert "plotly.js v" in page and 'src="http' not in page  # inlined: opens offline


def test_twin_backtest_runs_end_to_end() -> None:
    result = runner.invoke(app, ["backtest", str(FIXTURE), "--format", "lanl", "--system", "6",
                                 "--train", "2003-09-01:2005-01-01", "--test", "2005-01-01:",
                                 "-r", "2", "--trend", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert 0 < data["observed"]["host_availability"] <= 1
    assert {"mean", "ci95_low", "ci95_high", "range95_low", "range95_high"} <= set(
        data["predicted"]["host_availability"]
    )
    assert {"host_availability", "incidents_per_host_year",
            "downtime_hours_per_host_year"} <= set(data["baseline"])  # fmt: skip
    assert data["closer"]["host_availability"] in {"twin", "baseline", "tie", "undecided"}


def test_twin_run_replay_reports_the_logs_availability() -> None:
    result = runner.invoke(app, ["run", str(DEFAULT), "--replay", str(FIXTURE),
                                 "--replay-system", "6", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metrics"]["host_availability"]["mean"] == pytest.approx(
        data["log_host_availability"], abs=1e-12
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["calibrate", "/nonexistent.csv"], "file not found"),
        (["calibrate", str(FIXTURE), "--format", "lanl"], "--system"),
        (["calibrate", str(FIXTURE), "--format", "lanl", "--system", "99"], "no such system"),
        (["calibrate", str(FIXTURE), "--format", "xml"], "--format"),
        (["calibrate", str(FIXTURE)], "missing column"),
        (
            [
                "backtest",
                str(FIXTURE),
                "--format",
                "lanl",
                "--system",
                "6",
                "--train",
                "2003",
                "--test",
                "2005-01-01:",
            ],
            "--train",
        ),
    ],
)
def test_cli_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_logs_refuse_rows_that_end_before_they_start(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("start,end,host,cause\n2024-01-02T00:00:00,2024-01-01T00:00:00,a,hardware\n")
    with pytest.raises(LogError, match="row 2: end is before start"):
        read_csv_log(path)
