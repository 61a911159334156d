"""qs.paths against brute force: enumeration, and every semiring DP (log, k-best, entropy,
counting, selected policy, marginals) over 240 seeded MDPs x 5 temperatures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import logsumexp

import quasispecies as qs
from quasispecies.paths import core as paths
from tests.reference import dense as brute, paths as pb

TEMPS = np.array(pb.TEMPS)
SEEDS = range(240)


def _lw(lp, G, T):
    return G if T == 0 else lp + G / T


# ----------------------------------------------------------------------- enumeration
@pytest.mark.parametrize("seed", SEEDS)
def test_enumerate_matches_itertools(seed):
    mdp, x0, H = pb.case(seed)
    st_, ac, lp, G = pb.all_paths(mdp, x0, H)
    e = paths.enumerate(mdp, TEMPS, H, x0)
    N = len(G)
    assert e.states.shape == (len(TEMPS), N, H + 1) and e.actions.shape == (len(TEMPS), N, H)
    # Same paths in the same (lexicographic) order.
    np.testing.assert_array_equal(e.states[0], st_)
    np.testing.assert_array_equal(e.actions[0], ac)
    np.testing.assert_allclose(e.log_prior[0], lp, rtol=0, atol=1e-12)
    np.testing.assert_allclose(e.reward[0], G, rtol=0, atol=1e-12)
    for i, T in enumerate(TEMPS):
        # lp + G/T is O(|G| / T): a relative float64 tolerance on that scale.
        np.testing.assert_allclose(e.log_weight[i], _lw(lp, G, T), rtol=1e-12, atol=1e-12)
    assert paths.num_paths(mdp, H, x0) == N
    one = paths.enumerate(mdp, 0.3, H, x0)
    np.testing.assert_array_equal(one.states, st_)
    np.testing.assert_allclose(one.log_weight, e.log_weight[1], rtol=0, atol=0)


@pytest.mark.parametrize("i", range(12))
def test_enumerate_other_shapes(i):
    mdp, x0, H = pb.zoo_case(i)
    st_, ac, lp, G = pb.all_paths(mdp, x0, H)
    e = paths.enumerate(mdp, 1.0, H, x0)
    np.testing.assert_array_equal(e.states, st_)
    np.testing.assert_array_equal(e.actions, ac)
    np.testing.assert_allclose(e.log_weight, lp + G, rtol=1e-12, atol=1e-12)
    assert paths.num_paths(mdp, H, x0) == len(G)


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
        fin = np.isfinite(u[i])
        tot = u[i][fin].max() if T == 0 else T * logsumexp(u[i][fin] / T)
        assert got.scaled_log_partition[i] == pytest.approx(tot, rel=1e-12, abs=1e-12)
        assert got.entropy[i] == pytest.approx(pb.entropy(p), abs=tol)
        assert got.expected_return[i] == pytest.approx(float(p @ G), abs=tol)
        assert got.expected_log_prior[i] == pytest.approx(
            float(p @ lp), abs=tol * (1 + abs(lp).max())
        )
        kl = float(p @ lp) + pb.entropy(p)
        assert got.kl_from_prior[i] == pytest.approx(-kl, abs=tol * (1 + abs(lp).max()))
        if T == 0:
            best = np.abs(G - G.max()) <= 1e-12 * (1 + abs(G.max()))
            assert got.log_multiplicity[i] == pytest.approx(logsumexp(lp[best]), abs=1e-12)


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
            lw = _lw(lp, G, T)
            chosen = [
                index[(tuple(s), tuple(a))]
                for s, a in zip(tk.states[i], tk.actions[i], strict=True)
            ]
            assert len(set(chosen)) == n  # distinct, real paths
            np.testing.assert_allclose(tk.log_weight[i], lw[chosen], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(tk.reward[i], G[chosen], rtol=0, atol=1e-12)
            np.testing.assert_allclose(tk.log_prior[i], lp[chosen], rtol=0, atol=1e-12)
            # Equal to sorting the enumeration: the same values, best first ...
            order = _sorted_paths(lp, G, T)
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


def _sorted_paths(lp, G, T):
    """Sort order of the enumeration, best first. At T = 0: by G, and returns equal up to
    float rounding (relative 1e-12, as semiring.TIE_RTOL) by the prior weight lp: the
    T -> 0+ order of lp + G / T."""
    if T > 0:
        return np.argsort(-(lp + G / T), kind="stable")
    first = np.argsort(-G, kind="stable")
    g = G[first]
    brk = np.concatenate([[True], g[:-1] - g[1:] > 1e-12 * (1 + np.abs(g[:-1]))])
    group = np.cumsum(brk)
    return first[np.lexsort((-lp[first], group))]


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


# ------------------------------------------------------------------ counting semiring
@pytest.mark.parametrize("S,A,H", [(2, 3, 4), (3, 2, 6), (1, 4, 5), (5, 1, 7)])
def test_counting_full_support_is_A_to_the_H(S, A, H):
    mdp = qs.random_mdp(S, A, seed=S * 10 + A)
    assert paths.num_paths(mdp, H, 0) == A**H
    assert paths.num_paths(mdp, H, None) == S * A**H
    # Stochastic, full support: (A S)^H per start state.
    dense = qs.random_mdp(S, A, seed=1, stochastic=True)
    assert paths.num_paths(dense, H, 0) == (A * S) ** H


def test_counting_is_exact_beyond_int64():
    mdp = qs.random_mdp(2, 3, seed=0)
    assert paths.num_paths(mdp, 60, None) == 2 * 3**60  # > 2^63


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


# ------------------------------------------------------------------------ streaming
def test_iter_chunks_concatenate_to_enumerate_and_resume():
    mdp, x0, H = pb.case(5)
    full = paths.enumerate(mdp, 0.7, H, x0)
    N = full.states.shape[0]
    for size in (1, 7, 1000):
        parts = list(paths.iter_chunks(mdp, 0.7, H, x0, chunk_size=size))
        assert all(p.states.shape[0] <= size for p in parts)
        np.testing.assert_array_equal(np.concatenate([p.states for p in parts]), full.states)
        np.testing.assert_array_equal(np.concatenate([p.actions for p in parts]), full.actions)
        np.testing.assert_array_equal(
            np.concatenate([p.log_weight for p in parts]), full.log_weight
        )
    # An interrupted run resumes from the first unfinished index.
    head = list(paths.iter_chunks(mdp, 0.7, H, x0, chunk_size=5, stop=23))
    tail = list(paths.iter_chunks(mdp, 0.7, H, x0, chunk_size=5, start=23))
    both = np.concatenate([p.states for p in head + tail])
    np.testing.assert_array_equal(both, full.states)
    assert sum(p.states.shape[0] for p in head) == min(23, N)


def test_streaming_runs_in_bounded_memory():
    import tracemalloc

    # 4^10 = 1,048,576 paths; enumerate() would hold ~200 MB, the stream ~3 MB at a time.
    mdp = qs.random_mdp(4, 4, seed=2)
    H, T = 10, 0.5
    assert paths.num_paths(mdp, H, 0) == 4**10
    tracemalloc.start()
    acc, n = -np.inf, 0
    for chunk in paths.iter_chunks(mdp, T, H, 0, chunk_size=1 << 14, progress=False):
        acc = np.logaddexp(acc, logsumexp(chunk.log_weight))
        n += chunk.states.shape[0]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 4**10
    assert peak < 20 * 2**20
    want = float(paths.trajectory_stats(mdp, T, H, 0).scaled_log_partition)
    assert T * acc == pytest.approx(want, rel=1e-12)


def test_progress_bar_only_when_asked(capsys):
    mdp, x0, H = pb.case(1)
    paths.enumerate(mdp, 1.0, H, x0, progress=False)
    assert capsys.readouterr().err == ""
    list(paths.iter_chunks(mdp, 1.0, H, x0, chunk_size=4, progress=True))
    assert "path" in capsys.readouterr().err


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
        return paths._stats_kernel(*args, rr, logx0, T, H)[0]

    for T in (1.0, 0.3):  # T is traced: one compilation
        grad = jax.grad(tlogz)(jnp.asarray(r), T)
        grad = np.asarray(grad)
        assert np.isfinite(grad).all()
        p = pb.distribution(lp, G, T)
        want = np.zeros_like(r)
        for t in range(H):
            np.add.at(want, (st_[:, t], ac[:, t], st_[:, t + 1]), p)
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


# ------------------------------------------------------------------------ bad input
def test_bad_input_names_the_argument():
    mdp, x0, _ = pb.case(0)
    for fn in (
        lambda: paths.enumerate(mdp, 1.0, -1, x0),
        lambda: paths.iter_chunks(mdp, 1.0, -1, x0),
        lambda: paths.top_k(mdp, 1.0, -1, 3, x0),
        lambda: paths.trajectory_stats(mdp, 1.0, -1, x0),
        lambda: paths.selected_policy(mdp, 1.0, -1),
        lambda: paths.state_marginals(mdp, 1.0, -1, x0),
        lambda: paths.num_paths(mdp, -1, x0),
    ):
        with pytest.raises(ValueError, match="^horizon"):
            fn()
    for k in (0, -3):
        with pytest.raises(ValueError, match="^k: must be >= 1"):
            paths.top_k(mdp, 1.0, 2, k, x0)
    with pytest.raises(ValueError, match="^k"):
        paths.top_k(mdp, 1.0, 2, 2.5, x0)
    with pytest.raises(ValueError, match="^T"):
        paths.enumerate(mdp, -0.1, 2, x0)
    with pytest.raises(ValueError, match="^x0"):
        paths.enumerate(mdp, 1.0, 2, np.ones(4) / 4)
    with pytest.raises(ValueError, match="^mdp"):
        paths.top_k(brute, 1.0, 2, 1)
    with pytest.raises(ValueError, match="^chunk_size"):
        paths.iter_chunks(mdp, 1.0, 2, x0, chunk_size=0)


def test_refuses_a_result_that_would_not_fit_in_memory():
    mdp = qs.random_mdp(4, 4, seed=0)
    # 4^20 ~ 1e12 paths: tens of TB as arrays; streaming is the way.
    with pytest.raises(ValueError, match=r"^horizon: .*iter_chunks"):
        paths.enumerate(mdp, 1.0, 20, 0)
    with pytest.raises(ValueError, match=r"^horizon: .*max_bytes"):
        paths.enumerate(mdp, 1.0, 5, 0, max_bytes=1000)
    assert paths.enumerate(mdp, 1.0, 5, 0, max_bytes=None).states.shape == (4**5, 6)
    # Beyond 2^62 paths not even a stream is attempted.
    with pytest.raises(ValueError, match="^horizon: .*cannot be enumerated"):
        paths.iter_chunks(mdp, 1.0, 40, 0)
