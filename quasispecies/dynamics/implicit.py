r"""Gradients of the steady state by implicit differentiation (``jax.custom_vjp``).

The quasispecies is the left Perron vector of ``W_T`` (``l W = rho l``, ``sum l = 1``)
with right vector ``r`` (``W r = rho r``). Its derivatives need no backpropagation
through the solver's iterations, only the two vectors and, for the population, one
linear solve (memory ``O(S)`` on the iterative path):

* growth: ``d log rho / d log W_e = l_i W_e r_j / (rho l.r)`` for a transition ``e``
  from ``i`` to ``j`` -- the *stationary flux* of the selected measure, which sums to 1.
  So ``d(T log rho) / dR_e`` is that flux (selection's own policy gradient) and
  ``d log rho / dR_e`` is the flux over ``T``;
* population: for a cotangent ``xbar``, ``xbar . dl = -l dW z`` where
  ``(W - rho I) z = xbar - (xbar . l) 1`` and ``l . z = 0`` (a bordered solve on the
  max-plus-balanced dense matrix of :mod:`quasispecies.kernels.perron`, or, on the
  iterative path, a Neumann series of the Doob transform ``M = R^-1 W R / rho``, a
  stochastic matrix, made lazy so a periodic graph converges).

``log W_e = log pi0 + log P + R_e / T``, so the cotangents reach ``R``, ``pi0`` (on its
support) and ``T``. At ``T = 0`` ``scaled_log_growth`` is the maximum cycle mean, whose
subgradient is the ``T -> 0+`` flux (uniform over the critical cycles, shared by kernel
weight); the population and ``log_growth`` are treated as locally constant there. The
steady state of an irreducible ``W_T`` does not depend on ``x0`` (zero gradient);
a reducible ``W_T`` is refused, as it has no unique Perron vector to differentiate.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from quasispecies.kernels.maxplus import max_plus_eigenvalue, strong_components
from quasispecies.kernels.perron import balance, perron_vector
from quasispecies.kernels.transpose import transposed_mdp
from quasispecies.model.validate import is_traced
from quasispecies.semiring import host
from quasispecies.semiring.core import (
    at_temperature,
    lse,
    normalise_pair,
    reduce_pair,
    safe_temperature,
    softmax_pair,
)

__all__ = ["check_irreducible", "edge_temperature", "perron", "right_power_iteration"]


def check_irreducible(next_state, prob, pi0) -> None:
    """``ValueError`` unless the support graph of ``K = pi0 P`` is strongly connected
    (concrete arrays; ``-inf`` rewards can only remove edges, which the solve then checks)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    ns = np.asarray(next_state)
    live = (np.asarray(pi0)[:, :, None] * np.asarray(prob)) > 0
    S = ns.shape[0]
    src = np.broadcast_to(np.arange(S)[:, None, None], ns.shape)[live]
    graph = csr_matrix((np.ones(src.size), (src, ns[live])), shape=(S, S))
    if connected_components(graph, directed=True, connection="strong")[0] != 1:
        raise ValueError(_REDUCIBLE)


_REDUCIBLE = (
    "mdp: W_T is reducible (its support graph is not strongly connected), so its Perron "
    "vector is not unique and has no derivative: gradients of steady_state need an "
    "irreducible W_T"
)


# --------------------------------------------------------------------- dense (host)
def _live_edges(ns, lk):
    S = lk.shape[0]
    live = np.isfinite(lk)
    src = np.broadcast_to(np.arange(S)[:, None, None], lk.shape)
    return live, src, S


def edge_temperature(T: float, reward, live) -> float:
    """``T``, or at ``T = 0`` the evaluation temperature of the iterative solvers:
    ``1e-8`` times the largest ``|reward|`` over the ``live`` transitions (at least 1)."""
    scale = float(np.max(np.abs(reward[live]), initial=0.0))
    return T if T > 0 else 1e-8 * max(1.0, scale)


def _dense_matrices(ns, lk, r, T):
    live, src, S = _live_edges(ns, lk)
    seg = src[live] * S + ns[live]
    A0 = np.full(S * S, -np.inf)
    np.maximum.at(A0, seg, r[live])
    Te = edge_temperature(T, r, live)
    A = Te * host.segment_lse(lk[live] + r[live] / Te, seg, S * S)
    return A0.reshape(S, S), A.reshape(S, S), Te


