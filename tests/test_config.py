"""The config contract (SPEC section 3): durations, distributions, schema, loading, scenarios."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from twin.config import (
    ARCHITECTURES,
    ConfigError,
    Constant,
    Distribution,
    DistributionError,
    Empirical,
    Experiment,
    Exponential,
    FleetConfig,
    Gamma,
    Lognormal,
    Never,
    Scenario,
    Uniform,
    UpdateConfig,
    Weibull,
    apply_overrides,
    deep_merge,
    expand_arms,
    expand_sweep,
    load_config,
    load_experiment,
    parse_distribution,
    parse_duration,
    validate_config,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "configs" / "default.yaml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(*args: Any, **kwargs: Any) -> ConfigError:
    """The ConfigError that ``load_experiment(*args, **kwargs)`` raises."""
    with pytest.raises(ConfigError) as caught:
        load_experiment(*args, **kwargs)
    return caught.value


def set_error(*sets: str) -> ConfigError:
    return config_error(DEFAULT, list(sets))


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("30s", 30 / 3600),
        ("5m", 5 / 60),
        ("2h", 2.0),
        ("3d", 72.0),
        ("2w", 336.0),
        ("1y", 8760.0),
        ("1.5h", 1.5),
        ("0.5d", 12.0),
        ("2.5", 2.5),
        ("0", 0.0),
        (4, 4.0),
        (0.25, 0.25),
        (" 6m ", 0.1),
    ],
)
def test_a_duration_is_hours_whatever_its_unit(text: Any, hours: float) -> None:
    assert parse_duration(text) == pytest.approx(hours, rel=1e-15)


def test_a_year_is_365_days() -> None:
    assert parse_duration("1y") == parse_duration("365d")


@pytest.mark.parametrize("value", ["-5m", "-1", -0.5, -3])
def test_negative_durations_are_rejected(value: Any) -> None:
    with pytest.raises(ValueError, match="duration must be >= 0"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["5 minutes", "abc", "", "5M", "1h30m", None, True, [1]])
def test_anything_else_is_not_a_duration(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@given(st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_a_number_of_hours_reads_back_exactly(x: float) -> None:
    assert parse_duration(f"{x}h") == x


# --- distributions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{dist: exponential, mean: 2y}", Exponential(2 * 8760)),
        ("{dist: weibull, shape: 0.8, scale: 3y}", Weibull(0.8, 3 * 8760)),
        ("{dist: lognormal, median: 6m, sigma: 0.3}", Lognormal(0.1, 0.3)),
        ("{dist: gamma, shape: 2, scale: 1h}", Gamma(2, 1)),
        ("{dist: uniform, low: 1m, high: 5m}", Uniform(1 / 60, 5 / 60)),
        ("{dist: constant, value: 10m}", Constant(10 / 60)),
        ("{dist: constant, value: 0}", Constant(0)),
        ("{dist: empirical, samples: [1h, 2h, 30m]}", Empirical((1.0, 2.0, 0.5))),
        ("never", Never()),
        ("{dist: never}", Never()),
        ("6m", Constant(0.1)),
        ("2", Constant(2)),
        ("0", Constant(0)),
    ],
)
def test_every_distribution_reads_from_its_yaml_form(text: str, expected: Distribution) -> None:
    assert parse_distribution(yaml.safe_load(text)) == expected


SAMPLED = [
    Constant(0.1),
    Exponential(2654),
    Weibull(0.8, 3),
    Weibull(2.5, 10),
    Lognormal(0.5, 0.5),
    Gamma(2, 1.5),
    Uniform(1, 6),
    Empirical((1.0, 2.0, 0.5, 7.0)),
]


@pytest.mark.parametrize("dist", SAMPLED, ids=lambda d: type(d).__name__)
def test_sample_mean_matches_the_stated_mean(dist: Distribution) -> None:
    many = dist.sample_many(np.random.default_rng(7), 20_000)
    rng = np.random.default_rng(8)
    one_by_one = [dist.sample(rng) for _ in range(20_000)]
    assert many.shape == (20_000,)
    assert (many >= 0).all() and min(one_by_one) >= 0
    assert many.mean() == pytest.approx(dist.mean, rel=0.03)
    assert np.mean(one_by_one) == pytest.approx(dist.mean, rel=0.03)
    assert isinstance(dist.sample(rng), float)


def test_never_never_happens() -> None:
    never = parse_distribution("never")
    assert never.never and never.mean == math.inf
    assert never.sample(np.random.default_rng(1)) == math.inf
    assert not Exponential(1).never and not Constant(0).never


def test_constant_zero_is_an_instant_step() -> None:
    zero = Constant(0)
    assert zero.mean == 0 and zero.sample(np.random.default_rng(1)) == 0.0


@pytest.mark.parametrize("dist", [*SAMPLED, Never()], ids=lambda d: type(d).__name__)
def test_a_distribution_writes_back_the_yaml_it_reads(dist: Distribution) -> None:
    assert parse_distribution(dist.to_yaml()) == dist
    assert hash(parse_distribution(dist.to_yaml())) == hash(dist)


def test_a_fault_rate_multiplier_shortens_every_time() -> None:
    assert Exponential(100).scaled(1 / 20) == Exponential(5)
    assert Weibull(0.8, 10).scaled(2) == Weibull(0.8, 20)
    assert Empirical((1.0, 2.0)).scaled(3) == Empirical((3.0, 6.0))
    assert Never().scaled(0.5) == Never()


@pytest.mark.parametrize(
    ("value", "key", "reason"),
    [
        ({"dist": "expo", "mean": 1}, "dist", "unknown distribution 'expo' (known: constant,"),
        ({"dist": "exponential"}, None, "exponential needs mean"),
        ({"dist": "exponential", "mean": 0}, "mean", "must be > 0"),
        ({"dist": "exponential", "mean": "-1h"}, "mean", "duration must be >= 0 (got -1h)"),
        ({"dist": "exponential", "mean": 1, "rate": 2}, "rate", "unknown parameter"),
        ({"dist": "weibull", "shape": 0, "scale": 1}, "shape", "must be > 0"),
        ({"dist": "lognormal", "median": 1, "sigma": -1}, "sigma", "must be >= 0"),
        ({"dist": "uniform", "low": "5m", "high": "1m"}, "high", "must be >= low"),
        ({"dist": "empirical", "samples": []}, "samples", "expected a non-empty list"),
        ({"dist": "empirical", "samples": ["1h", "-2h"]}, "samples.1", "duration must be >= 0"),
        ({"mean": 1}, None, "a distribution needs a 'dist:' key"),
        ("sometimes", None, "expected a distribution"),
        ("-5m", None, "duration must be >= 0 (got -5m)"),
    ],
)
def test_an_impossible_distribution_names_its_parameter(
    value: Any, key: str | None, reason: str
) -> None:
    with pytest.raises(DistributionError) as caught:
        parse_distribution(value)
    assert caught.value.key == key
    assert caught.value.reason.startswith(reason)


# --- the fleet schema and default.yaml --------------------------------------------------------


def test_default_yaml_is_the_schema_defaults_plus_two_update_campaigns() -> None:
    loaded = load_config(DEFAULT)
    assert [u.name for u in loaded.updates] == ["esxi-patch", "hyperv-patch"]
    assert loaded.model_copy(update={"updates": []}) == FleetConfig(name="default-mixed-fleet")


def test_a_file_with_only_a_name_is_a_valid_fleet(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "tiny.yaml", "name: tiny\n"))
    assert config.name == "tiny"
    assert config.horizon == 8760 and config.topology.n_hosts == 128


def test_default_yaml_holds_the_sourced_values() -> None:
    config = load_config(DEFAULT)
    mono, micro = config.architectures.get("monolithic"), config.architectures.get("microkernel")
    assert mono.hypervisor_fault == Exponential(2654) == micro.hypervisor_fault
    assert mono.parent_os_fault.never and micro.parent_os_fault == Exponential(2893)
    assert mono.crash_detection == Constant(15 / 3600)
    assert (mono.driver_fault_host_crash_prob, micro.driver_fault_host_crash_prob) == (0.9, 0.02)
    assert (mono.driver_fault_escalation_prob, micro.driver_fault_escalation_prob) == (0, 0.05)
    assert micro.aging.onset == Exponential(730) and micro.aging.failure == Exponential(168)
    assert config.hardware.hands_on == Constant(2)
    assert mono.update_requires_reboot.driver and not micro.update_requires_reboot.driver
    assert config.hardware.fault == Exponential(8760) and config.hardware.repair == Exponential(72)
    assert config.network.power_repair == Constant(6)
    assert config.guests.boot_time == Constant(30 / 3600)
    assert [d.name for d in config.drivers] == ["nic", "storage", "gpu"]
    assert config.hosts.architecture_mix == {"monolithic": 0.5, "microkernel": 0.5, "kvm": 0.0}


def test_a_config_dumped_to_json_validates_back_to_itself() -> None:
    config = load_config(DEFAULT)
    assert validate_config(config.model_dump(mode="json")) == config


def test_configs_are_frozen() -> None:
    config = load_config(DEFAULT)
    with pytest.raises(ValueError):
        config.seed = 1  # type: ignore[misc]


def test_an_architecture_override_keeps_that_architectures_own_defaults(tmp_path: Path) -> None:
    text = "name: x\narchitectures: {microkernel: {reboot_time: 20m}}\n"
    micro = load_config(write(tmp_path, "x.yaml", text)).architectures.microkernel
    assert micro.reboot_time == Constant(20 / 60)
    assert micro.crash_auto_reboot and micro.escalation_grace == Constant(10 / 60)


def test_a_partial_distribution_adjusts_the_architecture_default() -> None:
    config = load_config(DEFAULT, ["architectures.monolithic.hypervisor_fault.mean=1000h"])
    assert config.architectures.monolithic.hypervisor_fault == Exponential(1000)


def test_a_missing_architecture_share_is_zero() -> None:
    config = load_config(DEFAULT, ["hosts.architecture_mix={monolithic: 1}"])
    assert config.hosts.architecture_mix == {"monolithic": 1.0, "microkernel": 0.0, "kvm": 0.0}
    assert tuple(config.hosts.architecture_mix) == ARCHITECTURES


def test_a_service_quorum_defaults_to_a_majority() -> None:
    config = load_config(DEFAULT, ["services=[{name: etcd, replicas: 5}]"])
    assert config.services[0].quorum == 3 and config.services[0].cpu == 2


def test_a_topology_file_is_found_next_to_its_config(tmp_path: Path) -> None:
    graph = write(tmp_path, "fabric/fabric.graphml", "<graphml/>")
    config = write(tmp_path, "fabric/fleet.yaml", "name: x\ntopology: {file: fabric.graphml}\n")
    assert load_config(config).topology.file == str(graph.resolve())


# --- update campaigns -------------------------------------------------------------------------


def update(**fields: Any) -> UpdateConfig:
    return UpdateConfig(**{"name": "patch", "scope": "hypervisor", "every": "4w", **fields})


@pytest.mark.parametrize(
    ("batch", "hosts", "size"),
    [
        (1, 64, 1),
        (8, 64, 8),
        (100, 64, 64),
        (0.1, 64, 7),
        (0.25, 64, 16),
        (1.0, 64, 64),
        ("10%", 64, 7),
        (0.01, 10, 1),
    ],
)
def test_a_batch_is_a_host_count_or_a_fraction(batch: Any, hosts: int, size: int) -> None:
    assert update(batch=batch).batch_size(hosts) == size


@pytest.mark.parametrize("batch", [0, 0.0, 1.5, -2, "x", True])
def test_an_impossible_batch_is_rejected(batch: Any) -> None:
    with pytest.raises(ValueError, match="fraction of hosts"):
        update(batch=batch)


def test_a_maintenance_window_is_parsed_from_monday_midnight() -> None:
    assert update().window_spec is None
    saturday = update(window="Sat 02:00-06:00").window_spec
    assert saturday == (5, 2.0, 6.0)
    assert saturday.is_open(5 * 24 + 3) and not saturday.is_open(5 * 24 + 7)
    assert saturday.next_open(0) == 5 * 24 + 2 and saturday.next_open(5 * 24 + 3) == 5 * 24 + 3
    sunday_night = update(window="Sun 22:00-02:00").window_spec
    assert sunday_night == (6, 22.0, 2.0) and sunday_night.length == 4
    assert sunday_night.is_open(168 + 1)  # Monday 01:00 of week two
    assert update(window="daily 01:00-05:00").window_spec == (None, 1.0, 5.0)


@pytest.mark.parametrize("window", ["Sat", "Caturday 02:00-06:00", "Sat 02:00-02:00", "02-06"])
def test_a_malformed_window_is_rejected(window: str) -> None:
    with pytest.raises(ValueError):
        update(window=window)


# --- every bad input is one line naming its key path ------------------------------------------


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["guests.per_hots=3"], "guests.per_hots: unknown key (did you mean 'per_host'?)"),
        (["nmae=x"], "nmae: unknown key (did you mean 'name'?)"),
        (["guests.ha.x=1"], "guests.ha.x: unknown key"),
        (["seed=abc"], "seed: expected a whole number (got 'abc')"),
        (["guests.cpu=[1]"], "guests.cpu: expected a number (got a list)"),
        (["hosts=3"], "hosts: expected a mapping (got 3)"),
        (["guests.placement=tight"], "guests.placement: expected one of 'spread', 'pack' (got"),
        (["replications=0"], "replications: expected a number >= 1 (got 0)"),
        (["horizon=0"], "horizon: expected a duration > 0 (got 0)"),
        (["horizon=soon"], "horizon: expected a duration like 30s, 5m, 2h, 3d, 2w or 1y"),
        (["guests.boot_time=-5m"], "guests.boot_time: duration must be >= 0 (got -5m)"),
        (
            ["hosts.architecture_mix.monolithic=0.7"],
            "hosts.architecture_mix: shares must sum to 1 (got 1.2)",
        ),
        (
            ["architectures.monolithic.driver_fault_host_crash_prob=1.5"],
            "architectures.monolithic.driver_fault_host_crash_prob: "
            "expected a probability in [0, 1] (got 1.5)",
        ),
        (
            ["hardware.repair=abc"],
            "hardware.repair: expected a distribution ({dist: exponential, mean: 2y}, "
            "'never' or a duration like 6m)",
        ),
        (["hardware.repair={dist: expo, mean: 1}"], "hardware.repair.dist: unknown distribution"),
        (["drivers.0.fault.mean=-1h"], "drivers.0.fault.mean: duration must be >= 0 (got -1h)"),
        (
            ["services=[{name: db, replicas: 2, quorum: 3}]"],
            "services.0.quorum: quorum 3 exceeds replicas 2",
        ),
        (["guests.per_host=40"], "guests.per_host: 40 guests x 2 cpu do not fit a host of 64 cpu"),
        (["drivers.1.name=nic"], "drivers: duplicate driver name 'nic'"),
        (
            ["updates=[{name: u, scope: driver, driver: fpga, every: 1w}]"],
            "updates.0.driver: unknown driver 'fpga' (known: nic, storage, gpu)",
        ),
        (["topology.file=/nowhere/fabric.graphml"], "topology.file: file not found:"),
        (["drivers.5.share=1"], "--set drivers.5.share: list index 5 out of range (3 items)"),
        (["horizon.unit=h"], "--set horizon.unit: horizon is '1y', not a mapping or a list"),
        (["guests.per_host"], "--set: expected KEY=VALUE (got 'guests.per_host')"),
        (["=3"], "--set: expected KEY=VALUE (got '=3')"),
    ],
)
def test_bad_input_is_one_line_naming_the_key(sets: list[str], expected: str) -> None:
    err = set_error(*sets)
    assert str(err).startswith(expected)
    assert "\n" not in str(err)
    assert str(err) == f"{err.path}: {err.message}"


def test_a_misspelled_key_fails_on_its_own_path() -> None:
    assert set_error("guests.per_hots=3").path == "guests.per_hots"


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("name: x\nguests: {per_hots: 3}\n", "guests.per_hots", "unknown key"),
        ("name: x\ncolour: blue\n", "colour", "unknown key"),
        ("horizon: 1y\n", "name", "missing required key"),
        ("name: x\nhardware: {repair: {dist: gamma, shape: 2}}\n", "hardware.repair", "gamma"),
        ("- a\n- b\n", "{file}", "expected a mapping of keys at the top level (got a list)"),
        ("name: [\n", "{file}", "invalid YAML at line 2"),
        ("", "{file}", "the file is empty"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key(
    tmp_path: Path, text: str, path: str, message: str
) -> None:
    file = write(tmp_path, "bad.yaml", text)
    err = config_error(file)
    assert err.path == path.format(file=file)
    assert message in err.message and "\n" not in str(err)


def test_a_missing_file_is_named() -> None:
    assert str(config_error("configs/nope.yaml")) == "configs/nope.yaml: file not found"


def test_a_config_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(ConfigError("a.b", "bad")))
    assert (err.path, err.message, str(err)) == ("a.b", "bad", "a.b: bad")


def test_a_multiline_message_is_folded_into_one_line() -> None:
    assert str(ConfigError("a", "first\nsecond")) == "a: first second"


# --- --set overrides and deep merge -----------------------------------------------------------


def test_set_indexes_lists_and_parses_values_as_yaml() -> None:
    config = load_config(DEFAULT, ["drivers.0.share=0.5", "operators.count=8", "horizon=30d"])
    assert config.drivers[0].share == 0.5 and config.drivers[1].share == 1.0
    assert config.operators.count == 8 and config.horizon == 720


def test_set_creates_missing_mappings_and_leaves_its_input_alone() -> None:
    data: dict[str, Any] = {"name": "x"}
    assert apply_overrides(data, ["guests.ha.enabled=false"]) == {
        "name": "x",
        "guests": {"ha": {"enabled": False}},
    }
    assert data == {"name": "x"}


def test_deep_merge_merges_mappings_and_replaces_lists_and_distributions() -> None:
    base = {
        "a": {"b": 1, "c": [1, 2]},
        "fault": {"dist": "exponential", "mean": "1y"},
        "repair": {"dist": "exponential", "mean": "1d"},
    }
    over = {
        "a": {"c": [3]},
        "fault": {"dist": "weibull", "shape": 0.8, "scale": "1y"},
        "repair": {"mean": "2d"},
    }
    assert deep_merge(base, over) == {
        "a": {"b": 1, "c": [3]},
        "fault": {"dist": "weibull", "shape": 0.8, "scale": "1y"},
        "repair": {"dist": "exponential", "mean": "2d"},
    }
    assert base["a"] == {"b": 1, "c": [1, 2]}


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=5), json_like, max_size=5))
def test_deep_merge_with_nothing_changes_nothing(data: dict[str, Any]) -> None:
    assert deep_merge(data, {}) == data
    assert deep_merge({}, data) == data


# --- scenarios --------------------------------------------------------------------------------

SCENARIO = """\
name: driver-bug-storm
question: How much availability does a buggy NIC driver release cost each architecture?
base: ../fleets/base.yaml
overrides:
  replications: 20
  drivers: [{name: nic, fault: {dist: exponential, mean: 1000h}}]
  guests: {per_host: 10}
