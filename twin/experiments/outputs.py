"""Where a command may write, decided before any work is done.

A results folder says which command wrote it: its ``manifest.json`` carries ``kind``
(``twin-run``, ``twin-sweep``). A command writes into a folder that is missing or empty, or
that holds its own kind of results; it refuses a file, a folder it cannot write, a folder
of another command's results (unless forced: then those results are removed first) and a
folder of files that are no results at all. A single output file (a report, a calibrated
config) may replace a file the same command wrote, recognised by a marker in its text.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

MANIFEST = "manifest.json"
RUN_KIND = "twin-run"
SWEEP_KIND = "twin-sweep"
WRITERS = {RUN_KIND: "twin run --out", SWEEP_KIND: "twin sweep"}
RESULT_FILES = (MANIFEST, "summary.parquet", "timeseries.parquet", "events.parquet",
                "report.html", "parts")  # fmt: skip
"""What a results folder may hold: removed, and only these, when ``--force`` replaces it."""


class OutputRefused(Exception):
    """The output path cannot take this command's results; the text is one line."""


def results_kind(folder: Path) -> str | None:
    """Which command's results ``folder`` holds: a ``kind`` of ``WRITERS``, ``"unknown"``
    for a manifest no command wrote, ``None`` when there is no manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "unknown"
    if not isinstance(manifest, dict):
        return "unknown"
    if "kind" in manifest:
        return str(manifest["kind"])
    # `twin run --out` wrote no kind before it was recorded: known by its keys
    return RUN_KIND if {"config_hash", "replications"} <= manifest.keys() else "unknown"


def _writable(option: str, path: Path) -> None:
    """The nearest existing folder above ``path`` (or ``path`` itself) takes a new file:
    tried for real, as permissions alone do not tell for root or a read-only mount."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputRefused(f"{option} {path}: {probe} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise OutputRefused(f"{option} {path}: cannot write in {probe} ({err.strerror})") from None


def _visible(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(".")]


def check_results_dir(option: str, folder: Path, kind: str, *, force: bool = False) -> None:
    """Refuse ``folder`` as ``kind``'s results folder, before any work, when it is a file,
    cannot be written, or holds something else than ``kind``'s results. With ``force``,
    another command's results there are removed (their files only) and the folder taken."""
    if folder.exists() and not folder.is_dir():
        raise OutputRefused(f"{option} {folder}: is a file, expected a results folder")
    _writable(option, folder)
    if not folder.exists() or not _visible(folder):
        return
    theirs = results_kind(folder)
    if theirs == kind:
        return
    if theirs is None:
        raise OutputRefused(
            f"{option} {folder}: not empty and holds no results ({MANIFEST}); choose an empty "
            "or new folder"
        )
    if not force:
        writer = WRITERS.get(theirs, "another program")
        raise OutputRefused(
            f"{option} {folder}: holds results of `{writer}`; choose another folder, or pass "
            "--force to replace them"
        )
    for name in RESULT_FILES:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def check_output_file(option: str, path: Path, marker: str, *, force: bool = False) -> None:
    """Refuse ``path`` as an output file, before any work, when it is a folder, cannot be
    written, or is a file this command did not write (its text lacks ``marker``) and
    ``force`` is not given."""
    if path.is_dir():
        raise OutputRefused(f"{option} {path}: is a folder, expected a file name")
    _writable(option, path.parent)
    if path.is_file() and not force:
        with path.open("rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
        if marker not in head:
            raise OutputRefused(
                f"{option} {path}: exists and was not written by this command; choose another "
                "name, or pass --force to replace it"
            )
