"""The ``T -> 0`` limit as reinforcement learning: Bellman (expected and optimistic), soft
value iteration, policy iteration, policy agreement and the limit report.
"""

from __future__ import annotations

from quasispecies.rl.core import (
    DiscountedSolution as DiscountedSolution,
    LimitReport as LimitReport,
    PolicyAgreement as PolicyAgreement,
    SoftValues as SoftValues,
    Values as Values,
    finite_horizon_q as finite_horizon_q,
    finite_horizon_values as finite_horizon_values,
    forest as forest,
    limit_report as limit_report,
    max_cycle_mean as max_cycle_mean,
    optimal_actions as optimal_actions,
    optimal_cycle as optimal_cycle,
    path_integral_values as path_integral_values,
    policy_agreement as policy_agreement,
    policy_iteration as policy_iteration,
    soft_value_iteration as soft_value_iteration,
)

__all__ = [
    "DiscountedSolution",
    "LimitReport",
    "PolicyAgreement",
    "SoftValues",
    "Values",
    "finite_horizon_q",
    "finite_horizon_values",
    "forest",
    "limit_report",
    "max_cycle_mean",
    "optimal_actions",
    "optimal_cycle",
    "path_integral_values",
    "policy_agreement",
    "policy_iteration",
    "soft_value_iteration",
]