injections:
  - {at: 30d, action: driver_regression, driver: nic, share: 0.3, fault_multiplier: 20}
  - {at: 60d, action: power_loss, rack: r12, duration: 4h}
arms:
  all-monolithic: {hosts: {architecture_mix: {monolithic: 1, microkernel: 0}}}
  all-microkernel: {hosts: {architecture_mix: {monolithic: 0, microkernel: 1}}}
sweep:
  operators.count: [2, 4, 8]
  guests.placement: [spread, pack]
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    write(tmp_path, "fleets/base.yaml", DEFAULT.read_text(encoding="utf-8"))
    return write(tmp_path, "scenarios/storm.yaml", SCENARIO)


def test_a_scenario_runs_its_first_arm_on_its_merged_base(scenario_file: Path) -> None:
    experiment = load_experiment(scenario_file)
    assert isinstance(experiment, Experiment) and isinstance(experiment.scenario, Scenario)
    assert experiment.arm == "all-monolithic" and experiment.source == scenario_file
    config = experiment.config
    assert config.hosts.architecture_mix == {"monolithic": 1.0, "microkernel": 0.0, "kvm": 0.0}
    assert config.replications == 20 and config.guests.per_host == 10
    assert config.guests.cpu == 2  # merged, not replaced
    assert [d.name for d in config.drivers] == ["nic"]  # a list replaces a list
    assert config.name == "driver-bug-storm"  # a run is named after its scenario
    assert experiment.raw["replications"] == 20
    assert Path(experiment.scenario.base) == scenario_file.parent.parent / "fleets/base.yaml"
    assert [i.at for i in experiment.scenario.injections] == [720, 1440]
    assert experiment.scenario.injections[1].duration == Constant(4)


