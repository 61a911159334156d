"""Selection by a reward or an evaluator, and what it does to a distribution.

Modules: :mod:`.tilt` (the KL-regularised tilt ``p0 exp(r / beta) / Z``, soft selection),
:mod:`.best_of_n` (the exact best-of-``n`` law and its KL / win-rate bounds),
:mod:`.chaining` (evaluator-filtered iterative chaining, exact and finite-buffer),
:mod:`.collapse` (the mode-collapse measures; ``qs.collapse``), :mod:`.tree` (token-tree
sequence- and token-level distributions, re-exported by :mod:`.collapse`) and
:mod:`.validate` (the argument checks they share).
"""

from __future__ import annotations

from quasispecies.selection.best_of import (
    BestOfN as BestOfN,
    best_of_n as best_of_n,
    best_of_n_kl_bound as best_of_n_kl_bound,
    best_of_n_stats as best_of_n_stats,
    best_of_n_win_rate_bound as best_of_n_win_rate_bound,
)
from quasispecies.selection.chaining import (
    ChainSimulation as ChainSimulation,
    filter_rounds as filter_rounds,
    filter_step as filter_step,
    rounds_to_reach as rounds_to_reach,
    simulate_chaining as simulate_chaining,
)
from quasispecies.selection.tilting import (
    kl_divergence as kl_divergence,
    soft_select as soft_select,
    survival as survival,
    tilt as tilt,
    tilt_log_partition as tilt_log_partition,
)

__all__ = [
    "BestOfN",
    "ChainSimulation",
    "best_of_n",
    "best_of_n_kl_bound",
    "best_of_n_stats",
    "best_of_n_win_rate_bound",
    "filter_rounds",
    "filter_step",
    "kl_divergence",
    "rounds_to_reach",
    "simulate_chaining",
    "soft_select",
    "survival",
    "tilt",
    "tilt_log_partition",
]
