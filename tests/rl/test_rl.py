"""qs.rl against references: rl.json, pymdptoolbox's exact solver, brute-force recursions,
path enumeration; the T -> 0 limit (deterministic: Bellman; stochastic: optimistic)."""

from __future__ import annotations

import json

import mdptoolbox.example
import mdptoolbox.mdp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import logsumexp

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
FOREST_POLICY = [0, 0, 0]
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
        direct = e.reward.max() if T == 0 else T * logsumexp(e.reward / T)
        assert direct == pytest.approx(want, abs=1e-6)
        pi = rl.path_integral_values(mdp, T, horizon=H)
        assert pi.values[0] + T * H * np.log(2) == pytest.approx(want, abs=1e-6)


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


# ------------------------------------------------------------------ finite horizon
def _bellman_brute(mdp, H, discount=1.0):
    """Plain loops over dense arrays; -inf for dead ends (independent of rl.py)."""
    P, R, pi0 = brute.dense_arrays(mdp)
    S, A, _ = P.shape
    V = np.zeros(S)
    for _ in range(H):
        Q = np.full((S, A), -np.inf)
        for s in range(S):
            for a in range(A):
                if pi0[s, a] <= 0 or P[s, a].sum() == 0:
                    continue
                tot = 0.0
                for s2 in range(S):
                    if P[s, a, s2] > 0:
                        if not np.isfinite(R[s, a, s2]) or not np.isfinite(V[s2]):
                            tot = -np.inf
                            break
                        tot += P[s, a, s2] * (R[s, a, s2] + discount * V[s2])
                Q[s, a] = tot
        V = Q.max(axis=1)
    return V


@pytest.mark.parametrize("seed", range(200))
def test_finite_horizon_values_match_brute_force(seed):
    mdp, _, H = pb.case(seed)
    got = rl.finite_horizon_values(mdp, H)
    np.testing.assert_allclose(got.expected, _bellman_brute(mdp, H), rtol=0, atol=1e-12)
    want_opt = np.array([pb.all_paths(mdp, np.eye(3)[s], H)[3].max() for s in range(3)])
    np.testing.assert_allclose(got.optimistic, want_opt, rtol=0, atol=1e-12)
    assert (got.optimistic >= got.expected - 1e-12).all()
    if mdp.deterministic:
        np.testing.assert_allclose(got.optimistic, got.expected, rtol=0, atol=1e-12)


def test_finite_horizon_discounted_and_dead_ends():
    mdp = qs.grid_world(3, 4, walls=[(1, 1)], goal=(0, 3), slip=0.2)
    for g in (1.0, 0.8):
        got = rl.finite_horizon_values(mdp, 4, discount=g)
        np.testing.assert_allclose(got.expected, _bellman_brute(mdp, 4, g), rtol=0, atol=1e-12)
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


# --------------------------------------------------------- the T -> 0 policy limit
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


# ------------------------------------------------------------- soft value iteration
def _soft_brute(mdp, T, H, form):
    P, R, pi0 = brute.dense_arrays(mdp)
    S, A, _ = P.shape
    V = np.zeros(S)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(H):
            Q = np.full((S, A), -np.inf)
            for s in range(S):
                for a in range(A):
                    sup = P[s, a] > 0
                    if pi0[s, a] <= 0 or not sup.any():
                        continue
                    x = R[s, a, sup] + V[sup]
                    if form == "expectation":
                        Q[s, a] = P[s, a, sup] @ x if np.isfinite(x).all() else -np.inf
                    else:
                        Q[s, a] = x.max() if T == 0 else T * logsumexp(x / T, b=P[s, a, sup])
            ok = pi0 > 0
            if T == 0:
                V = np.where(ok, Q, -np.inf).max(axis=1)
            else:
                V = np.array([T * logsumexp(Q[s][ok[s]] / T, b=pi0[s][ok[s]]) for s in range(S)])
    return V