def _dense_forward(ns, prob, reward, pi0, T):
    """Host: the balanced dense solve, both Perron vectors (NumPy, float64)."""
    ns, lk, r = _host_arrays(ns, prob, reward, pi0)
    T = float(T)
    A0, A, Te = _dense_matrices(ns, lk, r, T)
    if strong_components(A)[0] != 1:  # -inf rewards of a traced R can cut edges
        raise ValueError(_REDUCIBLE)
    mu, phi, B = balance(A, np.zeros_like(A), Te)
    phi = phi - phi.max()
    rho_B, y, resid = perron_vector(B, "left")
    _, q, _ = perron_vector(B, "right")
    with np.errstate(divide="ignore"):
        logx = np.log(y) + phi / Te
    logN = float(host.lse(logx))
    x = np.exp(logx - logN)
    log_rho_B = float(np.log(rho_B))
    if T > 0:
        log_growth, scaled = mu / T + log_rho_B, mu + T * log_rho_B
    else:
        scaled = max_plus_eigenvalue(A0)
        log_growth = log_rho_B if scaled == 0 else float(np.sign(scaled) * np.inf)
    stats = np.array([0.0, 1.0, resid])
    Te, mu = np.float64(Te), np.float64(mu)
    return x, np.float64(log_growth), np.float64(scaled), stats, y, q, phi, Te, mu


def _host_arrays(ns, prob, reward, pi0):
    """NumPy ``(next_state, log K, reward)`` by the MDP's own rule (:attr:`MDP.log_kernel`)."""
    mdp = _mdp_from(*(np.asarray(a) for a in (ns, prob, reward, pi0)), dense=False)
    lk = mdp.log_kernel
    return mdp.next_state, lk, np.where(np.isfinite(lk), mdp.reward, 0.0)


def _dense_edges(ns, prob, reward, pi0, x, y, q, phi, Te, mu, xbar):
    """Host: per-transition flux and population terms ``(flux_e, pop_e)``, ``(S, A, B)``,
    from the forward solve's balancing ``(phi, mu)`` and Perron vectors ``(y, q)``."""
    ns, lk, r = _host_arrays(ns, prob, reward, pi0)
    x, y, q, phi = (np.asarray(a, dtype=float) for a in (x, y, q, phi))
    live, src, S = _live_edges(ns, lk)
    Te, mu = float(Te), float(mu)
    _, A, _ = _dense_matrices(ns, lk, r, Te)
    with np.errstate(over="ignore", invalid="ignore"):
        B = np.where(np.isfinite(A), np.exp((phi[:, None] + A - mu - phi[None, :]) / Te), 0.0)
        log_beta = np.where(live, (phi[src] + r - mu - phi[ns]) / Te + lk, -np.inf)
    beta = np.exp(log_beta)
    rho_B = float((y @ B).sum())
    flux = y[src] * beta * q[ns] / (rho_B * float(y @ q))
    pop = np.zeros_like(flux)
    xbar = np.asarray(xbar, dtype=float)
    if np.any(xbar != 0):
        b = xbar - float(xbar @ x)
        N = float(np.exp(host.lse(np.log(np.where(y > 0, y, 1.0)) + phi / Te, axis=None)))
        M = np.zeros((S + 1, S + 1))
        M[:S, :S] = B - rho_B * np.eye(S)
        M[:S, S] = q
        M[S, :S] = y
        rhs = np.concatenate([np.exp(phi / Te) * b, [0.0]])
        zeta = scipy.linalg.solve(M, rhs)[:S]
        pop = y[src] * beta * zeta[ns] / N
    return np.where(live, flux, 0.0), np.where(live, pop, 0.0)


# ------------------------------------------------------------ iterative (host solve)
def _mdp_from(ns, prob, reward, pi0, dense: bool):
    from quasispecies.model.mdp import MDP

    S, A, _ = np.shape(prob)
    return MDP.tree_unflatten((S, A, dense, np.shape(reward)), (ns, prob, reward, pi0))


def _iterative_forward(ns, prob, reward, pi0, T, x0, *, solver, tol, max_iter, right=True):
    """Host: the same iterative solve as the untraced call for ``l``, then (``right``) ``r``
    from the transposed operator (or a JAX power iteration for a hub-heavy graph)."""
    from quasispecies.dynamics.steady import _steady_one

    ns, prob, reward, pi0, x0 = (np.asarray(a) for a in (ns, prob, reward, pi0, x0))
    T = float(T)
    method, dense = solver.split("-")
    mdp = _mdp_from(ns, prob, reward, pi0, dense == "dense")
    left = _steady_one(mdp, T, x0, tol, max_iter, method)
    hns, lk, r = _host_arrays(ns, prob, reward, pi0)
    Te = edge_temperature(T, r, np.isfinite(lk))
    back = transposed_mdp(hns, lk, r, Te) if right else None
    if not right:
        q = np.zeros(len(x0))
    elif back is not None:
        q = np.asarray(_steady_one(back, Te, None, tol, max_iter, method).population)
    else:
        arrays = (jnp.asarray(hns), jnp.asarray(lk), jnp.asarray(r))
        q = np.asarray(right_power_iteration(arrays, jnp.asarray(Te), tol, max_iter)[0])
    stats = np.array([left.iterations, float(left.converged), left.residual], dtype=float)
    return (
        np.asarray(left.population, dtype=float),
        np.float64(left.log_growth),
        np.float64(left.scaled_log_growth),
        stats,
        q,
        np.float64(Te),
    )


