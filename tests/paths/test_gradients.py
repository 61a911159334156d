"""Gradients through the path DPs (issue 15, point 1): ``trajectory_stats`` (``T log Z``,
entropy, ``E[G]``), ``state_marginals`` and ``selected_policy``.

Reference: every path enumerated by ``itertools`` (tests/reference/dense.py) and the
statistics computed from that list in NumPy; its central finite differences in float64
(``eps = 1e-5``: truncation ``eps^2 f'''`` ~1e-9 at ``T >= 0.3``, rounding
``1e-16 / eps`` ~1e-11, so the relative 1e-6 tolerance holds with margin) along one
random direction in ``(R, pi0, x0, T)`` jointly, on 50 seeded MDPs (stochastic and
deterministic, some with forbidden ``-inf`` transitions and zero ``pi0`` entries).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import quasispecies as qs
from quasispecies import paths
from tests.reference import dense as brute, paths as ref

EPS = 1e-5
S, A, H = 3, 2, 3


def _case(seed: int):
    rng = np.random.default_rng(seed)
    if seed % 2:
        P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.7)
        P[:, :, 0] += 0.05
        P /= P.sum(axis=2, keepdims=True)
    else:
        P = np.eye(S)[rng.integers(0, S, size=(S, A))]  # deterministic
    R = rng.normal(size=(S, A, S))
    pi0 = rng.random((S, A)) + 0.2
    if seed % 3 == 0:
        R[1, 1, :] = -np.inf  # a forbidden action (outside pi0's support, as MDP requires)
        pi0[1, 1] = 0.0
    if seed % 5 == 0:
        pi0[2, 0] = 0.0  # an action outside pi0's support
    pi0 /= pi0.sum(axis=1, keepdims=True)
    x0 = rng.dirichlet(np.ones(S)) + 0.0
    T = float(rng.uniform(0.3, 2.0))
    return P, R, pi0, x0, T


def _reference(P, R, pi0, x0, T, w_marg, w_pol):
    """``[T log Z, entropy, E[G], <w, marginals>, <w, policy>]`` from the enumeration."""
    st, _, lp, G = brute.all_paths(P, R, pi0, x0, H)
    p = ref.distribution(lp, G, T)
    marg = np.zeros((H + 1, S))
    for t in range(H + 1):
        np.add.at(marg[t], st[:, t], p)
    pol = np.zeros((H, S, A))
    for t in range(H):
        for s in range(S):
            _, ac1, lp1, G1 = brute.all_paths(P, R, pi0, np.eye(S)[s], H - t)
            if len(G1):
                np.add.at(pol[t, s], ac1[:, 0], ref.distribution(lp1, G1, T))
    return np.array(
        [
            ref.scaled_log_partition(lp, G, T),
            ref.entropy(p),
            float(p @ G),
            float((w_marg * marg).sum()),
            float((w_pol * pol).sum()),
        ]
    )


def _quantities(P, w_marg, w_pol):
    def f(R, pi0, x0, T):
        mdp = qs.MDP(P, R, pi0)
        st = paths.trajectory_stats(mdp, T, H, x0)
        marg = paths.state_marginals(mdp, T, H, x0)
        pol = paths.selected_policy(mdp, T, H)
        return jnp.stack(
            [
                st.scaled_log_partition,
                st.entropy,
                st.expected_return,
                jnp.sum(w_marg * marg),
                jnp.sum(w_pol * pol),
            ]
        )

    return f


def _weighted_grad(f, c):
    """Gradient of ``<c, f>`` in ``(R, pi0, x0, T)``: one reverse pass per case (random
    ``c`` weights every quantity; the compiled kernels are shared by all cases)."""
    return jax.grad(lambda *a: jnp.dot(c, f(*a)), argnums=(0, 1, 2, 3))


def _direction(rng, R, pi0, x0):
    vR = np.where(np.isfinite(R), rng.normal(size=R.shape), 0.0)
    vpi = np.where(pi0 > 0, rng.normal(size=pi0.shape), 0.0)  # on pi0's support
    vx = rng.normal(size=x0.shape)
    return vR, vpi, vx, float(rng.normal())


@pytest.mark.parametrize("block", range(5))
def test_directional_derivatives_against_enumeration(block):
    for seed in range(10 * block, 10 * block + 10):  # 50 seeded MDPs in all
        P, R, pi0, x0, T = _case(seed)
        rng = np.random.default_rng(100 + seed)
        w_marg, w_pol = rng.normal(size=(H + 1, S)), rng.normal(size=(H, S, A))
        c = rng.normal(size=5)
        f = _quantities(P, w_marg, w_pol)
        gR, gpi, gx, gT = _weighted_grad(f, c)(R, pi0, x0, T)
        vR, vpi, vx, vT = _direction(rng, R, pi0, x0)
        got = float((gR * vR).sum() + (gpi * vpi).sum() + gx @ vx + gT * vT)
        step = (EPS * vR, EPS * vpi, EPS * vx, EPS * vT)
        plus = _reference(
            P, *(a + d for a, d in zip((R, pi0, x0, T), step, strict=True)), w_marg, w_pol
        )
        minus = _reference(
            P, *(a - d for a, d in zip((R, pi0, x0, T), step, strict=True)), w_marg, w_pol
        )
        want = float(c @ (plus - minus)) / (2 * EPS)
        assert np.isfinite(got), seed
        assert abs(got - want) <= 1e-6 * max(abs(want), 1.0), (seed, got, want)
        # and the untraced call gives the reference's values
        np.testing.assert_allclose(
            np.asarray(f(R, pi0, x0, T)), _reference(P, R, pi0, x0, T, w_marg, w_pol), atol=1e-10
        )


def test_full_finite_difference_gradient_in_R():
    P, R, pi0, x0, T = _case(7)
    rng = np.random.default_rng(7)
    w_marg, w_pol = rng.normal(size=(H + 1, S)), rng.normal(size=(H, S, A))
    c = rng.normal(size=5)
    g = np.asarray(_weighted_grad(_quantities(P, w_marg, w_pol), c)(R, pi0, x0, T)[0])
    for idx in np.ndindex(R.shape):
        e = np.zeros_like(R)
        e[idx] = EPS
        fd = (
            (
                _reference(P, R + e, pi0, x0, T, w_marg, w_pol)
                - _reference(P, R - e, pi0, x0, T, w_marg, w_pol)
            )
            @ c
            / (2 * EPS)
        )
        assert abs(g[idx] - fd) <= 1e-6 * max(abs(fd), 1.0), (idx, g[idx], fd)


def test_jit_and_vmap_agree_with_eager():
    P, R, pi0, x0, T = _case(3)
    rng = np.random.default_rng(3)

    def stats(R, pi0, x0, T):  # the entropy-semiring kernel only: one compilation under jit
        st = paths.trajectory_stats(qs.MDP(P, R, pi0), T, H, x0)
        return jnp.stack([st.scaled_log_partition, st.entropy, st.kl_from_prior])

    g = _weighted_grad(stats, rng.normal(size=3))
    eager = g(R, pi0, x0, T)
    jitted = jax.jit(g)(R, pi0, x0, T)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
    Rs = np.stack([R, np.where(np.isfinite(R), R + 0.3, R)])
    batched = jax.vmap(lambda r: g(r, pi0, x0, T)[0])(Rs)
    for i in range(2):
        np.testing.assert_allclose(
            np.asarray(batched[i]), np.asarray(g(Rs[i], pi0, x0, T)[0]), rtol=1e-12, atol=1e-12
        )
    # a temperature sweep under vmap equals the 1-D T argument of the untraced call
    Ts = jnp.array([0.5, 1.0, 1.7])
    sw = jax.vmap(lambda t: paths.entropy(qs.MDP(P, R, pi0), t, H, x0))(Ts)
    want = paths.entropy(qs.MDP(P, R, pi0), [0.5, 1.0, 1.7], H, x0)
    np.testing.assert_allclose(np.asarray(sw), want, rtol=1e-12)


@pytest.mark.parametrize("T", [1e-8, 0.0])
def test_no_nan_at_tiny_temperature_and_forbidden_entries(T):
    for seed in (0, 3, 5, 6):  # forbidden -inf rewards, zero pi0 entries, both
        P, R, pi0, x0, _ = _case(seed)
        g = _weighted_grad(_quantities(P, np.ones((H + 1, S)), np.ones((H, S, A))), np.ones(5))
        for j in g(R, pi0, x0, T):
            assert np.all(np.isfinite(np.asarray(j))), seed


def _log_partition_T0(P, R, pi0, x0):
    return paths.trajectory_stats(qs.MDP(P, R, pi0), 0.0, H, x0).scaled_log_partition


def test_T0_subgradient_is_the_best_path_occupancy():
    """``T log Z = max G`` at ``T = 0``: with one best path the gradient in ``R`` is its
    edge-use count; with ties it is a subgradient (``f(R + v) >= f(R) + <g, v>``) of total
    mass ``H`` on the best paths' edges."""
    hits = 0
    for seed in range(20):
        P, R, pi0, x0, _ = _case(seed)
        st, ac, _, G = brute.all_paths(P, R, pi0, x0, H)
        best = np.flatnonzero(G >= G.max() - 1e-12)
        if len(best) != 1:
            continue
        hits += 1
        g = jax.grad(_log_partition_T0, argnums=1)(P, R, pi0, x0)
        want = ref.expected_edge_use(st[best], ac[best], np.ones(1), R.shape)
        np.testing.assert_allclose(np.asarray(g), want, atol=1e-12)
    assert hits >= 10
    # all rewards equal: every path ties
    P, _, pi0, x0, _ = _case(2)
    R = np.zeros((S, A, S))
    g = np.asarray(jax.grad(_log_partition_T0, argnums=1)(P, R, pi0, x0))
    assert np.all(g >= -1e-12) and abs(g.sum() - H) < 1e-9
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.normal(size=R.shape)
        G = brute.all_paths(P, R + v, pi0, x0, H)[3]
        assert G.max() >= float((g * v).sum()) - 1e-9


