"""Path sums: streamed enumeration, top-k paths, trajectory statistics and the selected
policy, each a dynamic programme over :mod:`quasispecies.semiring`.

Modules: :mod:`.enumeration` (the paths themselves: counting, unranking, streaming) and
:mod:`.dp` (k-best, entropy and log-semiring programmes: ``top_k``, ``trajectory_stats``,
``selected_policy``, ``state_marginals``).
"""

from __future__ import annotations

from quasispecies.paths.dp import (
    TrajectoryStats as TrajectoryStats,
    entropy as entropy,
    path_probability as path_probability,
    selected_policy as selected_policy,
    state_marginals as state_marginals,
    top_k as top_k,
    trajectory_stats as trajectory_stats,
)
from quasispecies.paths.enumeration import (
    DEFAULT_CHUNK_SIZE as DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES,
    Paths as Paths,
    canonical_arrays as canonical_arrays,
    enumerate as enumerate,
    iter_chunks as iter_chunks,
    num_paths as num_paths,
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
    "path_probability",
    "selected_policy",
    "state_marginals",
    "top_k",
    "trajectory_stats",
]
