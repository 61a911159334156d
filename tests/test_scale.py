"""Fast paths at scale vs the reference paths: pull form vs segment/dense reductions and SciPy.

Moderate sizes (compile time dominates; each distinct MDP structure compiles once).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

import quasispecies as qs
from quasispecies import krylov, pull
from quasispecies.dynamics import PULL_MIN_STATES, _run

TEMPS = np.array([5.0, 1.0, 0.2, 0.03, 1e-3, 1e-8, 0.0])


def _mdp(kind: str, S: int, seed: int, *, sink: bool = False, holes: bool = False):
    """Random sparse MDPs; ``sink`` sends half the edges to state 0 (in-degree > 32: the
    segment-reduction tail); ``holes`` disallows some actions."""
    rng = np.random.default_rng(seed)
    A = 3
    if kind == "det":
        ns = rng.integers(0, S, (S, A))
        if sink:
            ns[:, 0] = 0
        R = rng.standard_normal((S, A))
        if holes:
            R[:, 1:][rng.random((S, A - 1)) < 0.3] = -np.inf
        return qs.MDP.from_transitions(ns, R)
    B = 2
    ns = rng.integers(0, S, (S, A, B))
    if sink:
        ns[:, :, 0] = 0
    prob = rng.dirichlet(np.ones(B), (S, A))
    R = rng.standard_normal((S, A, B))
    pi0 = None
    if holes:
        allowed = rng.random((S, A)) < 0.7
        allowed[:, 0] = True
        pi0 = allowed / allowed.sum(axis=1, keepdims=True)
    return qs.MDP.from_successors(ns, prob, R, pi0)


def _reference(mdp, Ts, steps, x0):
    """The segment-reduction kernel of quasispecies.dynamics, one temperature at a time."""
    arrays = mdp.arrays()
    hist, us = [], []
    for T in Ts:
        h, u = _run(arrays, jnp.asarray(T), jnp.asarray(x0), steps, False, True)
        hist.append(np.asarray(h))
        us.append(np.asarray(u))
    return np.stack(hist), np.stack(us)


CASES = [
    ("det", 257, 1, True, True),
    ("stoch", 200, 2, False, True),
    ("stoch", 150, 3, True, False),
]


@pytest.mark.parametrize(("kind", "S", "seed", "sink", "holes"), CASES)
def test_pull_horizon_matches_segment_kernel(kind, S, seed, sink, holes):
    mdp = _mdp(kind, S, seed, sink=sink, holes=holes)
    rng = np.random.default_rng(seed)
    steps = 12
    for x0 in (np.eye(S)[seed % S], rng.dirichlet(np.ones(S))):
        hist_ref, u_ref = _reference(mdp, TEMPS, steps, x0)
        for kernel in ("auto", "log", "pair"):
            res = pull.horizon(mdp, TEMPS, steps, x0, history=True, kernel=kernel)
            np.testing.assert_array_equal(np.isfinite(res.u), np.isfinite(u_ref))
            fin = np.isfinite(u_ref)
            # u = T log n is O(steps * |R|): absolute float64 tolerance on that scale.
            np.testing.assert_allclose(res.u[fin], u_ref[fin], rtol=0, atol=1e-10)
            # x = softmax(u / T): rounding of u is amplified by 1 / T at T = 1e-8.
            for i, T in enumerate(TEMPS):
                atol = 1e-12 if T == 0 or T > 1e-3 else 1e-13 * steps / T
                np.testing.assert_allclose(res.history[i], hist_ref[i], rtol=0, atol=atol)
                np.testing.assert_allclose(res.x[i], hist_ref[i, -1], rtol=0, atol=atol)
        auto = pull.horizon(mdp, TEMPS, steps, x0, history=True, kernel="auto").kernel
        assert auto[-1] == "pair" and auto[0] == "linear"


def test_linear_guard_falls_back_to_log():
    """At tiny T the weights leave the float64 range: those temperatures rerun in the log
    domain, and the answer still matches the segment kernel."""
    mdp = _mdp("det", 257, 1, sink=True, holes=True)
    x0 = np.full(257, 1 / 257)
    res = pull.horizon(mdp, np.array([1.0, 1e-3]), 30, x0)
    assert list(res.kernel) == ["linear", "log"]
    _, u_ref = _reference(mdp, [1.0, 1e-3], 30, x0)
    np.testing.assert_allclose(res.u, u_ref, rtol=0, atol=1e-10)


def test_pull_matches_scipy_linear_loop():
    """A plain SciPy sparse loop (linear domain, renormalised) is exact at moderate T."""
    mdp = _mdp("stoch", 400, 7)
    S = 400
    lk = mdp.log_kernel
    live = np.isfinite(lk)
    src = np.broadcast_to(np.arange(S)[:, None, None], lk.shape)[live]
    dst = mdp.next_state[live]
    x0 = np.full(S, 1 / S)
    Ts = np.array([0.5, 2.0])
    res = pull.horizon(mdp, Ts, 40, x0)
    for i, T in enumerate(Ts):
        W = sp.csr_matrix((np.exp(lk[live] + mdp.reward[live] / T), (dst, src)), shape=(S, S))
        n, logc = x0.copy(), 0.0
        for _ in range(40):
            n = W @ n
            logc += np.log(n.sum())
            n /= n.sum()
        with np.errstate(divide="ignore"):
            u = np.where(n > 0, T * (np.log(n) + logc), -np.inf)
        fin = np.isfinite(u)
        np.testing.assert_array_equal(np.isfinite(res.u[i]), fin)
        np.testing.assert_allclose(res.u[i][fin], u[fin], rtol=0, atol=1e-10)
        np.testing.assert_allclose(res.x[i], n, rtol=0, atol=1e-14)


def test_public_api_dispatches_large_sparse_to_pull():
    S = PULL_MIN_STATES + 7
    mdp = _mdp("det", S, 11, holes=True)
    Ts = np.array([1.0, 0.0])
    x0 = np.full(S, 1 / S)
    hist_ref, u_ref = _reference(mdp, Ts, 8, x0)
    u = qs.scaled_log_population(mdp, Ts, 8, x0)
    np.testing.assert_array_equal(np.isfinite(u), np.isfinite(u_ref))
    fin = np.isfinite(u_ref)
    np.testing.assert_allclose(u[fin], u_ref[fin], rtol=0, atol=1e-10)
    np.testing.assert_allclose(qs.evolve(mdp, Ts, 8, x0), hist_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        qs.scaled_log_population(mdp, 1.0, 8, x0), u_ref[0], rtol=0, atol=1e-10
    )


def test_dead_lineages_raise_on_the_pull_path():
    S = PULL_MIN_STATES
    ns = np.minimum(np.arange(S) + 1, S - 1)[:, None]
    R = np.zeros((S, 1))
    R[S - 2, 0] = -np.inf  # state S-2 has no allowed action; S-1 loops on itself
    ns[S - 1] = S - 1
    mdp = qs.MDP.from_transitions(ns, R)
    with pytest.raises(ValueError, match="no lineage survives"):
        qs.evolve(mdp, 1.0, S, 0)


def _irreducible(S: int, seed: int, stochastic: bool = False, period: int | None = None):
    """Strongly connected: action 0 walks a ring; with ``period`` the graph is a layered
    ring of that period (no self-loops, every cycle length a multiple of it)."""
    rng = np.random.default_rng(seed)
    A = 3
    ring = (np.arange(S) + 1) % S
    ns = rng.integers(0, S, (S, A))
    ns[:, 0] = ring
    if period is not None:  # S % period == 0: successors lie in the next layer
        layer = np.arange(S) % period
        ns = (ns - ns % period) + ((layer + 1) % period)[:, None]
        ns[:, 0] = ring
    R = rng.random((S, A))
    if not stochastic:
        return qs.MDP.from_transitions(ns, R)
    ns2 = np.stack([ns, np.roll(ns, 1, axis=0)], axis=2)
    return qs.MDP.from_successors(ns2, rng.dirichlet(np.ones(2), (S, A)), R)


@pytest.mark.parametrize("stochastic", [False, True])
def test_sparse_perron_matches_dense_balanced_eig(stochastic):
    mdp = _irreducible(200, 5, stochastic)
    x0 = np.full(200, 1 / 200)
    for T in (2.0, 0.3, 0.05):
        ref = qs.steady_state(mdp, T)  # S <= DENSE_STEADY_LIMIT: balanced dense eig
        assert ref.irreducible
        for method in ("auto", "power", "krylov") if T > 1 else ("auto", "krylov"):
            r = krylov.perron_sparse(mdp, T, x0, method=method)
            assert r.converged, (T, method)
            np.testing.assert_allclose(r.population, ref.population, rtol=0, atol=1e-10)
            assert abs(r.scaled_log_growth - ref.scaled_log_growth) <= 1e-12
        r = krylov.perron_sparse(mdp, T, x0, method="log")
        np.testing.assert_allclose(r.population, ref.population, rtol=0, atol=1e-10)
        assert abs(r.scaled_log_growth - ref.scaled_log_growth) <= 1e-12


def test_krylov_schur_handles_a_periodic_operator():
    """Power iteration cycles on a periodic W; the Ritz value of largest real part is the
    Perron root, so Krylov-Schur (and 'auto', which switches to it) still converges."""
    mdp = _irreducible(240, 9, period=3)
    ref = qs.steady_state(mdp, 0.5)
    x0 = np.full(240, 1 / 240)
    x0[0] += 0.5
    x0 /= x0.sum()
    for method in ("krylov", "auto"):
        r = krylov.perron_sparse(mdp, 0.5, x0, method=method)
        assert r.converged and "Krylov" in r.method
        np.testing.assert_allclose(r.population, ref.population, rtol=0, atol=1e-10)


def test_steady_state_large_sparse_vs_arpack():
    S = 5000
    mdp = _irreducible(S, 3)
    T = 0.7
    res = qs.steady_state(mdp, T)
    assert res.converged and "pull form" in res.method
    lk = mdp.log_kernel[:, :, 0]
    W = sp.csr_matrix(
        (
            np.exp(lk + mdp.reward[:, :, 0] / T).ravel(),
            (np.repeat(np.arange(S), 3), mdp.next_state[:, :, 0].ravel()),
        ),
        shape=(S, S),
    )
    lam, v = sla.eigs(W.T.tocsr(), k=1, which="LR", tol=1e-14, v0=np.ones(S))
    v = np.abs(v[:, 0].real)
    v /= v.sum()
    np.testing.assert_allclose(res.population, v, rtol=0, atol=1e-12)
    assert abs(res.scaled_log_growth - T * np.log(lam[0].real)) <= 1e-12
    assert abs(res.log_growth - np.log(lam[0].real)) <= 1e-12


def test_temperature_sweep_large_sparse_horizon_and_spectrum():
    """Above the dense limit the sweep uses edge-list max-plus spectra and pull kernels."""
    from quasispecies import sweep
    from quasispecies.maxplus import critical_nodes, max_plus_eigenvalue

    S = 2600
    mdp = _mdp("det", S, 4, holes=True)
    Ts = np.array([1.0, 0.1, 0.0])
    out = sweep.temperature_sweep(mdp, Ts, horizon=6, x0=0, progress=False)
    A0 = mdp.max_plus_weights()
    mu = max_plus_eigenvalue(A0)
    assert abs(out["max_cycle_mean"] - mu) <= 1e-12
    np.testing.assert_array_equal(out["critical"], critical_nodes(A0, mu))
    x0 = np.eye(S)[0]
    hist_ref, u_ref = _reference(mdp, Ts, 6, x0)
    np.testing.assert_array_equal(np.isfinite(out["scaled_log_population"]), np.isfinite(u_ref))
    fin = np.isfinite(u_ref)
    np.testing.assert_allclose(out["scaled_log_population"][fin], u_ref[fin], rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["population"], hist_ref[:, -1], rtol=0, atol=1e-12)
    assert sweep.DENSE_STEADY_LIMIT < S


def test_pull_operator_layout_is_a_permutation():
    mdp = _mdp("det", 500, 8, sink=True)
    for parts in (1, 3):
        op = pull.build(mdp, parts)
        assert op.size % parts == 0
        real = op.perm[op.perm >= 0]
        np.testing.assert_array_equal(np.sort(real), np.arange(500))
        np.testing.assert_array_equal(op.perm[op.inv], np.arange(500))
        assert op.n_tail >= 1  # the sink's in-degree exceeds MAX_WIDTH
        # every live edge appears exactly once
        live = sum(int(np.isfinite(np.asarray(lk)).sum()) for lk in op.logk)
        live += int(np.isfinite(np.asarray(op.tail_logk)).sum())
        assert live == int(np.isfinite(mdp.log_kernel).sum())