# ----------------------------------------------------------------- iterative (JAX)
@partial(jax.jit, static_argnames=("max_iter",))
def right_power_iteration(arrays, T, tol, max_iter: int):
    r"""Right Perron vector ``W_T r = rho r`` (``sum r = 1``) by shifted power iteration
    in the log domain, ``T > 0``: a gather over each state's successors (any layout)."""
    ns, lk, rew = arrays
    S = lk.shape[0]

    def back(v):
        U = (rew + v[ns]).reshape(S, -1)
        return reduce_pair(U, lk.reshape(S, -1), T, axis=1)

    def cond(state):
        it, _, delta = state
        return (it < max_iter) & (delta > tol)

    def body(state):
        it, v, _ = state
        p = back(v)
        g = reduce_pair(p.u, p.c, T, axis=0)
        gu = jnp.where(jnp.isfinite(g.u), g.u, 0.0)
        s = reduce_pair(jnp.stack([p.u, v + gu]), jnp.stack([p.c, jnp.zeros_like(v)]), T, axis=0)
        nv, _, _ = normalise_pair(s.u, s.c, T)
        zero = jnp.zeros_like(v)
        delta = jnp.sum(jnp.abs(softmax_pair(nv, zero, T) - softmax_pair(v, zero, T)))
        return it + 1, nv, delta

    v0 = jnp.zeros(S, rew.dtype)
    start = (jnp.zeros((), jnp.int32), v0, jnp.asarray(jnp.inf, rew.dtype))
    it, v, _ = jax.lax.while_loop(cond, body, start)
    return softmax_pair(v, jnp.zeros_like(v), T, axis=0), it


@partial(jax.jit, static_argnames=("max_iter",))
def _power_edges(arrays, x, q, g, Te, xbar, tol, max_iter: int):
    """Per-transition flux and population terms on the iterative path (``O(S)`` memory)."""
    ns, lk, rew = arrays
    S = lk.shape[0]
    live = jnp.isfinite(lk)
    src = jnp.broadcast_to(jnp.arange(S)[:, None, None], lk.shape)
    logx = jnp.log(x)
    logq = jnp.log(q)
    log_xq = lse(logx + logq, axis=0)
    log_flux = jnp.where(live, logx[src] + lk + (rew - g) / Te + logq[ns] - log_xq, -jnp.inf)
    flux = jnp.exp(log_flux)
    # Doob transform M_ij = W_ij r_j / (rho r_i): a stochastic matrix on the states with r > 0.
    log_m = jnp.where(live, lk + (rew - g) / Te + logq[ns] - logq[src], -jnp.inf)
    m = jnp.exp(jnp.where(q[src] > 0, log_m, -jnp.inf))
    r_hat = q * jnp.exp(-log_xq)
    b = xbar - jnp.dot(xbar, x)
    rhs = jnp.where(r_hat > 0, b / jnp.where(r_hat > 0, r_hat, 1.0), 0.0)

    def lazy(w):  # (M + I) / 2
        return 0.5 * (jnp.sum(m * w[ns], axis=(1, 2)) + w)

    def cond(state):
        it, _, term = state
        return (it < max_iter) & (jnp.max(jnp.abs(term)) > tol * (1.0 + jnp.max(jnp.abs(rhs))))

    def body(state):
        it, acc, term = state
        return it + 1, acc + term, lazy(term)

    _, acc, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), jnp.zeros(S), rhs))
    w = -0.5 * acc
    pi = x * r_hat
    w = w - jnp.dot(pi, w) / jnp.sum(pi)
    return flux, flux * w[ns]


# ------------------------------------------------------------------ the custom VJP
def _shape(S, dtype):
    return jax.ShapeDtypeStruct((S,), dtype)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def perron(solver, tol, max_iter, ns, prob, reward, pi0, T, x0):
    """``(population, log_growth, scaled_log_growth, stats)`` of the steady state, with
    implicit gradients. ``solver``: ``"dense"`` or ``"<method>-<layout>"``; ``stats`` is
    ``(iterations, converged, residual)``. Without a gradient only the left vector is solved."""
    return _perron_fwd(solver, tol, max_iter, ns, prob, reward, pi0, T, x0, right=False)[0]


