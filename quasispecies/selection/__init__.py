"""Selection by a reward or an evaluator: tilting, best-of-n, evaluator-filtered chaining,
and the mode-collapse measures (:mod:`.collapse`).
"""

from __future__ import annotations

from quasispecies.selection.core import (
    BestOfN as BestOfN,
    best_of_n as best_of_n,
    best_of_n_kl_bound as best_of_n_kl_bound,
    best_of_n_stats as best_of_n_stats,
    best_of_n_win_rate_bound as best_of_n_win_rate_bound,
    filter_rounds as filter_rounds,
    filter_step as filter_step,
    kl_divergence as kl_divergence,
    rounds_to_reach as rounds_to_reach,
    simulate_chaining as simulate_chaining,
    soft_select as soft_select,
    survival as survival,
    tilt as tilt,
    tilt_log_partition as tilt_log_partition,
)

__all__ = [
    "BestOfN",
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
