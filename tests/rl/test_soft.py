"""qs.rl.soft: soft value iteration in both forms against dense loops and rl.json
(path-integral sums, forest risk-seeking backup, one-step soft Bellman, Maslov)."""

from __future__ import annotations

import numpy as np
import pytest

import quasispecies as qs
from quasispecies import paths, rl
from tests.reference import dense as brute, paths as pb

TEMPS = np.array(pb.TEMPS)

# ---- Reference values copied from ../shared/reference/rl.json (cited per key) ----------
# "deterministic_path_integral": 2 states, action a moves to state a, R[s, a], x0 = delta_0,
# H = 3, T log(sum over the 8 paths of exp(G / T)).
DPI_R = [[1, 0], [0.5, 2]]
DPI = {1.0: 4.827937, 0.1: 4.000009, 0.0: 4.0}
# "forest_pymdptoolbox": mdptoolbox.example.forest() defaults, discount 0.9.
FOREST_V_STAR = [26.244, 29.484, 33.484]
FOREST_PATH_INTEGRAL_T001 = [32.39, 35.99, 39.99]
FOREST_OPTIMISTIC = [32.4, 36.0, 40.0]
# "soft_bellman_one_step": r = [1, 0], T = 1.
SOFT_ONE_STEP_V = 1.3133
SOFT_ONE_STEP_POLICY = [0.7311, 0.2689]
# "maslov": x = [1, 2, 3], T * logsumexp(x / T).
MASLOV = {1.0: 3.407606, 0.1: 3.0000045, 0.01: 3.0}


def test_rl_json_deterministic_path_integral():
    mdp = qs.MDP.from_transitions([[0, 1], [0, 1]], DPI_R)
    H = 3
    for T, want in DPI.items():
        # The reference sums exp(G/T) without the exploration weight pi0 = 1/2 per step;
        # our path sum includes it: T log Z = reference + T H log(1/2).
        got = float(paths.trajectory_stats(mdp, T, H, 0).scaled_log_partition) + T * H * np.log(2)
        assert got == pytest.approx(want, abs=1e-6)  # reference given to 6 decimals
        e = paths.enumerate(mdp, T, H, 0)
        assert len(e.reward) == 8
        direct = pb.scaled_log_partition(np.zeros_like(e.reward), e.reward, T)
        assert direct == pytest.approx(want, abs=1e-6)
        pi = rl.path_integral_values(mdp, T, horizon=H)
        assert pi.values[0] + T * H * np.log(2) == pytest.approx(want, abs=1e-6)


def test_rl_json_forest_path_integral_backup():
    mdp = rl.forest()
    # Risk-seeking backup: log-E-exp over the transitions, max over actions, T = 0.01.
    got = rl.path_integral_values(mdp, 0.01, discount=0.9, actions="max")
    # The reference is rounded to 2 decimals.
    np.testing.assert_allclose(got.values, FOREST_PATH_INTEGRAL_T001, rtol=0, atol=5e-3)
    # Its T -> 0 limit is the optimistic value, not V*; the expectation form goes to V*.
    lim = rl.path_integral_values(mdp, np.array([1e-6, 0.0]), discount=0.9, actions="max")
    np.testing.assert_allclose(lim.values[1], FOREST_OPTIMISTIC, rtol=0, atol=1e-10)
    np.testing.assert_allclose(lim.values[0], FOREST_OPTIMISTIC, rtol=0, atol=1e-4)
    soft = rl.soft_value_iteration(mdp, 0.0, discount=0.9)
    np.testing.assert_allclose(soft.values, FOREST_V_STAR, rtol=0, atol=1e-10)
    # With the exploration prior (actions="soft") the limit is the same; the approach is
    # slower by T log(1/pi0) / (1 - gamma).
    pis = rl.path_integral_values(mdp, 0.01, discount=0.9)
    assert np.all(pis.values <= np.array(FOREST_OPTIMISTIC) + 1e-12)
    assert np.all(pis.values >= np.array(FOREST_OPTIMISTIC) - 0.01 * np.log(20) / 0.1)


def test_rl_json_soft_bellman_one_step():
    mdp = qs.MDP.from_transitions([[0, 0]], [[1.0, 0.0]])
    for form in ("expectation", "path_integral"):
        got = rl.soft_value_iteration(mdp, 1.0, horizon=1, form=form)
        # Reference without the uniform prior: V = log(e^1 + e^0) = ours + log 2.
        assert got.values[0] + np.log(2) == pytest.approx(SOFT_ONE_STEP_V, abs=5e-5)
        np.testing.assert_allclose(got.policy[0], SOFT_ONE_STEP_POLICY, atol=5e-5)
    np.testing.assert_allclose(
        paths.selected_policy(mdp, 1.0, 1)[0, 0], SOFT_ONE_STEP_POLICY, atol=5e-5
    )


def test_rl_json_maslov():
    mdp = qs.MDP.from_transitions([[0, 0, 0]], [[1.0, 2.0, 3.0]])
    for T, want in MASLOV.items():
        got = float(paths.trajectory_stats(mdp, T, 1, 0).scaled_log_partition) + T * np.log(3)
        assert got == pytest.approx(want, abs=1e-6)
        assert 3.0 <= got + 1e-12 and got <= 3.0 + T * np.log(3) + 1e-12


@pytest.mark.parametrize("seed", range(0, 200, 2))
def test_soft_value_iteration_both_forms(seed):
    mdp, _, H = pb.case(seed)
    exp_ = rl.soft_value_iteration(mdp, TEMPS, horizon=H)
    pin = rl.path_integral_values(mdp, TEMPS, horizon=H)
    vals = rl.finite_horizon_values(mdp, H)
    for i, T in enumerate(TEMPS):
        np.testing.assert_allclose(
            exp_.values[i], brute.soft_values(mdp, T, H, "expectation"), atol=1e-10
        )
        np.testing.assert_allclose(
            pin.values[i], brute.soft_values(mdp, T, H, "path_integral"), atol=1e-10
        )
        # The path-integral form is T log of the population grown from delta_s.
        tot = paths.trajectory_stats(mdp, T, H, np.eye(3)[0]).scaled_log_partition
        assert pin.values[i][0] == pytest.approx(float(tot), abs=1e-10)
        # KL-regularised bound: V* + T H log(min pi0) <= V_T <= V* (expectation form).
        lo = T * H * np.log(mdp.pi0[mdp.pi0 > 0].min())
        fin = np.isfinite(vals.expected)
        assert (exp_.values[i][fin] <= vals.expected[fin] + 1e-10).all()
        assert (exp_.values[i][fin] >= vals.expected[fin] + lo - 1e-10).all()
        if mdp.deterministic:
            np.testing.assert_allclose(exp_.values[i], pin.values[i], rtol=0, atol=1e-10)
    np.testing.assert_allclose(exp_.values[-1], vals.expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pin.values[-1], vals.optimistic, rtol=0, atol=1e-12)
