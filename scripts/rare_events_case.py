"""The `rare-power-outage` validation case twice at the same cost: importance-sampled, as
``twin validate`` runs it, and with plain sampling.

    .venv/bin/python scripts/rare_events_case.py
"""

from __future__ import annotations

from dataclasses import replace

from twin.validation import QUICK, rare_power_case, run_suite


def main() -> None:
    case = rare_power_case()
    print(f"{case.title}: {case.replications} replications of {case.fixed_horizon:g} h")
    for label, boost in (("boosted", case.boost), ("plain", None)):
        suite = run_suite([replace(case, boost=boost)], QUICK, seed=42)
        for c in suite.checks:
            seen = f"; {int(c.values.sum())} outages sampled" if c.check.metric.startswith(
                "incidents") else ""  # fmt: skip
            print(f"{label}: {c.check.metric}: closed form {c.check.analytic:.9g}, simulated "
                  f"{c.mean:.9g} (interval {c.low:.9g} to {c.high:.9g}), 95 % half-width "
                  f"{c.precision:.1%} of the shortfall: {c.status.value}{seen}")  # fmt: skip


if __name__ == "__main__":
    main()