def _on_host(fn, shapes, *args):
    """``fn(*args)`` on the host. With concrete arguments (eager ``jax.grad``) it is called
    directly; traced (``jit``/``vmap``) through :func:`jax.pure_callback`, so ``fn`` must
    then be NumPy-only: a JAX call inside a callback can deadlock XLA's CPU executor."""
    if not is_traced(*args):
        return tuple(jnp.asarray(o) for o in fn(*args))
    return jax.pure_callback(fn, shapes, *args, vmap_method="sequential")


def _perron_fwd(solver, tol, max_iter, ns, prob, reward, pi0, T, x0, right=True):
    S = reward.shape[0]
    dt = reward.dtype
    scalar = jax.ShapeDtypeStruct((), dt)
    stats_shape = jax.ShapeDtypeStruct((3,), dt)
    if solver == "dense":
        shapes = (_shape(S, dt), scalar, scalar, stats_shape, *(_shape(S, dt),) * 3, scalar, scalar)
        x, log_growth, scaled, stats, y, q, phi, Te, mu = _on_host(
            _dense_forward, shapes, ns, prob, reward, pi0, T
        )
        res = (ns, prob, reward, pi0, T, log_growth, x, y, q, phi, Te, mu)
        return (x, log_growth, scaled, stats), res
    if not is_traced(ns, prob, reward, pi0, T, x0):  # eager: the public host solvers
        out = _iterative_forward(
            ns, prob, reward, pi0, T, x0, solver=solver, tol=tol, max_iter=max_iter, right=right
        )
        x, log_growth, scaled, stats, q, Te = (jnp.asarray(o) for o in out)
    else:  # jit / vmap: the log-domain power iterations, all in JAX
        from quasispecies.dynamics.steady import _power_iteration

        arrays = _jax_arrays(ns, prob, reward, pi0)
        finite = jnp.where(jnp.isfinite(arrays[1]), jnp.abs(arrays[2]), 0.0)
        Te = at_temperature(T, T, 1e-8 * jnp.maximum(1.0, jnp.max(finite)))
        dense = solver.endswith("-dense")
        x, scaled, it, delta, resid = _power_iteration(arrays, Te, x0, tol, dense, max_iter)
        q = right_power_iteration(arrays, Te, tol, max_iter)[0] if right else jnp.zeros(S, dt)
        log_growth = at_temperature(
            T, scaled / safe_temperature(T), jnp.where(scaled == 0, 0.0, jnp.sign(scaled) * jnp.inf)
        )
        stats = jnp.stack([it.astype(dt), (delta <= tol).astype(dt), resid.astype(dt)])
    res = (ns, prob, reward, pi0, T, log_growth, x, q, scaled, Te)
    return (x, log_growth, scaled, stats), res


def _jax_arrays(ns, prob, reward, pi0):
    """JAX ``(next_state, log K, reward)`` of traced leaves (:meth:`MDP.traced_arrays`)."""
    return _mdp_from(ns, prob, reward, pi0, dense=False).traced_arrays()


def _perron_bwd(solver, tol, max_iter, res, cts):
    xbar, gbar_log, gbar_scaled, _ = cts
    ns, prob, reward, pi0, T, log_growth = res[:6]
    dt = reward.dtype
    if solver == "dense":
        shapes = (jax.ShapeDtypeStruct(reward.shape, dt),) * 2
        flux, pop = _on_host(_dense_edges, shapes, ns, prob, reward, pi0, *res[6:], xbar)
    else:
        x, q, g, Te = res[6:]
        flux, pop = _power_edges(
            _jax_arrays(ns, prob, reward, pi0), x, q, g, Te, xbar, tol, max_iter
        )
    return (
        None,
        None,
        *_cotangents(flux, pop, reward, pi0, T, log_growth, gbar_log, gbar_scaled),
        None,
    )


@jax.jit
def _cotangents(flux, pop, reward, pi0, T, log_growth, gbar_log, gbar_scaled):
    """``(R_bar, pi0_bar, T_bar)`` from the per-transition flux and population terms."""
    safe_T = safe_temperature(T)
    # the cotangent of log W_e at T > 0; at T = 0 only scaled_log_growth has a (sub)gradient
    gl = jnp.where(jnp.isfinite(gbar_log), gbar_log, 0.0)
    omega = at_temperature(T, (gl + gbar_scaled * T) * flux - pop, 0.0)
    r = jnp.where(flux > 0, reward, 0.0)
    reward_bar = at_temperature(T, omega / safe_T, gbar_scaled * flux)
    pi0_bar = jnp.where(pi0 > 0, jnp.sum(omega, axis=2) / jnp.where(pi0 > 0, pi0, 1.0), 0.0)
    log_rho = at_temperature(T, log_growth, 0.0)
    T_bar = at_temperature(T, gbar_scaled * log_rho - jnp.sum(omega * r) / safe_T**2, 0.0)
    return reward_bar, pi0_bar, T_bar


perron.defvjp(_perron_fwd, _perron_bwd)