def test_traced_refusals_name_the_argument():
    P, R, pi0, x0, T = _case(1)
    with pytest.raises(ValueError, match="x0"):
        jax.grad(lambda x: paths.entropy(qs.MDP(P, R, pi0), T, H, x))(np.ones(S + 1) / (S + 1))
    with pytest.raises(ValueError, match="T"):
        jax.grad(lambda t: paths.entropy(qs.MDP(P, R, pi0), t, H, x0).sum())(jnp.ones((2, 2)))
    ns = np.array([[[1, 1], [2, 0]], [[0, 2], [1, 1]], [[2, 0], [0, 1]]])
    prob = np.full((S, A, 2), 0.5)
    with pytest.raises(ValueError, match="mdp: a successor list repeats"):
        jax.grad(lambda r: paths.entropy(qs.MDP.from_successors(ns, prob, r), T, H, x0))(
            np.zeros((S, A, 2))
        )


def test_enumeration_and_top_k_refuse_traced_rewards():
    P, R, pi0, x0, T = _case(1)
    for fn in (
        lambda m: paths.top_k(m, T, H, 2, x0).log_weight.sum(),
        lambda m: paths.enumerate(m, T, H, x0).log_weight.sum(),
        lambda m: float(paths.num_paths(m, H, x0)),
    ):
        with pytest.raises(ValueError, match="mdp: paths are enumerated"):
            jax.grad(lambda r, fn=fn: fn(qs.MDP(P, r, pi0)))(R)
