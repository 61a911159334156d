"""Maximum cycle mean and the optimal cycle: Karp, dense and sparse Howard, Karp's cycle
recovery and optimal_cycle against networkx.simple_cycles brute force; T log rho -> mu*."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import quasispecies as qs
from quasispecies.kernels import maxplus


def _brute(A):
    """Max mean over the simple cycles (every cycle's mean is a convex combination of
    simple ones); -inf when acyclic."""
    n = A.shape[0]
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from((int(i), int(j)) for i, j in zip(*np.nonzero(np.isfinite(A)), strict=True))
    best = -np.inf
    for c in nx.simple_cycles(G):
        best = max(best, _cycle_mean(A, c))
    return best


def _cycle_mean(A, cyc):
    return float(np.mean([A[cyc[k], cyc[(k + 1) % len(cyc)]] for k in range(len(cyc))]))


def _graph(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    p = float(rng.uniform(0.1, 0.7))
    w = rng.standard_normal((n, n)) * (10.0 if seed % 5 == 0 else 1.0)
    if seed % 7 == 0:
        w = np.round(w)  # integer weights: many exact ties between cycles
    return np.where(rng.random((n, n)) < p, w, -np.inf)


@pytest.mark.parametrize("seed", range(300))
def test_cycle_means_match_simple_cycles(seed):
    A = _graph(seed)
    want = _brute(A)
    n = A.shape[0]
    src, dst = np.nonzero(np.isfinite(A))
    got = {
        "karp": maxplus.karp(A),
        "howard": maxplus.max_plus_eigenvalue(A),
        "howard_sparse": maxplus.max_cycle_mean_sparse(n, src, dst, A[src, dst]),
        "karp_cycle": maxplus.karp_cycle(A)[0],
    }
    for name, v in got.items():
        if np.isneginf(want):
            assert np.isneginf(v), name
        else:
            assert v == pytest.approx(want, abs=1e-12 * (1 + abs(want))), name
    _, cyc = maxplus.karp_cycle(A)
    if np.isfinite(want):
        # A genuine cycle of the graph, attaining the maximum mean.
        assert all(np.isfinite(A[cyc[k], cyc[(k + 1) % len(cyc)]]) for k in range(len(cyc)))
        assert len(set(cyc)) == len(cyc)
        assert _cycle_mean(A, cyc) == pytest.approx(want, abs=1e-12 * (1 + abs(want)))
    else:
        assert cyc == []


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    n=st.integers(1, 6),
    edges=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.floats(-5, 5, allow_nan=False)),
        max_size=20,
    ),
)
def test_howard_sparse_with_parallel_edges(n, edges):
    # Parallel edges: the graph's weight is the best of them.
    edges = [(u % n, v % n, w) for u, v, w in edges]
    A = np.full((n, n), -np.inf)
    for u, v, w in edges:
        A[u, v] = max(A[u, v], w)
    src = np.array([e[0] for e in edges], dtype=int)
    dst = np.array([e[1] for e in edges], dtype=int)
    w = np.array([e[2] for e in edges], dtype=float)
    want = _brute(A)
    got = maxplus.max_cycle_mean_sparse(n, src, dst, w)
    assert (np.isneginf(want) and np.isneginf(got)) or got == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("seed", range(60))
def test_optimal_cycle_of_mdps(seed):
    mdp = qs.random_mdp(
        int(2 + seed % 5), 1 + seed % 3, seed=seed, stochastic=bool(seed % 2), density=0.5
    )
    A = mdp.max_plus_weights()
    mu = qs.max_cycle_mean(mdp)
    assert mu == pytest.approx(_brute(A), abs=1e-12)
    cyc = maxplus.optimal_cycle(mdp)
    assert cyc.mean == pytest.approx(mu, abs=1e-12)
    L = len(cyc.states)
    assert cyc.states[0] == cyc.states.min()  # canonical rotation
    for i in range(L):
        s, a, nxt = cyc.states[i], cyc.actions[i], cyc.states[(i + 1) % L]
        live = np.isfinite(mdp.log_kernel[s, a]) & (mdp.next_state[s, a] == nxt)
        assert live.any()
        b = np.flatnonzero(live & (mdp.reward[s, a] == cyc.rewards[i]))
        assert b.size and cyc.log_kernel[i] == pytest.approx(mdp.log_kernel[s, a, b].max())
    np.testing.assert_allclose(cyc.rewards.mean(), cyc.mean, rtol=0, atol=0)


def test_acyclic_support():
    mdp = qs.MDP.from_transitions([[1], [2], [2]], [[1.0], [2.0], [-np.inf]])
    assert np.isneginf(qs.max_cycle_mean(mdp))
    cyc = maxplus.optimal_cycle(mdp)
    assert np.isneginf(cyc.mean) and cyc.states.size == 0
    assert maxplus.karp_cycle(np.full((3, 3), -np.inf)) == (-np.inf, [])
    with pytest.raises(ValueError, match="^src"):
        maxplus.howard_sparse(2, [0], [1], [1.0])


def test_dense_and_sparse_agree_on_medium_graphs():
    for seed in range(5):
        mdp = qs.random_mdp(300, 3, seed=seed, density=0.7)
        A = mdp.max_plus_weights()
        src, dst, w, _, _ = maxplus.support_edges(mdp)
        dense = maxplus.max_plus_eigenvalue(A)
        assert maxplus.karp(A) == pytest.approx(dense, abs=1e-12)
        assert maxplus.max_cycle_mean_sparse(300, src, dst, w) == pytest.approx(dense, abs=1e-12)


def test_howard_sparse_on_a_large_graph_with_certificate():
    # 10^5 states: no S x S matrix. Certificate: the bias x satisfies
    # w + x[dst] <= mu + x[src] on every edge of each strong component (so no cycle beats
    # mu), and the returned cycle attains mu.
    S = 100_000
    rng = np.random.default_rng(0)
    mdp = qs.MDP.from_transitions(rng.integers(0, S, (S, 2)), rng.standard_normal((S, 2)))
    t0 = time.perf_counter()
    cyc = maxplus.optimal_cycle(mdp)
    elapsed = time.perf_counter() - t0
    mu = cyc.mean
    src, dst, w, _, _ = maxplus.support_edges(mdp)
    edges, nodes = maxplus.cyclic_core(S, src, dst)
    remap = np.full(S, -1)
    remap[nodes] = np.arange(nodes.size)
    eta, x, _ = maxplus.howard_sparse(nodes.size, remap[src[edges]], remap[dst[edges]], w[edges])
    assert eta.max() == pytest.approx(mu, abs=1e-12)
    u, v = remap[src[edges]], remap[dst[edges]]
    same = np.abs(eta[u] - eta[v]) <= 1e-12
    assert (eta[u] >= eta[v] - 1e-12).all()
    slack = w[edges] + x[v] - eta[u] - x[u]
    assert slack[same].max() <= 1e-8  # bias rounding over ~log2(S) doubling sums
    assert elapsed < 30.0


# ------------------------------------------------------------- T log rho -> mu*
@pytest.mark.parametrize("seed", range(12))
def test_scaled_growth_converges_to_max_cycle_mean_within_bounds(seed):
    mdp = qs.random_mdp(5, 2, seed=seed, stochastic=bool(seed % 2), density=0.6)
    cyc = maxplus.optimal_cycle(mdp)
    Ts = np.array([1.0, 0.3, 0.1, 0.03, 0.01])
    growth = qs.steady_state(mdp, Ts).scaled_log_growth
    lower = cyc.mean + Ts * cyc.log_kernel.sum() / len(cyc.states)
    assert (growth <= cyc.mean + 1e-10).all()
    assert (growth >= lower - 1e-10).all()
    # The gap shrinks at least linearly in T.
    assert (cyc.mean - growth <= Ts * (-cyc.log_kernel.sum() / len(cyc.states)) + 1e-10).all()
