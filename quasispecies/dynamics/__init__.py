"""Quasispecies dynamics: finite-horizon evolution, continuous time, steady states and
checkpointed temperature sweeps.
"""

from __future__ import annotations

from quasispecies.dynamics.discrete import (
    evolve as evolve,
    evolve_continuous as evolve_continuous,
    scaled_log_population as scaled_log_population,
    steady_state as steady_state,
)
from quasispecies.dynamics.sweep import (
    load_result as load_result,
    save_result as save_result,
    temperature_sweep as temperature_sweep,
)

__all__ = [
    "evolve",
    "evolve_continuous",
    "load_result",
    "save_result",
    "scaled_log_population",
    "steady_state",
    "temperature_sweep",
]
