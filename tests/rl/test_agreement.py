"""qs.rl.agreement: the T -> 0 selected policy (deterministic: Bellman; stochastic:
optimistic) and where it disagrees with Bellman."""

from __future__ import annotations

import numpy as np
import pytest

import quasispecies as qs
from quasispecies import paths, rl
from tests.reference import paths as pb


@pytest.mark.parametrize("seed", range(0, 200, 2))
def test_deterministic_selected_policy_tends_to_bellman(seed):
    mdp = qs.random_mdp(3, 2, seed=seed, density=1.0 if seed % 4 else 0.6)
    H = 3
    q = rl.finite_horizon_q(mdp, H)
    np.testing.assert_allclose(q, rl.finite_horizon_q(mdp, H, optimistic=True), rtol=0, atol=1e-12)
    for T in (0.0, 1e-8):
        ag = rl.policy_agreement(mdp, T, H)
        assert ag.decided > 0 and ag.agree == ag.decided
    # At T = 0 the selected policy puts all its mass on Bellman-optimal actions.
    pi0 = paths.selected_policy(mdp, 0.0, H)
    opt = rl.optimal_actions(q)
    alive = np.isfinite(q.max(axis=-1))
    np.testing.assert_allclose(np.where(opt, pi0, 0.0).sum(axis=-1)[alive], 1.0, atol=1e-12)


@pytest.mark.parametrize("seed", range(1, 200, 4))
def test_stochastic_selected_policy_tends_to_the_optimistic_one(seed):
    mdp, _, H = pb.case(seed)
    ag = rl.policy_agreement(mdp, 0.0, H, optimistic=True)
    assert ag.agree == ag.decided


def test_stochastic_limit_can_disagree_with_bellman():
    # A safe action (reward 1) and a gamble (10 with probability 0.05, else -5): Bellman
    # takes the safe one, the T -> 0 population the gamble.
    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = 1.0
    P[:, 1] = [0.95, 0.05]
    R = np.zeros((2, 2, 2))
    R[:, 0, :] = 1.0
    R[:, 1, 0] = -5.0
    R[:, 1, 1] = 10.0
    mdp = qs.MDP(P, R)
    v = rl.finite_horizon_values(mdp, 3)
    np.testing.assert_allclose(v.expected, 3.0)
    np.testing.assert_allclose(v.optimistic, 30.0)
    ag = rl.policy_agreement(mdp, np.array([1.0, 0.01, 0.0]), 3)
    assert ag[-1].agree == 0 and ag[-1].decided == 6
    assert float(paths.trajectory_stats(mdp, 0.0, 3, 0).scaled_log_partition) == 30.0