def test_an_arm_can_be_chosen_and_sets_apply_last(scenario_file: Path) -> None:
    config = load_config(
        scenario_file,
        ["hosts.architecture_mix.monolithic=0.25", "hosts.architecture_mix.microkernel=0.75"],
        arm="all-microkernel",
    )
    assert config.hosts.architecture_mix == {"monolithic": 0.25, "microkernel": 0.75, "kvm": 0.0}
    assert load_experiment(scenario_file, arm="all-microkernel").arm == "all-microkernel"


def test_an_unknown_arm_lists_the_known_ones(scenario_file: Path) -> None:
    err = config_error(scenario_file, arm="hybrid")
    assert str(err) == "arm: unknown arm 'hybrid' (known: all-monolithic, all-microkernel)"


def test_every_arm_expands_in_file_order(scenario_file: Path) -> None:
    arms = expand_arms(scenario_file)
    assert [arm for arm, _ in arms] == ["all-monolithic", "all-microkernel"]
    assert arms[1][1].hosts.architecture_mix["microkernel"] == 1.0
    assert [arm for arm, _ in expand_arms(DEFAULT)] == [None]


def test_the_sweep_is_the_cartesian_product_of_its_values(scenario_file: Path) -> None:
    points = expand_sweep(load_experiment(scenario_file).scenario)
    assert len(points) == 6
    assert points[0] == {"operators.count": 2, "guests.placement": "spread"}
    assert points[-1] == {"operators.count": 8, "guests.placement": "pack"}
    assert expand_sweep(None) == [{}]
    point_config = load_config(scenario_file, point=points[-1])
    assert point_config.operators.count == 8 and point_config.guests.placement == "pack"


