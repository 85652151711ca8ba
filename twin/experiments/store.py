"""The results directory: Parquet tables and a manifest, each written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from twin.experiments.outputs import RUN_KIND
from twin.experiments.runner import RunResult

PACKAGES = ("fleet-twin", "mesa", "numpy", "pandas", "pyarrow", "networkx", "pydantic", "scipy")


def config_hash(config_json: dict[str, Any]) -> str:
    """A stable hash of a config (its canonical JSON)."""
    text = json.dumps(config_json, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Python's version and the installed version of each of ``PACKAGES`` and ``extra``."""
    out = {"python": platform.python_version()}
    for name in (*PACKAGES, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_table(table: pa.Table, path: Path) -> None:
    """Write an Arrow table as Parquet, atomically (keeps the table's schema metadata)."""
    _atomic(path, lambda tmp: pq.write_table(table, tmp))


def write_json(data: dict[str, Any], path: Path) -> None:
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def write_results(result: RunResult, out: Path, source: str | None = None) -> None:
    """Write ``summary.parquet``, ``timeseries.parquet``, ``events.parquet`` and
    ``manifest.json`` (config, its hash, the seeds and package versions)."""
    out.mkdir(parents=True, exist_ok=True)
    write_frame(result.summary_frame(), out / "summary.parquet")
    write_frame(result.timeseries(), out / "timeseries.parquet")
    write_frame(result.events(), out / "events.parquet")
    config_json = result.config.model_dump(mode="json")
    write_json(
        {
            "kind": RUN_KIND,
            "source": source,
            "name": result.config.name,
            "config": config_json,
            "config_hash": config_hash(config_json),
            "seed": result.seed,
            "replications": [
                {
                    "index": r.index,
                    "seed_sequence": {"entropy": result.seed, "spawn_key": [r.index]},
                }
                for r in result.replications
            ],
            "versions": versions(),
        },
        out / "manifest.json",
    )
