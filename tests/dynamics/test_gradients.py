"""Gradients through the public dynamics API (issue 15, point 1).

References, each independent of the code under test:
* central finite differences in float64 of the *untraced* public calls (NumPy paths);
* the closed form ``d log rho / dR[s, a, s'] = l_s K[s, a, s'] e^{R/T} r_s' / (T rho l.r)``
  with ``l``, ``r``, ``rho`` from a dense eigensolve of ``W_T`` (tests/reference/dense.py);
* at ``T = 0`` the maximum cycle mean enumerated over simple cycles (networkx), whose
  derivative along its critical cycle is ``1 / length`` per edge.

Finite differences use ``eps = 1e-5``: the truncation error ``eps^2 f'''`` is ~1e-10 and
the rounding error ``1e-16 / eps`` ~1e-11 of ``|f|``, so the 1e-6 relative tolerance the
issue asks for has three orders of margin.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

import quasispecies as qs
from tests.reference import dense as brute

EPS = 1e-5
SEEDS = range(50)


def _stochastic(seed: int, S: int = 5, A: int = 2, forbid: bool = False):
    rng = np.random.default_rng(seed)
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.6)
    for s in range(S):
        P[s, :, (s + 1) % S] += 0.1  # a Hamiltonian cycle: W_T irreducible
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(S, A, S))
    pi0 = rng.random((S, A)) + 0.1
    pi0 /= pi0.sum(axis=1, keepdims=True)
    if forbid:
        R[1, 1, :] = -np.inf  # one action of state 1 is not allowed
        pi0[1] = [1.0, 0.0]
    return P, R, pi0


def _deterministic(seed: int, S: int = 6, A: int = 2):
    rng = np.random.default_rng(seed)
    ns = rng.integers(0, S, size=(S, A))
    ns[:, 0] = (np.arange(S) + 1) % S  # a cycle through every state: irreducible
    return ns, rng.normal(size=(S, A))


def _directional(f, args, direction):
    """Central difference of ``f`` along ``direction`` (a tuple matching ``args``)."""
    plus = [a + EPS * d for a, d in zip(args, direction, strict=True)]
    minus = [a - EPS * d for a, d in zip(args, direction, strict=True)]
    return (float(f(*plus)) - float(f(*minus))) / (2 * EPS)


def _close(a, b, rtol=1e-6, scale=1.0):
    assert abs(a - b) <= rtol * max(abs(b), scale), (a, b)


def _row_direction(rng, pi0):
    """A pi0 direction that keeps each row summing to 1 and stays on the support."""
    v = rng.normal(size=pi0.shape) * (pi0 > 0)
    counts = np.maximum((pi0 > 0).sum(axis=1, keepdims=True), 1)
    return (v - v.sum(axis=1, keepdims=True) / counts) * (pi0 > 0)


# ------------------------------------------------------------ horizon (scan) gradients
@pytest.mark.parametrize("seed", SEEDS)
def test_horizon_gradients_match_finite_differences(seed):
    rng = np.random.default_rng(1000 + seed)
    T = float(rng.uniform(0.2, 1.5))
    c = rng.normal(size=6 if seed % 2 else 5)
    if seed % 2:
        ns, R = _deterministic(seed)
        S = ns.shape[0]
        x0 = rng.dirichlet(np.ones(S))

        def make(R, pi0):
            return qs.MDP.from_transitions(ns, R, pi0)

        pi0 = rng.dirichlet(np.ones(2), size=S)
    else:
        P, R, pi0 = _stochastic(seed, forbid=seed % 4 == 0)
        S = P.shape[0]
        x0 = rng.dirichlet(np.ones(S))

        def make(R, pi0):
            return qs.MDP(P, R, pi0)

    def u(R, pi0, x0, T):
        v = qs.scaled_log_population(make(R, pi0), T, 4, x0)
        return jnp.dot(jnp.asarray(v), c)

    def x(R, pi0, x0, T):
        return jnp.dot(jnp.asarray(qs.evolve(make(R, pi0), T, 4, x0))[-1], c)

    finite = np.isfinite(R)
    dx = rng.normal(size=S)
    direction = (rng.normal(size=R.shape) * finite, _row_direction(rng, pi0), dx - dx.mean(), 1.0)
    Rz = np.where(finite, R, -np.inf)
    for f in (u, x):
        grads = jax.grad(f, argnums=(0, 1, 2, 3))(jnp.asarray(Rz), pi0, x0, T)
        assert not any(np.isnan(np.asarray(g)).any() for g in grads)
        analytic = float(grads[3]) + sum(
            float(np.sum(np.where(d != 0, np.asarray(g) * d, 0.0)))
            for g, d in zip(grads[:3], direction[:3], strict=True)
        )
        _close(analytic, _directional(f, (Rz, pi0, x0, T), direction))


def test_horizon_gradient_full_finite_differences():
    P, R, pi0 = _stochastic(7, S=4)

    def f(R):
        return jnp.sum(jnp.asarray(qs.scaled_log_population(qs.MDP(P, R, pi0), 0.4, 5)))

    g = np.asarray(jax.grad(f)(jnp.asarray(R)))
    for idx in np.ndindex(R.shape):
        e = np.zeros_like(R)
        e[idx] = 1.0
        _close(g[idx], _directional(f, (R,), (e,)), scale=1e-3)
    # every path of H steps carries H rewards, and every state's u_H is a path average
    np.testing.assert_allclose(g.sum(), 5 * 4, rtol=1e-12)


# ------------------------------------------------------------- steady-state gradients
def _closed_form_growth_gradient(P, R, pi0, T):
    W = brute.replication_matrix(P, R, pi0, T)
    rho, l = brute.perron_left(W)
    _, r = brute.perron_left(W.T)
    with np.errstate(over="ignore"):
        F = np.where(np.isfinite(R), np.exp(np.where(np.isfinite(R), R, 0.0) / T), 0.0)
    K = pi0[:, :, None] * P
    return l[:, None, None] * K * F * r[None, None, :] / (T * rho * (l @ r))


@pytest.mark.parametrize("seed", SEEDS)
def test_growth_gradient_is_the_stationary_flux(seed):
    P, R, pi0 = _stochastic(seed, forbid=seed % 3 == 0)
    T = float(np.random.default_rng(seed).uniform(0.3, 2.0))
    g = jax.grad(lambda R: qs.steady_state(qs.MDP(P, R, pi0), T).log_growth)(jnp.asarray(R))
    g = np.asarray(g)
    assert not np.isnan(g).any()
    ref = _closed_form_growth_gradient(P, R, pi0, T)
    np.testing.assert_allclose(g, ref, rtol=1e-8, atol=1e-12)
    assert np.all(g[~np.isfinite(R)] == 0.0)
    # the flux of the selected measure sums to one: d(T log rho)/dR sums to 1
    np.testing.assert_allclose(T * g.sum(), 1.0, rtol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_steady_state_gradients_match_finite_differences(seed):
    rng = np.random.default_rng(2000 + seed)
    T = float(rng.uniform(0.2, 1.5))
    if seed % 2:
        ns, R = _deterministic(seed)
        S = ns.shape[0]
        pi0 = rng.dirichlet(np.ones(2), size=S)

        def make(R, pi0):
            return qs.MDP.from_transitions(ns, R, pi0)
    else:
        P, R, pi0 = _stochastic(seed)
        S = P.shape[0]

        def make(R, pi0):
            return qs.MDP(P, R, pi0)

    c = rng.normal(size=S)
    direction = (rng.normal(size=R.shape), _row_direction(rng, pi0), 1.0)

    def growth(R, pi0, T):
        return qs.steady_state(make(R, pi0), T).scaled_log_growth

    def population(R, pi0, T):
        return jnp.dot(jnp.asarray(qs.steady_state(make(R, pi0), T).population), c)

    for f in (growth, population):
        gR, gp, gT = jax.grad(f, argnums=(0, 1, 2))(jnp.asarray(R), pi0, T)
        analytic = (
            float(np.sum(np.asarray(gR) * direction[0]))
            + float(np.sum(np.asarray(gp) * direction[1]))
            + float(gT)
        )
        _close(analytic, _directional(f, (R, pi0, T), direction), scale=1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_power_path_gradients_equal_the_dense_path(seed):
    P, R, pi0 = _stochastic(seed)
    c = np.random.default_rng(seed).normal(size=P.shape[0])

    def f(R, method):
        res = qs.steady_state(qs.MDP(P, R, pi0), 0.5, method=method)
        return res.log_growth + jnp.dot(jnp.asarray(res.population), c)

    dense = np.asarray(jax.grad(f)(jnp.asarray(R), "dense"))
    power = np.asarray(jax.grad(f)(jnp.asarray(R), "power"))
    np.testing.assert_allclose(power, dense, rtol=1e-7, atol=1e-10)


def test_sparse_iterative_path_at_scale():
    """``S = 3000 > DENSE_STEADY_LIMIT``: the O(S) power/adjoint path, against FD."""
    rng = np.random.default_rng(5)
    S = 3000
    ns = np.stack([(np.arange(S) + 1) % S, rng.integers(0, S, size=S)], axis=1)
    R = rng.normal(size=(S, 2))
    c = rng.normal(size=S)

    def f(R):
        res = qs.steady_state(qs.MDP.from_transitions(ns, R), 1.0)
        return res.scaled_log_growth + jnp.dot(jnp.asarray(res.population), c)

    g = np.asarray(jax.grad(f)(jnp.asarray(R)))
    v = rng.normal(size=R.shape)
    # the iterative solves stop at tol = 1e-13 in the population's l1 norm; FD of a
    # converged iterate carries ~1e-13 / eps = 1e-8 noise, well inside 1e-6
    _close(float(np.sum(g * v)), _directional(f, (R,), (v,)))


def test_hub_graph_takes_the_jax_right_vector():
    """Every state's second action leads to state 0 (in-degree S): the transposed operator
    is not padded into an MDP, the right vector comes from the JAX power iteration."""
    from quasispecies.kernels import transpose

    rng = np.random.default_rng(6)
    S = 2600
    ns = np.stack([(np.arange(S) + 1) % S, np.zeros(S, dtype=int)], axis=1)
    R = rng.normal(size=(S, 2))
    lk = np.log(np.full((S, 2, 1), 0.5))
    assert transpose.transposed_mdp(ns[:, :, None], lk, R[:, :, None], 1.0) is None

    def f(R):
        return qs.steady_state(qs.MDP.from_transitions(ns, R), 1.0).log_growth

    g = np.asarray(jax.grad(f)(jnp.asarray(R)))
    v = rng.normal(size=R.shape)
    _close(float(np.sum(g * v)), _directional(f, (R,), (v,)))
    np.testing.assert_allclose(g.sum(), 1.0, rtol=1e-9)  # T = 1: the flux sums to 1


# ------------------------------------------------------------- low T, T = 0, -inf
def _max_cycle_mean_with_cycle(P, R, pi0):
    G = nx.DiGraph()
    best = {}
    for s, a, t in zip(*np.nonzero((pi0[:, :, None] * P > 0) & np.isfinite(R)), strict=True):
        if (s, t) not in best or R[s, a, t] > R[s, best[s, t], t]:
            best[s, t] = a
    G.add_edges_from(best)
    top, cycle = -np.inf, None
    for cyc in nx.simple_cycles(G):
        edges = list(zip(cyc, cyc[1:] + cyc[:1], strict=True))
        mean = np.mean([R[s, best[s, t], t] for s, t in edges])
        if mean > top:
            top, cycle = mean, [(s, best[s, t], t) for s, t in edges]
    return top, cycle


@pytest.mark.parametrize("seed", range(10))
def test_zero_temperature_subgradient_is_the_critical_cycle(seed):
    P, R, pi0 = _stochastic(seed, S=4)
    top, cycle = _max_cycle_mean_with_cycle(P, R, pi0)
    res = qs.steady_state(qs.MDP(P, jnp.asarray(R), pi0), 0.0)
    np.testing.assert_allclose(float(res.scaled_log_growth), top, rtol=1e-12)
    g = np.asarray(
        jax.grad(lambda R: qs.steady_state(qs.MDP(P, R, pi0), 0.0).scaled_log_growth)(
            jnp.asarray(R)
        )
    )
    ref = np.zeros_like(R)
    for e in cycle:
        ref[e] = 1.0 / len(cycle)
    # the T -> 0+ flux is evaluated at T = 1e-8 times the reward scale; A = T log W is
    # stored T-scaled, so its rounding (1e-16 |A|) is amplified by 1 / T to ~1e-8
    np.testing.assert_allclose(g, ref, atol=1e-7)


@pytest.mark.parametrize("T", [1e-8, 1e-3])
def test_no_nan_at_low_temperature_or_on_forbidden_entries(T):
    P, R, pi0 = _stochastic(3, forbid=True)
    x0 = np.full(P.shape[0], 1.0 / P.shape[0])

    def everything(R, pi0, x0):
        m = qs.MDP(P, R, pi0)
        res = qs.steady_state(m, T)
        u = jnp.asarray(qs.scaled_log_population(m, T, 6, x0))
        x = jnp.asarray(qs.evolve(m, T, 6, x0))
        return res.scaled_log_growth + res.population[0] + jnp.sum(u) + x[-1, 1]

    grads = jax.grad(everything, argnums=(0, 1, 2))(jnp.asarray(R), pi0, x0)
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(grads[0])[~np.isfinite(R)] == 0.0)


# ------------------------------------------------------------------- jit and vmap
def test_jit_and_vmap_agree_with_eager():
    P, R, pi0 = _stochastic(11)
    Ts = jnp.array([0.3, 0.7, 1.4])

    def f(R, T):
        m = qs.MDP(P, R, pi0)
        return qs.steady_state(m, T).log_growth + jnp.sum(
            jnp.asarray(qs.scaled_log_population(m, T, 3))
        )

    eager = np.stack([np.asarray(jax.grad(f)(jnp.asarray(R), float(t))) for t in Ts])
    jitted = np.stack([np.asarray(jax.jit(jax.grad(f))(jnp.asarray(R), t)) for t in Ts])
    vmapped = np.asarray(jax.vmap(jax.grad(f), in_axes=(None, 0))(jnp.asarray(R), Ts))
    np.testing.assert_allclose(jitted, eager, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(vmapped, eager, rtol=1e-12, atol=1e-14)
    jac = jax.jacrev(lambda R: qs.steady_state(qs.MDP(P, R, pi0), 0.5).population)(jnp.asarray(R))
    assert jac.shape == (5, 5, 2, 5)
    np.testing.assert_allclose(np.asarray(jac).sum(axis=0), 0.0, atol=1e-12)  # sum x = 1


def test_traced_values_equal_the_untraced_call():
    P, R, pi0 = _stochastic(4)
    ref = qs.steady_state(qs.MDP(P, R, pi0), [0.2, 0.9])
    got = qs.steady_state(qs.MDP(P, jnp.asarray(R), pi0), jnp.array([0.2, 0.9]))
    np.testing.assert_allclose(np.asarray(got.log_growth), ref.log_growth, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got.population), ref.population, rtol=1e-10)
    u_ref = qs.scaled_log_population(qs.MDP(P, R, pi0), 0.5, 7)
    u = qs.scaled_log_population(qs.MDP(P, jnp.asarray(R), pi0), 0.5, 7)
    np.testing.assert_allclose(np.asarray(u), u_ref, rtol=1e-12)


# ------------------------------------------------------------------------ errors
def test_gradient_of_a_reducible_steady_state_is_refused():
    P = np.zeros((2, 1, 2))
    P[0, 0, 0] = P[1, 0, 1] = 1.0
    with pytest.raises(ValueError, match="reducible"):
        jax.grad(lambda R: qs.steady_state(qs.MDP(P, R), 0.5).log_growth)(jnp.zeros((2, 1, 2)))


def test_traced_shapes_are_still_checked():
    P, R, _ = _stochastic(0)
    with pytest.raises(ValueError, match="R: expected shape"):
        jax.grad(lambda R: qs.steady_state(qs.MDP(P, R), 0.5).log_growth)(jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="layout"):
        jax.grad(lambda R: jnp.sum(qs.scaled_log_population(qs.MDP(P, R), 0.5, 2, layout="pull")))(
            jnp.asarray(R)
        )
    with pytest.raises(ValueError, match="x0: expected length"):
        jax.grad(lambda x: jnp.sum(qs.scaled_log_population(qs.MDP(P, R), 0.5, 2, x)))(
            jnp.ones(3) / 3
        )
