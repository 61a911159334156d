"""qs.paths.dp against brute force: every semiring DP (log, k-best, entropy, selected
policy, marginals) over 240 seeded MDPs x 5 temperatures, the §1 bounds, gradients."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import quasispecies as qs
from quasispecies import paths
from quasispecies.paths import dp
from tests.reference import paths as pb

TEMPS = np.array(pb.TEMPS)
SEEDS = range(240)


# ------------------------------------------------------------ log + entropy semirings
def _check_stats(mdp, x0, H, Ts):
    _, _, lp, G = pb.all_paths(mdp, x0, H)
    got = paths.trajectory_stats(mdp, Ts, H, x0)
    u = qs.scaled_log_population(mdp, Ts, H, x0)
    for i, T in enumerate(Ts):
        p = pb.distribution(lp, G, T)
        # At T = 1e-8 two paths whose returns agree up to float rounding (1e-16 |G|) get
        # weights that differ by exp(1e-16 |G| / T) ~ 1 + 1e-8 in either computation, so
        # path probabilities (and entropy, E[G]) only agree to ~1e-7 there.
        tol = 1e-6 if 0 < T < 1e-4 else 1e-10
        want = pb.scaled_log_partition(lp, G, T)
        assert got.scaled_log_partition[i] == pytest.approx(want, rel=1e-12, abs=1e-12)
        # The path sum over all end states equals the population kernel's (T log sum n_H).
        tot = pb.scaled_total(u[i], T)
        assert got.scaled_log_partition[i] == pytest.approx(tot, rel=1e-12, abs=1e-12)
        assert got.entropy[i] == pytest.approx(pb.entropy(p), abs=tol)
        assert got.expected_return[i] == pytest.approx(float(p @ G), abs=tol)
        assert got.expected_log_prior[i] == pytest.approx(
            float(p @ lp), abs=tol * (1 + abs(lp).max())
        )
        kl = float(p @ lp) + pb.entropy(p)
        assert got.kl_from_prior[i] == pytest.approx(-kl, abs=tol * (1 + abs(lp).max()))
        if T == 0:
            assert got.log_multiplicity[i] == pytest.approx(pb.log_multiplicity(lp, G), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_and_entropy_semirings_match_enumeration(seed):
    mdp, x0, H = pb.case(seed)
    _check_stats(mdp, x0, H, TEMPS)


@pytest.mark.parametrize("i", range(8))
def test_entropy_semiring_other_shapes(i):
    mdp, x0, H = pb.zoo_case(i)
    _check_stats(mdp, x0, H, TEMPS)


def test_entropy_limits():
    # T -> inf: the exploration process itself; deterministic, uniform pi0, delta x0:
    # every one of the A^H paths equally likely, entropy H log A.
    mdp = qs.random_mdp(4, 3, seed=7)
    st = paths.trajectory_stats(mdp, 1e9, 5, 0)
    assert float(st.entropy) == pytest.approx(5 * np.log(3), abs=1e-7)
    assert float(st.kl_from_prior) == pytest.approx(0.0, abs=1e-7)
    # T = 0 with a unique best path: entropy 0 and E[G] = V+.
    st0 = paths.trajectory_stats(mdp, 0.0, 5, 0)
    assert float(st0.entropy) == pytest.approx(0.0, abs=1e-12)
    assert float(st0.expected_return) == pytest.approx(
        qs.rl.finite_horizon_values(mdp, 5).optimistic[0]
    )


# ------------------------------------------------------------------- k-best semiring
def _check_top_k(mdp, x0, H, Ts, ks):
    st_, ac, lp, G = pb.all_paths(mdp, x0, H)
    index = {(tuple(s), tuple(a)): j for j, (s, a) in enumerate(zip(st_, ac, strict=True))}
    N = len(G)
    for k in ks:
        tk = paths.top_k(mdp, Ts, H, k, x0)
        n = min(k, N)
        assert tk.states.shape == (len(Ts), n, H + 1)
        for i, T in enumerate(Ts):
            lw = pb.log_weight(lp, G, T)
            chosen = [
                index[(tuple(s), tuple(a))]
                for s, a in zip(tk.states[i], tk.actions[i], strict=True)
            ]
            assert len(set(chosen)) == n  # distinct, real paths
            np.testing.assert_allclose(tk.log_weight[i], lw[chosen], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(tk.reward[i], G[chosen], rtol=0, atol=1e-12)
            np.testing.assert_allclose(tk.log_prior[i], lp[chosen], rtol=0, atol=1e-12)
            # Equal to sorting the enumeration: the same values, best first ...
            order = pb.sorted_paths(lp, G, T)
            tol = 1e-12 * (1 + np.abs(lw).max())
            np.testing.assert_allclose(tk.log_weight[i], lw[order[:n]], rtol=0, atol=tol)
            if T == 0:
                np.testing.assert_allclose(tk.log_prior[i], lp[order[:n]], rtol=0, atol=1e-12)
            # ... and no left-out path beats a kept one (at T = 0: by (G, log prior)).
            out = np.setdiff1d(np.arange(N), chosen)
            if out.size and n:
                c = np.array(chosen)
                if T == 0:
                    gtol = 1e-12 * (1 + np.abs(G).max())
                    dG = G[out][:, None] - G[c][None, :]
                    dl = lp[out][:, None] - lp[c][None, :]
                    assert not ((dG > gtol) | ((np.abs(dG) <= gtol) & (dl > 1e-12))).any()
                else:
                    assert lw[out].max() <= lw[c].min() + tol


@pytest.mark.parametrize("seed", SEEDS)
def test_top_k_equals_sorted_enumeration(seed):
    mdp, x0, H = pb.case(seed)
    _check_top_k(mdp, x0, H, TEMPS, ks=(3, 1000))


@pytest.mark.parametrize("i", range(8))
def test_top_k_other_shapes(i):
    mdp, x0, H = pb.zoo_case(i)
    _check_top_k(mdp, x0, H, TEMPS, ks=(3,))


def test_top_k_scalar_and_sweep_agree():
    mdp, x0, H = pb.case(3)
    sweep = paths.top_k(mdp, TEMPS, H, 3, x0)
    for i, T in enumerate(TEMPS):
        one = paths.top_k(mdp, float(T), H, 3, x0)
        np.testing.assert_array_equal(one.states, sweep.states[i])
        np.testing.assert_allclose(one.log_weight, sweep.log_weight[i], rtol=1e-15)


# ----------------------------------------------------- selected policy, marginals
@pytest.mark.parametrize("seed", range(0, 240, 3))
def test_selected_policy_and_marginals_match_enumeration(seed):
    mdp, x0, H = pb.case(seed)
    pi = paths.selected_policy(mdp, TEMPS, H)
    marg = paths.state_marginals(mdp, TEMPS, H, x0)
    for i, T in enumerate(TEMPS):
        want = pb.selected_policy(mdp, T, H)
        tol = 1e-6 if 0 < T < 1e-4 else 1e-10  # see _check_stats on T = 1e-8
        np.testing.assert_allclose(pi[i], want, rtol=0, atol=tol)
        np.testing.assert_allclose(marg[i], pb.state_marginals(mdp, T, H, x0), rtol=0, atol=tol)
    # Row H of the marginals is the normalised population x_H of the dynamics.
    xs = qs.evolve(mdp, TEMPS[:3], H, x0)
    np.testing.assert_allclose(marg[:3, H], xs[:, H], rtol=0, atol=1e-10)


def test_selected_policy_is_soft_optimal_for_deterministic_mdps():
    # pi_T(a|s,t) ∝ pi0 exp(Q_T / T) with Q_T = R + V_T(next): the KL-regularised policy.
    mdp = qs.random_mdp(4, 3, seed=11)
    H, T = 4, 0.4
    pi = paths.selected_policy(mdp, T, H)
    soft = qs.rl.soft_value_iteration(mdp, T, horizon=H)
    np.testing.assert_allclose(pi[0], soft.policy, rtol=0, atol=1e-12)


# --------------------------------------------------------------------- §1 bounds
@settings(max_examples=80, deadline=None, derandomize=True)
@given(seed=st.integers(0, 100_000))
def test_section1_bounds_hold_at_every_temperature(seed):
    mdp, x0, H = pb.case(seed)
    _, _, lp, G = pb.all_paths(mdp, x0, H)
    end = pb.all_paths(mdp, x0, H)[0][:, -1]
    u = qs.scaled_log_population(mdp, TEMPS, H, x0)
    u0 = u[-1]
    stats = paths.trajectory_stats(mdp, TEMPS, H, x0)
    vplus, cstar = stats.scaled_log_partition[-1], stats.log_multiplicity[-1]
    for i, T in enumerate(TEMPS):
        for s in range(mdp.num_states):
            sel = end == s
            if not sel.any():
                assert np.isneginf(u[i][s])
                continue
            best = np.flatnonzero(sel & (G == G[sel].max()))
            logw = lp[best].max()  # the prior weight w* of a best path into s
            tol = 1e-10 * (1 + abs(u0[s]))
            assert u0[s] + T * logw - tol <= u[i][s] <= u0[s] + tol
        # The total: V+ + T c* <= T log Z <= V+ (c* = log prior weight of all best paths).
        tol = 1e-10 * (1 + abs(vplus))
        assert vplus + T * cstar - tol <= stats.scaled_log_partition[i] <= vplus + tol


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 100_000), start=st.integers(0, 2))
def test_deterministic_uniform_bound_T_H_log_A(seed, start):
    # DESIGN §1: uniform pi0, deterministic P, x0 = delta: 0 <= u^0 - u^T <= T H log A.
    mdp = qs.random_mdp(3, 2, seed=seed)
    H = 3
    u = qs.scaled_log_population(mdp, TEMPS, H, start)
    for i, T in enumerate(TEMPS):
        fin = np.isfinite(u[-1])
        gap = u[-1][fin] - u[i][fin]
        assert (gap >= -1e-12).all() and (gap <= T * H * np.log(2) + 1e-12).all()


# ------------------------------------------------------------------- jit / no jit
def test_kernels_with_and_without_jit(jit_mode):
    # Op-by-op execution is slow, so one small stochastic case (S = 2, A = 3, H = 1) at one
    # temperature (the T > 0 and the T = 0 branches are both evaluated at any T).
    mdp, x0, H = pb.zoo_case(7)
    T = 0.3
    _, _, lp, G = pb.all_paths(mdp, x0, H)
    st_ = paths.trajectory_stats(mdp, T, H, x0)
    assert float(st_.entropy) == pytest.approx(pb.entropy(pb.distribution(lp, G, T)), abs=1e-10)
    assert float(st_.scaled_log_partition) == pytest.approx(
        pb.scaled_log_partition(lp, G, T), abs=1e-12
    )
    tk = paths.top_k(mdp, T, H, 3, x0)
    np.testing.assert_allclose(tk.log_weight, np.sort(lp + G / T)[::-1][:3], rtol=1e-12)
    pi = paths.selected_policy(mdp, T, H)
    np.testing.assert_allclose(pi, pb.selected_policy(mdp, T, H), rtol=0, atol=1e-10)


# --------------------------------------------------------- gradients, duplicates
def test_gradient_of_log_partition_is_expected_edge_use():
    # d(T log Z)/dR(s,a,s') = E[number of uses of (s,a,s')]: finite although some
    # transitions are -inf (disallowed), and equal to the enumeration's expectation.
    import jax
    import jax.numpy as jnp

    mdp, x0, H = pb.case(1)  # stochastic, partial support
    ns, lk, r = paths.canonical_arrays(mdp)
    st_, ac, lp, G = pb.all_paths(mdp, x0, H)
    logx0 = jnp.asarray(np.where(x0 > 0, np.log(np.where(x0 > 0, x0, 1.0)), -np.inf))
    args = (jnp.asarray(ns), jnp.asarray(lk))

    def tlogz(rr, T):
        return dp._stats_kernel(*args, rr, logx0, T, H)[0]

    for T in (1.0, 0.3):  # T is traced: one compilation
        grad = jax.grad(tlogz)(jnp.asarray(r), T)
        grad = np.asarray(grad)
        assert np.isfinite(grad).all()
        p = pb.distribution(lp, G, T)
        want = pb.expected_edge_use(st_, ac, p, r.shape)
        np.testing.assert_allclose(grad, want, rtol=0, atol=1e-10)


def test_duplicate_successors_are_one_path():
    # Action 0 of state 0 lists successor 1 twice (probabilities 0.3 + 0.7): one path.
    det = qs.random_mdp(3, 2, seed=4)
    ns = np.concatenate([det.next_state, det.next_state], axis=2)
    prob = np.concatenate([np.full((3, 2, 1), 0.3), np.full((3, 2, 1), 0.7)], axis=2)
    dup = qs.MDP.from_successors(ns, prob, det.R)
    x0, H = np.array([0.2, 0.3, 0.5]), 3
    a, b = paths.enumerate(dup, TEMPS, H, x0), paths.enumerate(det, TEMPS, H, x0)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_allclose(a.log_weight, b.log_weight, rtol=1e-14)
    sa, sb = paths.trajectory_stats(dup, TEMPS, H, x0), paths.trajectory_stats(det, TEMPS, H, x0)
    np.testing.assert_allclose(sa.entropy, sb.entropy, rtol=0, atol=1e-12)
    ta, tb = paths.top_k(dup, TEMPS, H, 3, x0), paths.top_k(det, TEMPS, H, 3, x0)
    np.testing.assert_array_equal(ta.states, tb.states)
    np.testing.assert_allclose(ta.log_weight, tb.log_weight, rtol=1e-14)
    assert paths.num_paths(dup, H, x0) == 3 * 2**H


# ---------------------------------------------------------------- path probability
@pytest.mark.parametrize("seed", range(0, 240, 5))
def test_path_probability_of_top_k_is_the_path_distribution(seed):
    mdp, x0, H = pb.case(seed)
    st_, ac, lp, G = pb.all_paths(mdp, x0, H)
    index = {(tuple(s), tuple(a)): j for j, (s, a) in enumerate(zip(st_, ac, strict=True))}
    for T in TEMPS:
        best = paths.top_k(mdp, float(T), H, 1000, x0)
        got = paths.path_probability(best, paths.trajectory_stats(mdp, float(T), H, x0), T)
        p = pb.distribution(lp, G, T)
        chosen = [
            index[(tuple(s), tuple(a))] for s, a in zip(best.states, best.actions, strict=True)
        ]
        tol = 1e-6 if 0 < T < 1e-4 else 1e-10  # see _check_stats on T = 1e-8
        np.testing.assert_allclose(got, p[chosen], rtol=0, atol=tol)
    with pytest.raises(ValueError, match="^T"):
        paths.path_probability(best, paths.trajectory_stats(mdp, 1.0, H, x0), TEMPS)
