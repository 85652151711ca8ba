"""Replications, seeds and results: the layer the CLI and the dashboard call."""

from twin.experiments.runner import (
    ReplicationResult,
    RunResult,
    replication_seeds,
    run_replication,
    run_replications,
)
from twin.experiments.store import write_results

__all__ = [
    "ReplicationResult",
    "RunResult",
    "replication_seeds",
    "run_replication",
    "run_replications",
    "write_results",
]
