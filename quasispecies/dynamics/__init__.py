"""Quasispecies dynamics: finite-horizon evolution, continuous time, steady states and
checkpointed temperature sweeps.

Modules: :mod:`.horizon` (``evolve``, ``scaled_log_population``: ``n_{t+1} = n_t W_T`` in
the log domain, ``layout=`` chooses the storage of ``W_T``), :mod:`.steady`
(``steady_state``: ``x W_T = rho x``, ``method=`` chooses the solver),
:mod:`.continuous` (``evolve_continuous``: ``x(t) ∝ x0 e^{G t}``), :mod:`.sweep`
(checkpointed temperature sweeps).
"""

from __future__ import annotations

from quasispecies.dynamics.continuous import evolve_continuous as evolve_continuous
from quasispecies.dynamics.horizon import (
    LAYOUTS as LAYOUTS,
    PULL_MIN_STATES as PULL_MIN_STATES,
    evolve as evolve,
    resolve_layout as resolve_layout,
    scaled_log_population as scaled_log_population,
)
from quasispecies.dynamics.steady import (
    DENSE_STEADY_LIMIT as DENSE_STEADY_LIMIT,
    METHODS as METHODS,
    resolve_method as resolve_method,
    steady_state as steady_state,
)
from quasispecies.dynamics.sweep import (
    load_result as load_result,
    save_result as save_result,
    temperature_sweep as temperature_sweep,
)

__all__ = [
    "DENSE_STEADY_LIMIT",
    "LAYOUTS",
    "METHODS",
    "PULL_MIN_STATES",
    "evolve",
    "evolve_continuous",
    "load_result",
    "resolve_layout",
    "resolve_method",
    "save_result",
    "scaled_log_population",
    "steady_state",
    "temperature_sweep",
]
