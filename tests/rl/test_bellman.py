"""qs.rl.bellman: finite-horizon V*_H and V+_H against dense Bellman loops and path
enumeration; the horizon average against the max cycle mean."""

from __future__ import annotations

import numpy as np
import pytest

import quasispecies as qs
from quasispecies import rl
from tests.reference import dense as brute, paths as pb


@pytest.mark.parametrize("seed", range(200))
def test_finite_horizon_values_match_brute_force(seed):
    mdp, _, H = pb.case(seed)
    got = rl.finite_horizon_values(mdp, H)
    np.testing.assert_allclose(got.expected, brute.bellman_values(mdp, H), rtol=0, atol=1e-12)
    want_opt = np.array([pb.all_paths(mdp, np.eye(3)[s], H)[3].max() for s in range(3)])
    np.testing.assert_allclose(got.optimistic, want_opt, rtol=0, atol=1e-12)
    assert (got.optimistic >= got.expected - 1e-12).all()
    if mdp.deterministic:
        np.testing.assert_allclose(got.optimistic, got.expected, rtol=0, atol=1e-12)


def test_finite_horizon_discounted_and_dead_ends():
    mdp = qs.grid_world(3, 4, walls=[(1, 1)], goal=(0, 3), slip=0.2)
    for g in (1.0, 0.8):
        got = rl.finite_horizon_values(mdp, 4, discount=g)
        np.testing.assert_allclose(
            got.expected, brute.bellman_values(mdp, 4, g), rtol=0, atol=1e-12
        )
        wall = 1 * 4 + 1
        assert np.isneginf(got.expected[wall]) and np.isneginf(got.optimistic[wall])
    # An outcome with reward -inf makes the expectation -inf (the path sum ignores it).
    P = np.zeros((2, 1, 2))
    P[0, 0] = [0.5, 0.5]
    P[1, 0, 1] = 1.0
    R = np.array([[[1.0, -np.inf]], [[0.0, 2.0]]])
    m = qs.MDP(P, R)
    v = rl.finite_horizon_values(m, 2)
    assert np.isneginf(v.expected[0]) and v.optimistic[0] == 2.0  # 0 -> 0 -> 0
    assert rl.finite_horizon_q(m, 0).shape == (0, 2, 1)


def test_horizon_average_tends_to_max_cycle_mean():
    # Deterministic: a best H-walk is a path of < S edges plus cycles of mean <= mu*, so
    # |max_s V*_H(s) / H - mu*| <= 4 S max|R| / H.
    for seed in range(10):
        mdp = qs.random_mdp(6, 2, seed=seed)
        mu = qs.max_cycle_mean(mdp)
        H = 400
        v = rl.finite_horizon_values(mdp, H).expected.max()
        assert abs(v / H - mu) <= 4 * 6 * np.abs(mdp.R).max() / H
