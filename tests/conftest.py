"""Shared fixtures: quiet fleets where every random process is off unless a test turns it on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from twin.architectures import ARCHITECTURES
from twin.config import FleetConfig, deep_merge, validate_config

QUIET: dict[str, Any] = {
    "name": "quiet",
    "horizon": 100,
    "seed": 1,
    "sample_every": "10h",
    "topology": {
        "sites": 1, "pods": 1, "racks_per_pod": 2, "hosts_per_rack": 2,
        "spines": 1, "tors_per_rack": 1, "power_feeds_per_rack": 1,
    },
    "hosts": {"architecture_mix": {"monolithic": 0.5, "microkernel": 0.5}, "assign": "by_rack"},
    "architectures": {
        arch: {
            "hypervisor_fault": "never",
            "parent_os_fault": "never",
            "guest_process_fault": "never",
            "crash_detection": "15m",
            "reboot_time": "15m",
            "driver_restart_time": "30m",
            "escalation_grace": "1h",
            "crash_auto_reboot": False,
            "driver_fault_escalation_prob": 0.0,
            "aging": "never",
        }
        for arch in ARCHITECTURES
    },
    "drivers": [{"name": "nic", "fault": "never", "share": 1.0}],
    "hardware": {"fault": "never", "repair": "2h", "hands_on": "repair"},
    "network": {
        "tor_fault": "never", "tor_repair": "1h", "spine_fault": "never",
        "spine_repair": "1h", "power_fault": "never", "power_repair": "3h",
    },
    "guests": {"per_host": 2, "boot_time": "6m", "placement": "spread", "ha": {"enabled": False}},
    "operators": {"count": 1, "response_time": "30m", "shift": "24x7", "error_prob": 0.0},
    "updates": [],
    "services": [],
}  # fmt: skip


def quiet_config(**overrides: Any) -> FleetConfig:
    """A 4-host fleet (rack r0 monolithic, r1 microkernel) in which nothing happens by itself."""
    return validate_config(deep_merge(QUIET, overrides))


@pytest.fixture
def quiet() -> Any:
    return quiet_config


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
"""Debian's chromium, as `.ci/run` installs it (never a downloaded browser)."""


def require_chromium() -> None:
    """Skip a browser test where Debian's chromium is missing; under CI, where `.ci/run`
    installs it, its absence is a failure."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing: .ci/run installs it")
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