@pytest.mark.parametrize("seed", range(0, 200, 2))
def test_soft_value_iteration_both_forms(seed):
    mdp, _, H = pb.case(seed)
    exp_ = rl.soft_value_iteration(mdp, TEMPS, horizon=H)
    pin = rl.path_integral_values(mdp, TEMPS, horizon=H)
    vals = rl.finite_horizon_values(mdp, H)
    for i, T in enumerate(TEMPS):
        np.testing.assert_allclose(
            exp_.values[i], _soft_brute(mdp, T, H, "expectation"), atol=1e-10
        )
        np.testing.assert_allclose(
            pin.values[i], _soft_brute(mdp, T, H, "path_integral"), atol=1e-10
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


# ----------------------------------------------------- exact discounted optimum
def _value_iteration(mdp, g, n=3000):
    P, R, _ = brute.dense_arrays(mdp)
    Rf = np.where(P > 0, R, 0.0)
    V = np.where(mdp.allowed.any(axis=1), 0.0, -np.inf)
    ok = mdp.allowed
    for _ in range(n):
        dead = ((P > 0) & np.isneginf(V)[None, None, :]).any(axis=2)
        Vf = np.where(np.isfinite(V), V, 0.0)
        Q = (P * (Rf + g * Vf[None, None, :])).sum(axis=2)
        V = np.where(ok & ~dead, Q, -np.inf).max(axis=1)
    return V


@pytest.mark.parametrize("seed", range(30))
def test_policy_iteration_matches_pymdptoolbox_and_long_value_iteration(seed):
    mdp = qs.random_mdp(5, 3, seed=seed, stochastic=True, density=0.6 if seed % 2 else 1.0)
    g = 0.9 if seed % 3 else 0.5
    got = rl.policy_iteration(mdp, g)
    # g^3000 < 1e-137: value iteration this long is exact to float64 rounding.
    np.testing.assert_allclose(got.values, _value_iteration(mdp, g), rtol=0, atol=1e-10)
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
    np.testing.assert_allclose(got.values[fin], _value_iteration(mdp, 0.95, 2000)[fin], atol=1e-10)


def test_horizon_average_tends_to_max_cycle_mean():
    # Deterministic: a best H-walk is a path of < S edges plus cycles of mean <= mu*, so
    # |max_s V*_H(s) / H - mu*| <= 4 S max|R| / H.
    for seed in range(10):
        mdp = qs.random_mdp(6, 2, seed=seed)
        mu = qs.max_cycle_mean(mdp)
        H = 400
        v = rl.finite_horizon_values(mdp, H).expected.max()
        assert abs(v / H - mu) <= 4 * 6 * np.abs(mdp.R).max() / H


# -------------------------------------------------------------------- limit report
def test_limit_report_deterministic():
    mdp = qs.random_mdp(6, 3, seed=2)
    Ts = np.array([1.0, 0.3, 0.1, 0.03, 1e-8, 0.0])
    rep = rl.limit_report(mdp, Ts, horizon=5, start=0)
    mu = qs.max_cycle_mean(mdp)
    assert rep.max_cycle_mean == pytest.approx(mu, abs=1e-12)
    tol = 1e-10
    assert (rep.growth_lower_bound - tol <= rep.scaled_log_growth).all()
    assert (rep.scaled_log_growth <= mu + tol).all()
    assert rep.scaled_log_growth[-1] == pytest.approx(mu, abs=1e-12)
    assert (rep.value_lower_bound - tol <= rep.scaled_log_total).all()
    assert (rep.scaled_log_total <= rep.optimistic_value + tol).all()
    assert (rep.simple_lower_bound <= rep.value_lower_bound + tol).all()
    assert rep.expected_value == pytest.approx(rep.optimistic_value, abs=1e-12)
    np.testing.assert_allclose(rep.gap, 0.0, atol=1e-12)
    assert rep.policy_agreement[-1] == 1.0 and rep.policy_agreement[-2] == 1.0
    assert np.all(np.diff(rep.entropy) <= 1e-9)  # entropy falls as T falls
    doc = json.loads(json.dumps(rep.to_dict()))
    assert doc["cycle"]["mean"] == pytest.approx(mu)
    assert "max cycle mean" in rep.table()


def test_limit_report_forest_shows_the_gap():
    rep = rl.limit_report(rl.forest(), [1.0, 0.1, 0.01, 0.0], horizon=6)
    assert rep.max_cycle_mean == 4.0 and rep.cycle.states.tolist() == [2]
    assert rep.optimistic_value - rep.expected_value > 2.0
    assert rep.scaled_log_total[-1] == pytest.approx(rep.optimistic_value, abs=1e-12)
    assert abs(rep.scaled_log_total[-2] - rep.optimistic_value) < abs(
        rep.scaled_log_total[-2] - rep.expected_value
    )
    assert not rep.deterministic and (rep.gap > 0).any()


# ------------------------------------------------------------------------ bad input
def test_bad_input_names_the_argument():
    mdp = rl.forest()
    with pytest.raises(ValueError, match="^horizon"):
        rl.finite_horizon_values(mdp, -1)
    with pytest.raises(ValueError, match="^horizon"):
        rl.soft_value_iteration(mdp, 1.0, horizon=-2)
    with pytest.raises(ValueError, match="^discount"):
        rl.policy_iteration(mdp, 1.0)
    with pytest.raises(ValueError, match="^discount"):
        rl.soft_value_iteration(mdp, 1.0)  # infinite horizon needs discount < 1
    with pytest.raises(ValueError, match="^discount"):
        rl.finite_horizon_values(mdp, 3, discount=1.5)
    with pytest.raises(ValueError, match="^form"):
        rl.soft_value_iteration(mdp, 1.0, horizon=2, form="bogus")
    with pytest.raises(ValueError, match="^actions"):
        rl.soft_value_iteration(mdp, 1.0, horizon=2, actions="bogus")
    with pytest.raises(ValueError, match="^T"):
        rl.soft_value_iteration(mdp, -1.0, horizon=2)
    with pytest.raises(ValueError, match="^start"):
        rl.limit_report(mdp, [1.0], start=7)
    with pytest.raises(ValueError, match="^temperatures"):
        rl.limit_report(mdp, [-1.0])
    with pytest.raises(ValueError, match="^mdp"):
        rl.finite_horizon_values(np.zeros((2, 2)), 2)