def test_a_misspelled_sweep_key_is_caught_when_loading(scenario_file: Path) -> None:
    scenario_file.write_text(SCENARIO.replace("operators.count", "operators.cnt"))
    assert str(config_error(scenario_file)).startswith("sweep.operators.cnt: unknown key")


def test_a_scenario_without_a_fleet_name_lends_its_own(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "horizon: 30d\n")
    scenario = write(tmp_path, "s.yaml", "name: what-if\nbase: base.yaml\n")
    experiment = load_experiment(scenario)
    assert experiment.config.name == "what-if" and experiment.arm is None


def test_injections_out_of_time_order_are_rejected(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "name: x\n")
    text = """\
name: s
base: base.yaml
injections:
  - {at: 60d, action: host_crash, host: h1}
  - {at: 30d, action: tor_fault, rack: r1}
"""
    err = config_error(write(tmp_path, "s.yaml", text))
    assert str(err) == "injections.1.at: injections must be in time order"


@pytest.mark.parametrize(
    ("injection", "expected"),
    [
        ("{at: 1d, action: meteor}", "injections.0.action: unknown action 'meteor'"),
        ("{at: 1d, action: power_loss}", "injections.0.rack: missing required key"),
        ("{at: -1d, action: host_crash, host: h}", "injections.0.at: duration must be >= 0"),
        (
            "{at: 1d, action: driver_regression, driver: fpga, fault_multiplier: 2}",
            "injections.0.driver: unknown driver 'fpga' (known: nic, storage, gpu)",
        ),
        (
            "{at: 1d, action: start_campaign, update: esxi}",
            "injections.0.update: unknown update 'esxi' (known: none)",
        ),
        (
            "{at: 1d, action: convert_architecture, share: 2, to: microkernel}",
            "injections.0.share: expected a probability in [0, 1] (got 2)",
        ),
    ],
)
def test_a_bad_injection_names_its_key(tmp_path: Path, injection: str, expected: str) -> None:
    write(tmp_path, "base.yaml", "name: x\n")
    text = f"name: s\nbase: base.yaml\ninjections:\n  - {injection}\n"
    assert str(config_error(write(tmp_path, "s.yaml", text))).startswith(expected)


def test_a_missing_base_is_named(tmp_path: Path) -> None:
    err = config_error(write(tmp_path, "s.yaml", "name: s\nbase: nowhere.yaml\n"))
    assert err.path == "base" and err.message.startswith("file not found:")


def test_a_fleet_config_has_no_arms() -> None:
    assert config_error(DEFAULT, arm="x").path == "arm"
