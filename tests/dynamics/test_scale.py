"""Fast paths at scale vs the reference paths: pull form vs segment/dense reductions and SciPy.

The pull kernels, the sparse Perron solvers and the sparse sweep are size independent, so
they are checked here at small ``S`` with the sparse paths forced (the size thresholds of
:mod:`quasispecies.dynamics.horizon` and :mod:`quasispecies.dynamics.steady` are monkeypatched down). The
sizes users run (``S`` up to ``10^6``) are exercised by ``benchmarks/bench_scale.py``, which
asserts the same agreement with SciPy (1e-9) at every size.

Compile time dominates: each distinct operator layout compiles each kernel once, so the
tests share two MDPs (module fixtures) and one horizon.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

import quasispecies as qs
from quasispecies.dynamics import horizon, steady, sweep
from quasispecies.dynamics.horizon import run_horizon as _run
from quasispecies.kernels import krylov, pull, pull_layout
from quasispecies.kernels.maxplus import critical_nodes, max_plus_eigenvalue

TEMPS = np.array([5.0, 1.0, 0.2, 0.03, 1e-3, 1e-8, 0.0])
STEPS = 12
S_DET, S_STO = 150, 120


def _mdp(kind: str, S: int, seed: int):
    """Random sparse MDP, strongly connected (action 0 walks a ring) with

    * a sink: action 1 of half the states leads to state 0 (in-degree > 32, so the
      segment-reduction tail of the pull operator is used);
    * holes: some actions disallowed (``R = -inf`` or ``pi0 = 0``);
    * for ``kind="stoch"``, two Dirichlet successors per action; for ``kind="det"``, a
      planted optimal 2-cycle.
    """
    rng = np.random.default_rng(seed)
    A = 3
    ring = (np.arange(S) + 1) % S
    if kind == "det":
        ns = rng.integers(0, S, (S, A))
        ns[:, 0] = ring
        ns[: S // 2, 1] = 0
        R = rng.standard_normal((S, A))
        R[:, 1:][rng.random((S, A - 1)) < 0.3] = -np.inf
        # the optimal cycle: 10 <-> 11 with reward 4 (every other reward is N(0, 1) or
        # -inf, and the best of them is below 3.5), so the max-plus skeleton is 2-periodic
        ns[10, 2], ns[11, 2], R[10, 2], R[11, 2] = 11, 10, 4.0, 4.0
        assert R[np.isfinite(R)].max() == 4.0 and np.sort(R[np.isfinite(R)])[-3] < 3.5
        return qs.MDP.from_transitions(ns, R)
    B = 2
    ns = rng.integers(0, S, (S, A, B))
    ns[:, 0, :] = ring[:, None]
    ns[: S // 2, 1, 0] = 0
    prob = rng.dirichlet(np.ones(B), (S, A))
    R = rng.standard_normal((S, A, B))
    allowed = rng.random((S, A)) < 0.7
    allowed[:, 0] = True
    return qs.MDP.from_successors(ns, prob, R, allowed / allowed.sum(axis=1, keepdims=True))


@pytest.fixture(scope="module")
def det():
    return _mdp("det", S_DET, 1)


@pytest.fixture(scope="module")
def sto():
    return _mdp("stoch", S_STO, 2)


def _reference(mdp, Ts, steps, x0):
    """The segment-reduction kernel of quasispecies.dynamics.horizon, one temperature at a time."""
    arrays = mdp.arrays()
    hist, us = [], []
    for T in Ts:
        h, u = _run(arrays, jnp.asarray(T), jnp.asarray(x0), steps, False, True)
        hist.append(np.asarray(h))
        us.append(np.asarray(u))
    return np.stack(hist), np.stack(us)


def _assert_u_close(u, ref):
    np.testing.assert_array_equal(np.isfinite(u), np.isfinite(ref))
    fin = np.isfinite(ref)
    # u = T log n is O(steps * |R|): absolute float64 tolerance on that scale.
    np.testing.assert_allclose(u[fin], ref[fin], rtol=0, atol=1e-10)


def _x_atol(T: float) -> float:
    # x = softmax(u / T): rounding of u is amplified by 1 / T at T = 1e-8.
    return 1e-12 if T == 0 or T > 1e-3 else 1e-13 * STEPS / T


@pytest.mark.parametrize("kind", ["det", "sto"])
def test_pull_horizon_matches_segment_kernel(kind, request):
    mdp = request.getfixturevalue(kind)
    S = mdp.num_states
    rng = np.random.default_rng(S)
    for x0 in (np.eye(S)[3], rng.dirichlet(np.ones(S))):
        hist_ref, u_ref = _reference(mdp, TEMPS, STEPS, x0)
        for kernel in ("auto", "log", "pair"):
            res = pull.horizon(mdp, TEMPS, STEPS, x0, history=True, kernel=kernel)
            _assert_u_close(res.u, u_ref)
            for i, T in enumerate(TEMPS):
                atol = _x_atol(T)
                np.testing.assert_allclose(res.history[i], hist_ref[i], rtol=0, atol=atol)
                np.testing.assert_allclose(res.x[i], hist_ref[i, -1], rtol=0, atol=atol)
            if kernel == "auto":
                # linear domain where every weight is a normal float64; at T = 1e-3 and
                # 1e-8 the weights e^{(R - R_max)/T} underflow, the guard trips and those
                # temperatures are redone in the log domain (and still match above)
                # (at T = 0.03 either, depending on how small n gets within the horizon)
                k = list(res.kernel)
                assert k[:3] == ["linear"] * 3 and k[4:] == ["log", "log", "pair"], k
                assert k[3] in ("linear", "log")
            else:
                assert set(res.kernel) == {kernel} | ({"pair"} if kernel == "log" else set())


def test_pull_horizon_rejects_unknown_kernel(det):
    with pytest.raises(ValueError, match="kernel"):
        pull.horizon(det, [1.0], STEPS, np.eye(S_DET)[0], kernel="fast")


def test_pull_matches_scipy_linear_loop(sto):
    """A plain SciPy sparse loop (linear domain, renormalised) is exact at moderate T."""
    mdp, S = sto, S_STO
    lk = mdp.log_kernel
    live = np.isfinite(lk)
    src = np.broadcast_to(np.arange(S)[:, None, None], lk.shape)[live]
    dst = mdp.next_state[live]
    x0 = np.full(S, 1 / S)
    Ts = np.array([0.5, 2.0])
    res = pull.horizon(mdp, Ts, STEPS, x0, history=True)
    assert list(res.kernel) == ["linear", "linear"]
    for i, T in enumerate(Ts):
        W = sp.csr_matrix((np.exp(lk[live] + mdp.reward[live] / T), (dst, src)), shape=(S, S))
        n, logc = x0.copy(), 0.0
        for _ in range(STEPS):
            n = W @ n
            logc += np.log(n.sum())
            n /= n.sum()
        with np.errstate(divide="ignore"):
            u = np.where(n > 0, T * (np.log(n) + logc), -np.inf)
        _assert_u_close(res.u[i], u)
        np.testing.assert_allclose(res.x[i], n, rtol=0, atol=1e-14)


def test_public_api_dispatches_large_sparse_to_pull(det, monkeypatch):
    """``evolve`` / ``scaled_log_population`` run in pull form from ``PULL_MIN_STATES`` on."""
    S = S_DET
    Ts = np.array([1.0, 0.0])
    x0 = np.full(S, 1 / S)
    hist_ref, u_ref = _reference(det, Ts, STEPS, x0)
    pull_layout._CACHE.pop(det, None)
    monkeypatch.setattr(horizon, "PULL_MIN_STATES", S + 1)
    qs.evolve(det, 1.0, 1, x0)
    assert not pull.is_cached(det)  # below the threshold: segment reductions
    monkeypatch.setattr(horizon, "PULL_MIN_STATES", S)
    u = qs.scaled_log_population(det, Ts, STEPS, x0)
    assert pull.is_cached(det)  # at the threshold: the pull operator was built and used
    _assert_u_close(u, u_ref)
    np.testing.assert_allclose(qs.evolve(det, Ts, STEPS, x0), hist_ref, rtol=0, atol=1e-12)
    _assert_u_close(qs.scaled_log_population(det, 1.0, STEPS, x0), u_ref[0])


def test_dead_lineages_raise_on_the_pull_path(monkeypatch):
    S = 40
    monkeypatch.setattr(horizon, "PULL_MIN_STATES", S)
    ns = np.minimum(np.arange(S) + 1, S - 1)[:, None]
    R = np.zeros((S, 1))
    R[S - 2, 0] = -np.inf  # state S-2 has no allowed action; S-1 loops on itself
    mdp = qs.MDP.from_transitions(ns, R)
    with pytest.raises(ValueError, match="no lineage survives"):
        qs.evolve(mdp, 1.0, S, 0)
    assert pull.is_cached(mdp)


# ------------------------------------------------------------------ steady state
def _periodic(S: int, seed: int, period: int):
    """Strongly connected layered ring: every edge goes to the next of ``period`` layers,
    so every cycle length is a multiple of ``period`` and ``W_T`` has ``period``
    eigenvalues of modulus ``rho`` (``rho e^{2 pi i k / period}``)."""
    rng = np.random.default_rng(seed)
    A = 3
    layer = np.arange(S) % period
    ns = rng.integers(0, S, (S, A))
    ns = (ns - ns % period) + ((layer + 1) % period)[:, None]
    ns[:, 0] = (np.arange(S) + 1) % S
    return qs.MDP.from_transitions(ns, rng.random((S, A)))


@pytest.mark.parametrize("kind", ["det", "sto"])
def test_sparse_perron_matches_dense_balanced_eig(kind, request):
    mdp = request.getfixturevalue(kind)
    S = mdp.num_states
    x0 = np.full(S, 1 / S)
    for T in (2.0, 0.3, 0.05):
        ref = qs.steady_state(mdp, T)  # S <= DENSE_STEADY_LIMIT: balanced dense eig
        assert ref.irreducible and ref.method == "balanced dense eig"
        for method in ("auto", "krylov", "log"):
            r = krylov.perron_sparse(mdp, T, x0, method=method)
            assert r.converged, (T, method, r.method)
            # the Perron vector has entries down to ~1e-30 at T = 0.05: absolute L_inf
            np.testing.assert_allclose(r.population, ref.population, rtol=0, atol=1e-10)
            assert abs(r.scaled_log_growth - ref.scaled_log_growth) <= 1e-12
        r = krylov.perron_sparse(mdp, T, x0, method="power")
        if r.converged:
            np.testing.assert_allclose(r.population, ref.population, rtol=0, atol=1e-10)
        else:  # only where power iteration cannot converge: see the near-periodic test
            assert "near-periodic" in r.method and r.convergence_factor > 0.999, r


def test_power_iteration_reports_a_near_periodic_spectrum(det):
    """Why plain power iteration fails at low T, and that it says so.

    As ``T -> 0``, ``W_T`` tends to its max-plus skeleton. The optimal cycle of ``det``
    has length 2, so ``W_T`` has an eigenvalue ``-rho (1 - O(e^{-gap/T}))``: power
    iteration's contraction factor ``|lambda_2| / rho`` is within ``1e-5`` of 1 at
    ``T = 0.05`` and the iterate oscillates between the two states of the cycle for
    millions of steps. ``method="power"`` must stop early and report ``converged=False``
    (with the measured factor); ``"auto"`` hands over to Krylov-Schur and converges.
    """
    T = 0.05
    crit = np.flatnonzero(critical_nodes(det.max_plus_weights(), qs.max_cycle_mean(det)))
    assert len(crit) == 2  # the premise: a critical 2-cycle
    ref = qs.steady_state(det, T)
    lam = np.linalg.eigvals(np.exp(_log_w(det, T)))
    i = np.argmax(lam.real)  # the Perron root
    rho, rest = lam[i].real, np.delete(lam, i)
    lam2 = rest[np.argmax(np.abs(rest))]
    factor = abs(lam2) / rho
    assert lam2.real < 0 and 1 - factor < 1e-5, (lam2, rho)
    x0 = np.full(S_DET, 1 / S_DET)
    r = krylov.perron_sparse(det, T, x0, method="power")
    assert not r.converged and r.residual > 1e-6
    assert r.iterations < 1000  # stopped as soon as the measured factor was hopeless
    assert abs(r.convergence_factor - factor) < 1e-6, (r.convergence_factor, factor)
    assert "near-periodic" in r.method
    r = krylov.perron_sparse(det, T, x0, method="auto")
    assert r.converged and "Krylov" in r.method
    np.testing.assert_allclose(r.population, ref.population, rtol=0, atol=1e-10)


def _log_w(mdp, T):
    """Dense ``log W_T`` (for the small reference eigenvalue computations)."""
    S = mdp.num_states
    lk = mdp.log_kernel
    live = np.isfinite(lk)
    src = np.broadcast_to(np.arange(S)[:, None, None], lk.shape)[live]
    W = np.zeros((S, S))
    np.add.at(W, (src, mdp.next_state[live]), np.exp(lk[live] + mdp.reward[live] / T))
    with np.errstate(divide="ignore"):
        return np.log(W)


def test_krylov_schur_handles_a_periodic_operator():
    """Power iteration cycles on a periodic W; the Ritz value of largest real part is the
    Perron root, so Krylov-Schur (and 'auto', which switches to it) still converges."""
    mdp = _periodic(90, 9, period=3)
    ref = qs.steady_state(mdp, 0.5)
    x0 = np.full(90, 1 / 90)
    x0[0] += 0.5
    x0 /= x0.sum()
    for method in ("krylov", "auto"):
        r = krylov.perron_sparse(mdp, 0.5, x0, method=method)
        assert r.converged and "Krylov" in r.method
        np.testing.assert_allclose(r.population, ref.population, rtol=0, atol=1e-10)
    r = krylov.perron_sparse(mdp, 0.5, x0, method="power")
    assert not r.converged and r.convergence_factor > 0.999


def test_perron_sparse_rejects_bad_arguments(det):
    x0 = np.full(S_DET, 1 / S_DET)
    with pytest.raises(ValueError, match="method"):
        krylov.perron_sparse(det, 1.0, x0, method="arpack")
    with pytest.raises(ValueError, match="T"):
        krylov.perron_sparse(det, 0.0, x0)


def test_steady_state_large_sparse_vs_arpack(det, monkeypatch):
    """Above DENSE_STEADY_LIMIT, ``qs.steady_state`` runs the pull-form solver; it agrees
    with ARPACK on the same operator."""
    monkeypatch.setattr(steady, "DENSE_STEADY_LIMIT", S_DET - 1)
    S = S_DET
    for T in (0.7, 0.05):
        res = qs.steady_state(det, T)
        assert res.converged and "pull form" in res.method
        W = sp.csr_matrix(np.exp(_log_w(det, T)))
        lam, v = sla.eigs(W.T.tocsr(), k=1, which="LR", tol=1e-14, v0=np.ones(S))
        v = np.abs(v[:, 0].real)
        v /= v.sum()
        np.testing.assert_allclose(res.population, v, rtol=0, atol=1e-12)
        assert abs(res.scaled_log_growth - T * np.log(lam[0].real)) <= 1e-12
        assert abs(res.log_growth - np.log(lam[0].real)) <= 1e-10 / T


def test_temperature_sweep_large_sparse_horizon_and_spectrum(det, monkeypatch):
    """Above the dense limit the sweep uses edge-list max-plus spectra and pull kernels."""
    monkeypatch.setattr(steady, "DENSE_STEADY_LIMIT", S_DET - 1)
    monkeypatch.setattr(horizon, "PULL_MIN_STATES", S_DET)
    Ts = np.array([1.0, 0.1, 0.0])
    out = sweep.temperature_sweep(det, Ts, horizon=STEPS, x0=3, progress=False)
    A0 = det.max_plus_weights()
    mu = max_plus_eigenvalue(A0)
    assert abs(out["max_cycle_mean"] - mu) <= 1e-12
    np.testing.assert_array_equal(out["critical"], critical_nodes(A0, mu))
    hist_ref, u_ref = _reference(det, Ts, STEPS, np.eye(S_DET)[3])
    _assert_u_close(out["scaled_log_population"], u_ref)
    np.testing.assert_allclose(out["population"], hist_ref[:, -1], rtol=0, atol=1e-12)


def test_pull_operator_layout_is_a_permutation(sto):
    for parts in (1, 3):
        op = pull.build(sto, parts)
        assert op.size % parts == 0
        real = op.perm[op.perm >= 0]
        np.testing.assert_array_equal(np.sort(real), np.arange(S_STO))
        np.testing.assert_array_equal(op.perm[op.inv], np.arange(S_STO))
        assert op.n_tail >= 1  # the sink's in-degree exceeds MAX_WIDTH
        # every live edge appears exactly once
        live = sum(int(np.isfinite(np.asarray(lk)).sum()) for lk in op.logk)
        live += int(np.isfinite(np.asarray(op.tail_logk)).sum())
        assert live == int(np.isfinite(sto.log_kernel).sum())
