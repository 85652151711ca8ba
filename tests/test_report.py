"""The sweep report (``twin report``, issue 20 item 5) drawn by a real Chromium: the
headline metrics against each swept key, figures tall enough for what they show, tick
labels that neither overlap nor run off the figure, legends shown whole, one colour per arm
in every figure.

The sweep is small on purpose (8 hosts, two arms, a 2 x 2 grid, 2 replications: 16 tasks)
but has what makes a report hard to read: two swept keys and long arm names.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CHROMIUM, CHROMIUM_ARGS, require_chromium

ROOT = Path(__file__).resolve().parents[1]
TWIN = shutil.which("twin", path=str(Path(sys.executable).parent)) or "twin"

FLEET = {
    "name": "tiny",
    "horizon": "20d",
    "seed": 3,
    "replications": 2,
    "sample_every": "1d",
    "topology": {"sites": 1, "pods": 1, "racks_per_pod": 2, "hosts_per_rack": 4, "spines": 1,
                 "tors_per_rack": 1, "power_feeds_per_rack": 1},
    "hardware": {"fault": {"dist": "exponential", "mean": "20d"}, "repair": "4h"},
    "guests": {"per_host": 4},
}  # fmt: skip
ARMS = ["all-monolithic-hosts-everywhere", "all-microkernel-hosts-everywhere"]
SCENARIO = {
    "name": "report-grid",
    "question": "Do operators and density move availability on either architecture?",
    "base": "fleet.yaml",
    "arms": {
        ARMS[0]: {"hosts": {"architecture_mix": {"monolithic": 1, "microkernel": 0}}},
        ARMS[1]: {"hosts": {"architecture_mix": {"monolithic": 0, "microkernel": 1}}},
    },
    "sweep": {"operators.count": [1, 3], "guests.per_host": [2, 6]},
}
CELLS = 8


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of the 2-arm, 2 x 2 grid sweep."""
    folder = tmp_path_factory.mktemp("report")
    (folder / "fleet.yaml").write_text(yaml.safe_dump(FLEET))
    (folder / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    out = folder / "results"
    for args in (["sweep", str(folder / "scenario.yaml"), "--workers", "2", "--out", str(out),
                  "--quiet"], ["report", str(out)]):  # fmt: skip
        r = subprocess.run([TWIN, *args], capture_output=True, text=True, timeout=180, cwd=ROOT)
        assert r.returncode == 0, r.stderr
    return out / "report.html"


MEASURE = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
    const box = r => { const b = r.getBoundingClientRect();
                       return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; };
    const ticks = sel => [...plot.querySelectorAll(sel)]
        .filter(t => t.textContent.trim()).map(t => ({text: t.textContent, ...box(t)}));
    const legend = plot.querySelector('.legend');
    const scroll = plot.querySelector('.legend .scrollbar');
    const colours = {};
    for (const trace of plot.data) {
        const group = trace.legendgroup;
        const colour = (trace.line && trace.line.color) || (trace.marker && trace.marker.color);
        if (group && typeof colour === 'string') (colours[group] ||= new Set()).add(colour);
    }
    return {
        id: plot.id, figure: box(plot), title: (plot.layout.title || {}).text || '',
        yticks: ticks('.ytick text'), xticks: ticks('.xtick text'),
        legend: legend ? box(legend) : null,
        legendScrolls: !!scroll && scroll.getBoundingClientRect().height > 0,
        legendItems: plot.querySelectorAll('.legend .traces').length,
        colours: Object.fromEntries(Object.entries(colours).map(([k, v]) => [k, [...v]])),
    };
})"""


def overlapping(labels: list[dict]) -> list[tuple[str, str]]:
    """Pairs of tick labels whose boxes intersect (a 1 px tolerance)."""
    pairs = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            if (a["left"] < b["right"] - 1 and b["left"] < a["right"] - 1
                    and a["top"] < b["bottom"] - 1 and b["top"] < a["bottom"] - 1):  # fmt: skip
                pairs.append((a["text"], b["text"]))
    return pairs


def test_the_sweep_report_is_readable_in_chromium(report: Path, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length"
                                   " >= 8", timeout=20_000)  # fmt: skip
            figures = page.evaluate(MEASURE)
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            if target := os.environ.get("TWIN_REPORT_SCREENSHOT"):
                page.screenshot(path=target, full_page=True)
        finally:
            browser.close()
    assert errors == []
    by_id = {f["id"]: f for f in figures}

    # the headline metrics against each swept key come first, one figure per key
    assert [f["id"] for f in figures[:2]] == ["figure-sweep-0", "figure-sweep-1"]
    assert "against operators.count" in by_id["figure-sweep-0"]["title"]
    assert "against guests.per_host" in by_id["figure-sweep-1"]["title"]
    for key, values in (("sweep-0", {"1", "3"}), ("sweep-1", {"2", "6"})):
        shown = {t["text"] for t in by_id[f"figure-{key}"]["xticks"]}
        assert values <= shown, (key, shown)
    assert {"figure-capacity", "figure-over_time", "figure-downtime"} <= by_id.keys()

    for f in figures:
        height = f["figure"]["bottom"] - f["figure"]["top"]
        assert height >= 320, (f["id"], height)  # not the ~80 px strips of old
        assert not overlapping(f["yticks"]), (f["id"], overlapping(f["yticks"]))
        assert not overlapping(f["xticks"]), (f["id"], overlapping(f["xticks"]))
        for tick in f["yticks"] + f["xticks"]:  # inside the figure: not cut at its edge
            assert tick["left"] >= f["figure"]["left"] - 1, (f["id"], tick)
            assert tick["right"] <= f["figure"]["right"] + 1, (f["id"], tick)
        if f["legend"] is not None:
            assert not f["legendScrolls"], f["id"]
            assert f["legend"]["bottom"] <= f["figure"]["bottom"] + 1, f["id"]
            assert f["legend"]["right"] <= f["figure"]["right"] + 1, f["id"]

    # a per-cell figure gives each of the 8 cells a full line of text, names uncut
    labels = [t["text"] for t in by_id["figure-downtime"]["yticks"]]
    assert len(labels) == CELLS
    assert f"{ARMS[1]} · operators.count=3, guests.per_host=6" in labels
    rows = sorted(t["top"] for t in by_id["figure-downtime"]["yticks"])
    assert min(b - a for a, b in itertools.pairwise(rows)) >= 20

    # one colour per arm, the same in every figure that draws arms
    seen: dict[str, set[str]] = {}
    for f in figures:
        for arm in ARMS:
            seen.setdefault(arm, set()).update(f["colours"].get(arm, []))
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert seen[ARMS[0]] != seen[ARMS[1]]
    drawn = [f["id"] for f in figures if set(ARMS) <= f["colours"].keys()]
    assert len(drawn) >= 6, drawn
