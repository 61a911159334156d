"""qs.rl.policy_iteration: the exact discounted optimum against rl.json, pymdptoolbox
and long value iteration; the forest builder against pymdptoolbox."""

from __future__ import annotations

import mdptoolbox.example
import mdptoolbox.mdp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import quasispecies as qs
from quasispecies import rl
from tests.reference import dense as brute

# ---- Reference values copied from ../shared/reference/rl.json (cited per key) ----------
# "forest_pymdptoolbox": mdptoolbox.example.forest() defaults, discount 0.9.
FOREST_V_STAR = [26.244, 29.484, 33.484]
FOREST_POLICY = [0, 0, 0]
FOREST_OPTIMISTIC = [32.4, 36.0, 40.0]


def _forest_toolbox():
    P, R = mdptoolbox.example.forest()
    return P.transpose(1, 0, 2), R


def test_forest_builder_matches_pymdptoolbox():
    for kw in ({}, {"S": 5, "r1": 3.0, "r2": 1.5, "p": 0.3}):
        P, R = mdptoolbox.example.forest(**kw)
        ours = rl.forest(kw.get("S", 3), kw.get("r1", 4.0), kw.get("r2", 2.0), kw.get("p", 0.1))
        np.testing.assert_array_equal(ours.P, P.transpose(1, 0, 2))
        np.testing.assert_array_equal(ours.R, R)


def test_rl_json_forest_optimum_and_optimistic_limit():
    mdp = rl.forest()
    exact = rl.policy_iteration(mdp, 0.9)
    # The reference decimals are exact (26.244 = ...): float64 agreement.
    np.testing.assert_allclose(exact.values, FOREST_V_STAR, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(exact.policy, FOREST_POLICY)
    opt = rl.policy_iteration(mdp, 0.9, optimistic=True)
    np.testing.assert_allclose(opt.values, FOREST_OPTIMISTIC, rtol=0, atol=1e-10)
    # pymdptoolbox's own exact solver agrees; its value iteration stops far too early.
    P, R = mdptoolbox.example.forest()
    tb = mdptoolbox.mdp.PolicyIteration(P, R, 0.9)
    tb.run()
    np.testing.assert_allclose(exact.values, tb.V, rtol=0, atol=1e-10)
    vi = mdptoolbox.mdp.ValueIteration(P, R, 0.9)
    vi.run()
    assert np.max(np.abs(np.asarray(vi.V) - FOREST_V_STAR)) > 1.0


@pytest.mark.parametrize("seed", range(30))
def test_policy_iteration_matches_pymdptoolbox_and_long_value_iteration(seed):
    mdp = qs.random_mdp(5, 3, seed=seed, stochastic=True, density=0.6 if seed % 2 else 1.0)
    g = 0.9 if seed % 3 else 0.5
    got = rl.policy_iteration(mdp, g)
    # g^3000 < 1e-137: value iteration this long is exact to float64 rounding.
    np.testing.assert_allclose(got.values, brute.value_iteration(mdp, g), rtol=0, atol=1e-10)
    if mdp.allowed.all():  # pymdptoolbox needs every action allowed everywhere
        P, _, _ = brute.dense_arrays(mdp)
        tb = mdptoolbox.mdp.PolicyIteration(P.transpose(1, 0, 2), mdp.R, g)
        tb.run()
        np.testing.assert_allclose(got.values, tb.V, rtol=0, atol=1e-9)
    opt = rl.policy_iteration(mdp, g, optimistic=True)
    assert (opt.values >= got.values - 1e-10).all()
    pin = rl.path_integral_values(mdp, 0.0, discount=g)
    np.testing.assert_allclose(pin.values, opt.values, rtol=0, atol=1e-9)
    soft = rl.soft_value_iteration(mdp, 0.0, discount=g)
    np.testing.assert_allclose(soft.values, got.values, rtol=0, atol=1e-9)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10**6), g=st.sampled_from([0.3, 0.9, 0.99]))
def test_deterministic_discounted_optimistic_equals_expected(seed, g):
    mdp = qs.random_mdp(6, 3, seed=seed, density=0.7)
    a = rl.policy_iteration(mdp, g)
    b = rl.policy_iteration(mdp, g, optimistic=True)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-10)
    # Bellman residual of the exact solution is rounding only.
    q = rl.finite_horizon_q(mdp, 1)[0]  # one step to go: the rewards
    ns = mdp.next_state[:, :, 0]
    res = np.where(mdp.allowed, q + g * a.values[ns], -np.inf).max(axis=1) - a.values
    assert np.abs(res).max() < 1e-10 * (1 + np.abs(a.values).max())


def test_policy_iteration_with_dead_ends():
    mdp = qs.grid_world(3, 3, walls=[(1, 1)], goal=(2, 2), slip=0.1)
    got = rl.policy_iteration(mdp, 0.95)
    assert np.isneginf(got.values[4]) and got.policy[4] == -1
    fin = np.isfinite(got.values)
    np.testing.assert_allclose(
        got.values[fin], brute.value_iteration(mdp, 0.95, 2000)[fin], atol=1e-10
    )
