"""quasispecies: selection on replicators as a path integral; RL as its T -> 0 limit.

``import quasispecies as qs`` turns on JAX float64 (``jax_enable_x64``): tail frequencies
of ``1e-14`` matter here. Set ``QUASISPECIES_X64=0`` before import to opt out; float32
is then used only where you pass float32 arrays.

Heavy parts load lazily: ``qs.plot`` (matplotlib), ``qs.bridge`` (the language-model
bridge) and the CLI are imported on first use, not by ``import quasispecies``.
"""

from __future__ import annotations

import importlib
import os

import jax

if os.environ.get("QUASISPECIES_X64", "1") != "0":
    jax.config.update("jax_enable_x64", True)

from . import semiring as semiring
from ._results import SteadyState as SteadyState
from .builders import chain as chain
from .builders import from_networkx as from_networkx
from .builders import grid_world as grid_world
from .builders import random_mdp as random_mdp
from .builders import to_networkx as to_networkx
from .dynamics import evolve as evolve
from .dynamics import evolve_continuous as evolve_continuous
from .dynamics import scaled_log_population as scaled_log_population
from .dynamics import steady_state as steady_state
from .io import load_mdp as load_mdp
from .io import save_mdp as save_mdp
from .maxplus import max_cycle_mean as max_cycle_mean
from .mdp import MDP as MDP

__version__ = "0.1.0"

# Submodules and names that load on first access (keeps `import quasispecies` light
# and lets each analysis module live on its own).
_LAZY_MODULES = {
    "paths",
    "rl",
    "selection",
    "collapse",
    "bridge",
    "plot",
    "landscapes",
    "tables",
    "sharding",
    "checkpoint",
}
_LAZY_NAMES = {
    "SequenceSpace": "landscapes",
    "single_peak": "landscapes",
    "fitness_landscape": "landscapes",
    "additive": "landscapes",
    "multiplicative": "landscapes",
    "nk_landscape": "landscapes",
    "error_threshold": "landscapes",
}


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        module = importlib.import_module(f".{_LAZY_NAMES[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'quasispecies' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_MODULES | set(_LAZY_NAMES))
