"""Fleet twin: an agent-based digital twin of a virtualised data-center fleet.

The Python API, for notebooks and for the dashboard::

    from twin import load_config, Fleet, run_replications
    config = load_config("configs/default.yaml", ["operators.count=2"])
    fleet = Fleet(config, rng=7)
    fleet.run_until(24 * 30)          # advance a month (hours)
    fleet.metrics()                   # metrics so far, flat
    run_replications(config, 10).summary_frame()   # one row per replication
"""

from twin.config import ConfigError, FleetConfig, load_config, load_experiment
from twin.experiments import RunResult, run_replication, run_replications
from twin.fleet import Fleet

__all__ = [
    "ConfigError",
    "Fleet",
    "FleetConfig",
    "RunResult",
    "load_config",
    "load_experiment",
    "run_replication",
    "run_replications",
]
