"""Path sums: streamed enumeration, top-k paths, trajectory statistics and the selected
policy, each a dynamic programme over :mod:`quasispecies.semiring`.
"""

from __future__ import annotations

from quasispecies.paths.core import (
    DEFAULT_CHUNK_SIZE as DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES,
    Paths as Paths,
    TrajectoryStats as TrajectoryStats,
    canonical_arrays as canonical_arrays,
    entropy as entropy,
    enumerate as enumerate,
    iter_chunks as iter_chunks,
    num_paths as num_paths,
    selected_policy as selected_policy,
    state_marginals as state_marginals,
    top_k as top_k,
    trajectory_stats as trajectory_stats,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_BYTES",
    "Paths",
    "TrajectoryStats",
    "canonical_arrays",
    "entropy",
    "enumerate",
    "iter_chunks",
    "num_paths",
    "selected_policy",
    "state_marginals",
    "top_k",
    "trajectory_stats",
]
