"""Reading fleet configs and scenarios from YAML, with ``--set`` overrides, arms and sweeps.

Every problem with user input surfaces as one ``ConfigError`` whose text is a single line,
``<key path>: <what was expected>``, so the CLI can print it and exit 2.
"""

from __future__ import annotations

import difflib
import itertools
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .schema import (
    Arm,
    DriverRegression,
    FleetConfig,
    Injection,
    Scenario,
    StartCampaign,
    deep_merge,
)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class ConfigError(Exception):
    """Bad user input: ``path`` is the dotted key path (or a file), ``message`` what was wrong."""

    def __init__(self, path: str, message: str) -> None:
        self.path = _one_line(path)
        self.message = _one_line(message)
        super().__init__(self.path, self.message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Experiment:
    """What one run needs: the validated config and where it came from.

    ``raw`` is the merged YAML-shaped dict that produced ``config``, kept for the manifest.
    """

    config: FleetConfig
    scenario: Scenario | None
    arm: str | None
    source: Path
    raw: dict[str, Any] = field(repr=False)
    injections: list[Injection] = field(default_factory=list)
    """The timed injections of this arm (the scenario's, unless the arm has its own)."""


# ---------------------------------------------------------------------------------------------
# pydantic errors -> one line naming the YAML key path


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _yaml_path(loc: tuple[int | str, ...], data: Any) -> list[str]:
    """``loc`` as the user's key path: follows ``data`` and drops pydantic's union tags."""
    parts: list[str] = []
    node = data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_list or (isinstance(node, Mapping) and part in node):
            node = node[part]
        elif isinstance(node, Mapping) and isinstance(part, str) and part != node.get("action"):
            node = None  # a missing key: nothing below it to follow
        else:
            continue  # the tag of a union member, or a detail below a scalar
        parts.append(str(part))
    return parts


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _known_keys(model: type[BaseModel], parts: list[str]) -> list[str]:
    """Keys the schema allows where ``parts`` ends (best effort; [] when it cannot tell)."""
    tp: Any = model
    for part in parts[:-1]:
        tp = _unwrap(tp)
        if typing.get_origin(tp) is list and part.isdigit():
            tp = typing.get_args(tp)[0]
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _expected_one_of(expected: str) -> str:
    head, _, last = expected.rpartition(" or ")
    return f"{head}, {last}" if head else last


def _human(error: Mapping[str, Any], parts: list[str], model: type[BaseModel]) -> str:
    kind, ctx, got = error["type"], error.get("ctx") or {}, _show(error.get("input"))
    if kind == "config":
        return str(ctx["reason"])
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(parts[-1], _known_keys(model, parts), n=1)
        return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
    if kind == "missing":
        return "missing required key"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number (got {got})"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"expected a number (got {got})"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false (got {got})"
    if kind in ("string_type", "string_too_short"):
        return f"expected a non-empty string (got {got})"
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return f"expected a mapping (got {got})"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list (got {got})"
    if kind == "literal_error":
        return f"expected one of {_expected_one_of(ctx['expected'])} (got {got})"
    if kind == "union_tag_invalid":
        tags = _expected_one_of(ctx["expected_tags"])
        return f"unknown action {ctx['tag']!r} (expected one of {tags})"
    if kind == "union_tag_not_found":
        return "missing key 'action'"
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"expected a number {bounds[kind]} {limit:g} (got {got})"
    return str(error["msg"])


def _from_validation_error(err: ValidationError, data: Any, model: type[BaseModel]) -> ConfigError:
    """The first of pydantic's errors as a one-line ``ConfigError`` on the YAML key path."""
    first = err.errors()[0]
    parts = _yaml_path(first["loc"], data)
    ctx = first.get("ctx") or {}
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        parts.append(str(ctx.get("discriminator", "action")).strip("'"))
    if first["type"] == "config" and ctx.get("key"):
        parts.append(str(ctx["key"]))
    path = ".".join(parts) or "config"
    return ConfigError(path, _human(first, parts, model))


def validate_config(raw: Any) -> FleetConfig:
    """A validated fleet from a YAML-shaped dict, or a ``ConfigError``."""
    if not isinstance(raw, Mapping):
        raise ConfigError("config", f"expected a mapping of keys (got {_show(raw)})")
    try:
        return FleetConfig.model_validate(raw)
    except ValidationError as err:
        raise _from_validation_error(err, raw, FleetConfig) from None


def validate_scenario(raw: Any) -> Scenario:
    """A validated scenario from a YAML-shaped dict (``base`` left as written)."""
    try:
        return Scenario.model_validate(raw)
    except ValidationError as err:
        raise _from_validation_error(err, raw, Scenario) from None


# ---------------------------------------------------------------------------------------------
# files


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file; every failure is a ``ConfigError`` on the file."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(where, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(where, "is a directory, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(where, f"cannot read: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or "invalid YAML"
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(where, f"invalid YAML{at}: {problem}") from None
    if data is None:
        raise ConfigError(where, "the file is empty, expected a mapping of keys")
    if not isinstance(data, dict):
        raise ConfigError(where, f"expected a mapping of keys at the top level (got {_show(data)})")
    return data


def _resolve_topology_file(raw: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """``raw`` with a relative ``topology.file`` made absolute against ``folder``."""
    hosts = raw.get("hosts")
    if isinstance(hosts, Mapping) and isinstance(hosts.get("inventory"), str):  # same for these
        inventory = str(folder / Path(hosts["inventory"]).expanduser())
        raw = {**raw, "hosts": {**hosts, "inventory": inventory}}
    topology = raw.get("topology")
    if not isinstance(topology, Mapping) or not isinstance(topology.get("file"), str):
        return dict(raw)
    file = Path(topology["file"]).expanduser()
    return {**raw, "topology": {**topology, "file": str(folder / file)}}


# ---------------------------------------------------------------------------------------------
# --set overrides


def _slot(node: dict[str, Any] | list[Any], part: str, where: str) -> Any:
    """The key or list index ``part`` names in ``node``."""
    if isinstance(node, dict):
        return part
    if not part.lstrip("-").isdigit():
        raise ConfigError(where, f"{part!r} is not an item index, and the value there is a list")
    index = int(part)
    if not 0 <= index < len(node):
        raise ConfigError(where, f"list index {index} out of range ({len(node)} items)")
    return index


def _set_dotted(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set dotted ``key`` in ``data`` in place; integer parts index lists, missing maps appear."""
    parts = key.split(".")
    if any(not part.strip() for part in parts):
        raise ConfigError(where, "expected a dotted key like guests.per_host")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        slot = _slot(node, part, where)
        child = node[slot] if isinstance(node, list) else node.get(slot)
        if child is None:
            child = node[slot] = {}
        elif not isinstance(child, dict | list):
            here = ".".join(parts[: depth + 1])
            raise ConfigError(where, f"{here} is {_show(child)}, not a mapping or a list")
        node = child
    node[_slot(node, parts[-1], where)] = value


def apply_overrides(data: Mapping[str, Any], sets: Iterable[str]) -> dict[str, Any]:
    """``data`` with each ``"a.b.c=value"`` applied, as a new dict; values are parsed as YAML.

    Unknown keys are set anyway, so validation reports them as unknown on their own path.
    """
    result = deep_merge(data, {})
    for item in sets:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError("--set", f"expected KEY=VALUE (got {item!r})")
        where = f"--set {key}"
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "invalid YAML"
            raise ConfigError(where, f"the value is not valid YAML: {problem}") from None
        _set_dotted(result, key, value, where)
    return result


# ---------------------------------------------------------------------------------------------
# configs and scenarios


def _is_scenario(data: Mapping[str, Any]) -> bool:
    return "base" in data


def _choose_arm(scenario: Scenario | None, arm: str | None, source: Path) -> str | None:
    if arm is None:
        return next(iter(scenario.arms), None) if scenario else None
    if scenario is None:
        raise ConfigError("arm", f"unknown arm {arm!r}: {source} is a fleet config, not a scenario")
    if arm not in scenario.arms:
        known = ", ".join(scenario.arms) or "the scenario has no arms"
        raise ConfigError("arm", f"unknown arm {arm!r} (known: {known})")
    return arm


def _check_injections(injections: Sequence[Injection], config: FleetConfig, where: str) -> None:
    """Injections name drivers and update campaigns the fleet has."""
    updates = [update.name for update in config.updates]
    for i, injection in enumerate(injections):
        if isinstance(injection, DriverRegression) and injection.driver not in config.driver_names:
            known = ", ".join(config.driver_names) or "none"
            raise ConfigError(
                f"{where}.{i}.driver", f"unknown driver {injection.driver!r} (known: {known})"
            )
        if isinstance(injection, StartCampaign) and injection.update not in updates:
            known = ", ".join(updates) or "none"
            raise ConfigError(
                f"{where}.{i}.update", f"unknown update {injection.update!r} (known: {known})"
            )


class _Source:
    """A file read once: a fleet config, or a scenario with its base already read."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        folder = self.path.resolve().parent
        data = read_yaml(self.path)
        self.scenario: Scenario | None = None
        if not _is_scenario(data):
            self.base = _resolve_topology_file(data, folder)
            return
        scenario = validate_scenario(data)
        base_path = (folder / Path(scenario.base).expanduser()).resolve()
        if not base_path.is_file():
            raise ConfigError("base", f"file not found: {base_path}")
        base = read_yaml(base_path)
        if _is_scenario(base):
            raise ConfigError("base", f"{base_path} is a scenario, expected a fleet config")
        self.scenario = scenario.model_copy(
            update={
                "base": str(base_path),
                "overrides": _resolve_topology_file(scenario.overrides, folder),
                "arms": {
                    k: Arm.model_construct(
                        injections=v.injections,
                        control=v.control,
                        **_resolve_topology_file(v.overrides, folder),
                    )
                    for k, v in scenario.arms.items()
                },
            }
        )
        self.base = deep_merge(
            _resolve_topology_file(base, base_path.parent), self.scenario.overrides
        )
        if "name" not in self.scenario.overrides:  # a run is named after its scenario
            self.base["name"] = self.scenario.name

    def experiment(
        self, sets: Sequence[str], arm: str | None, point: Mapping[str, Any] | None = None
    ) -> Experiment:
        """The experiment of one arm and sweep point: base, overrides, arm, point, sets."""
        scenario = self.scenario
        arm = _choose_arm(scenario, arm, self.path)
        raw = deep_merge(self.base, scenario.arms[arm].overrides if scenario and arm else {})
        for key, value in (point or {}).items():
            _set_dotted(raw, key, value, f"sweep.{key}")
        raw = apply_overrides(raw, sets)
        if scenario is not None:
            raw.setdefault("name", scenario.name)
        config = validate_config(raw)
        injections = scenario.arm_injections(arm) if scenario is not None else []
        if scenario is not None:
            own = arm is not None and scenario.arms[arm].injections is not None
            _check_injections(injections, config, f"arms.{arm}.injections" if own else "injections")
        return Experiment(config, scenario, arm, self.path, raw, injections)

    def check_sweep(self, sets: Sequence[str], arm: str | None) -> None:
        """Each sweep value, alone, gives a valid config: catches a misspelled sweep key."""
        if self.scenario is None:
            return
        for key, values in self.scenario.sweep.items():
            for value in values:
                try:
                    self.experiment(sets, arm, {key: value})
                except ConfigError as err:
                    path = f"sweep.{key}" if err.path == key else err.path
                    raise ConfigError(path, f"{err.message} (sweep value {value!r})") from None


def load_experiment(
    path: str | Path,
    sets: Sequence[str] = (),
    arm: str | None = None,
    point: Mapping[str, Any] | None = None,
) -> Experiment:
    """Read a fleet config or a scenario (a file with ``base:``) into a validated experiment.

    A scenario's config is its base, deep-merged with ``overrides``, then the arm (the first
    one unless ``arm`` names another), then the sweep ``point`` (dotted key -> value), then
    ``sets``; its name defaults to the scenario's. Every sweep value is checked as well.
    """
    source = _Source(path)
    experiment = source.experiment(sets, arm, point)
    if point is None:
        source.check_sweep(sets, arm)
    return experiment


def load_config(
    path: str | Path,
    sets: Sequence[str] = (),
    arm: str | None = None,
    point: Mapping[str, Any] | None = None,
) -> FleetConfig:
    """The validated fleet of a config or scenario file (see ``load_experiment``)."""
    return load_experiment(path, sets, arm, point).config


def expand_arms(path: str | Path, sets: Sequence[str] = ()) -> list[tuple[str | None, FleetConfig]]:
    """Every arm's config, in file order; ``[(None, config)]`` when there are no arms."""
    source = _Source(path)
    arms = list(source.scenario.arms) if source.scenario else []
    return [(arm, source.experiment(sets, arm).config) for arm in arms or [None]]


def expand_sweep(scenario: Scenario | None) -> list[dict[str, Any]]:
    """The sweep grid as points (dotted key -> value), the first key varying slowest.

    ``[{}]`` when there is no sweep: one point, the config as it is.
    """
    if scenario is None or not scenario.sweep:
        return [{}]
    keys = list(scenario.sweep)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*scenario.sweep.values())
    ]
