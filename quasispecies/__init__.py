"""quasispecies: selection on replicators as a path integral; RL as its T -> 0 limit.

``import quasispecies as qs`` turns on JAX float64 (``jax_enable_x64``): tail frequencies
of ``1e-14`` matter here. Set ``QUASISPECIES_X64=0`` before import to opt out; float32
is then used only where you pass float32 arrays. (This is the one place the switch
lives; the README's "Precision" paragraph documents it.)

Layout (arrows point down; see the README's Layout section)::

    cli -> experiments -> plot -> {rl, sequence, selection, bridge}
        -> {dynamics, paths} -> kernels -> {semiring, model}

The names below are the public API (``__all__``). Heavy parts load lazily: ``qs.plot``
(matplotlib), ``qs.bridge`` (the language-model bridge), the analyses packages and
the CLI are imported on first use, not by ``import quasispecies``.
"""

from __future__ import annotations

import importlib
import os

import jax

if os.environ.get("QUASISPECIES_X64", "1") != "0":
    jax.config.update("jax_enable_x64", True)

from quasispecies import semiring as semiring
from quasispecies.dynamics import (
    evolve as evolve,
    evolve_continuous as evolve_continuous,
    scaled_log_population as scaled_log_population,
    steady_state as steady_state,
)
from quasispecies.kernels.maxplus import max_cycle_mean as max_cycle_mean
from quasispecies.model import (
    MDP as MDP,
    SteadyState as SteadyState,
    chain as chain,
    from_networkx as from_networkx,
    grid_world as grid_world,
    load_mdp as load_mdp,
    random_mdp as random_mdp,
    save_mdp as save_mdp,
    to_networkx as to_networkx,
)

__version__ = "0.1.0"

# Subpackages that load on first access (keeps `import quasispecies` light).
_LAZY_MODULES = {
    "model": "quasispecies.model",
    "kernels": "quasispecies.kernels",
    "dynamics": "quasispecies.dynamics",
    "paths": "quasispecies.paths",
    "rl": "quasispecies.rl",
    "sequence": "quasispecies.sequence",
    "selection": "quasispecies.selection",
    "bridge": "quasispecies.bridge",
    "plot": "quasispecies.plot",
    "experiments": "quasispecies.experiments",
    # Short names for modules users reach for directly.
    "collapse": "quasispecies.selection.collapse",
    "landscapes": "quasispecies.sequence",
    "tables": "quasispecies.model.tables",
    "sweep": "quasispecies.dynamics.sweep",
    "maxplus": "quasispecies.kernels.maxplus",
    "sharding": "quasispecies.kernels.sharding",
}
_LAZY_NAMES = {
    "SequenceSpace": "quasispecies.sequence",
    "single_peak": "quasispecies.sequence",
    "fitness_landscape": "quasispecies.sequence",
    "class_landscape": "quasispecies.sequence",
    "additive": "quasispecies.sequence",
    "multiplicative": "quasispecies.sequence",
    "nk_landscape": "quasispecies.sequence",
    "error_threshold": "quasispecies.sequence",
    "temperature_sweep": "quasispecies.dynamics.sweep",
    "fit_rewards": "quasispecies.selection.fit",
    "RewardFit": "quasispecies.selection.fit",
}

__all__ = sorted(
    [
        "MDP",
        "SteadyState",
        "chain",
        "evolve",
        "evolve_continuous",
        "from_networkx",
        "grid_world",
        "load_mdp",
        "max_cycle_mean",
        "random_mdp",
        "save_mdp",
        "scaled_log_population",
        "semiring",
        "steady_state",
        "to_networkx",
        *_LAZY_MODULES,
        *_LAZY_NAMES,
    ]
)


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        module = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = module
        return module
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'quasispecies' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
