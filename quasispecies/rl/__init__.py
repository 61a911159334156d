"""The ``T -> 0`` limit as reinforcement learning: Bellman (expected and optimistic), soft
value iteration, policy iteration, policy agreement and the limit report.

Modules: :mod:`.bellman` (finite-horizon backward induction, Bellman 1957), :mod:`.soft`
(soft / path-integral value iteration, Todorov 2009), :mod:`.policy_iteration` (the exact
discounted optimum, Howard 1960), :mod:`.agreement` (the selected policy against the
optimal actions), :mod:`.limit` (the measured limit report; Karp 1978 for the cycle mean),
:mod:`.common` (the MDP as solver arrays). ``forest`` lives in
:mod:`quasispecies.model.builders`; ``max_cycle_mean`` / ``optimal_cycle`` in
:mod:`quasispecies.kernels.maxplus`; both are re-exported here.
"""

from __future__ import annotations

from quasispecies.kernels.maxplus import (
    max_cycle_mean as max_cycle_mean,
    optimal_cycle as optimal_cycle,
)
from quasispecies.model.builders import forest as forest
from quasispecies.rl.agreement import (
    PolicyAgreement as PolicyAgreement,
    policy_agreement as policy_agreement,
)
from quasispecies.rl.bellman import (
    Values as Values,
    finite_horizon_q as finite_horizon_q,
    finite_horizon_values as finite_horizon_values,
    optimal_actions as optimal_actions,
)
from quasispecies.rl.howard import (
    DiscountedSolution as DiscountedSolution,
    policy_iteration as policy_iteration,
)
from quasispecies.rl.limit import (
    LimitReport as LimitReport,
    limit_report as limit_report,
)
from quasispecies.rl.soft import (
    SoftValues as SoftValues,
    path_integral_values as path_integral_values,
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
