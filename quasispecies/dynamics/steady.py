r"""The quasispecies: the left Perron vector and growth rate of ``W_T``.

.. math:: x W_T = \rho\, x, \qquad \textstyle\sum_s x_s = 1, \qquad
          W_T[s, s'] = \sum_a \pi_0(a|s) P(s'|s, a) e^{R(s,a,s')/T}

(row-vector convention: ``x`` is a row vector, the stationary distribution of the
normalised dynamics ``x_{t+1} \propto x_t W_T``). Three solvers (``method=``;
:func:`resolve_method` says which ``"auto"`` picks):

* ``"dense"`` -- balance ``W_T`` by a max-plus subeigenvector and solve densely (exact
  at any ``T``, periodic graphs included; ``O(S^2)`` memory); reducible ``W_T`` handled
  block by block;
* ``"power"`` -- shifted power iteration in the log domain on the dense / segment layout;
* ``"pull"`` -- the pull-form solvers of :mod:`quasispecies.kernels.krylov` (power
  iteration / Krylov--Schur in the linear domain, log-domain power iteration below it).

At ``T = 0`` the solvers run at a tiny evaluation temperature (``1e-8`` times the reward
scale) whose result equals the ``T -> 0+`` limit to float64 precision, and
``scaled_log_growth`` is the max-plus eigenvalue (Karp 1978; Cochet-Terrasson et al.
1998). References: M. Eigen, *Naturwissenschaften* 58 (1971); R. M. Karp, *Discrete
Math.* 23 (1978).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.dynamics.horizon import (
    mean_reward,
    neutral_mdp,
    refuse_infinite,
    traced_inputs,
    traced_population,
    traced_temperature,
)
from quasispecies.dynamics.implicit import check_irreducible, edge_temperature, perron
from quasispecies.kernels.maxplus import strong_components
from quasispecies.kernels.operators import forward, log_weight_matrix
from quasispecies.kernels.perron import balance, perron_vector
from quasispecies.model.mdp import MDP, check_mdp, initial_population
from quasispecies.model.protocol import ReplicationModel
from quasispecies.model.results import SteadyState, stack_results
from quasispecies.model.validate import check_temperature, is_traced
from quasispecies.semiring.core import init_pair, normalise_pair, reduce_pair, softmax_pair

__all__ = ["DENSE_STEADY_LIMIT", "METHODS", "resolve_method", "steady_state"]

#: With ``method="auto"``, above this many states a steady state is found by iteration,
#: not a dense eigensolve.
DENSE_STEADY_LIMIT = 2500

#: The accepted values of ``method=``.
METHODS = ("auto", "dense", "power", "pull")


def resolve_method(mdp: MDP, method: str = "auto") -> str:
    """The solver :func:`steady_state` uses for ``mdp``: ``"dense"``, ``"power"`` or ``"pull"``.

    ``"auto"``: ``"dense"`` up to :data:`DENSE_STEADY_LIMIT` states; above it ``"pull"``
    for a sparse MDP and ``"power"`` for one built from dense ``P``. Other values are
    checked and returned.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if method != "auto":
        return method
    if mdp.num_states <= DENSE_STEADY_LIMIT:
        return "dense"
    return "power" if mdp.dense else "pull"


def _eval_temperature(T: float, A0: np.ndarray) -> float:
    """The positive temperature at which a ``T = 0`` steady state is evaluated.

    The ``T -> 0+`` Perron vector is ``exp(phi / T + O(1))``: at ``T = 1e-8`` times the
    reward scale every non-critical contribution ``exp(-gap / T)`` with ``gap > 1e-6``
    of the scale underflows, so the result equals the limit to float64 precision
    (up to rounding of ``phi`` amplified by ``1 / T``).
    """
    if T > 0:
        return T
    finite = A0[np.isfinite(A0)]
    scale = float(np.max(np.abs(finite))) if finite.size else 1.0
    return 1e-8 * max(1.0, scale)


def _balanced_perron(A: np.ndarray, C: np.ndarray, T: float):
    """Perron root and left vector of ``W = exp(A / T + C)`` on an irreducible block.

    Balance with a max-plus subeigenvector ``phi``: ``B = exp((phi_s + A - mu - phi_s') / T + C)``
    has entries ``<= max exp(C)`` and ``O(1)`` on critical edges, so a dense eigensolve is
    well scaled at any ``T``. Then ``log rho = mu / T + log rho_B`` and
    ``log x = log y + phi / T``.
    """
    mu, phi, B = balance(A, C, T)
    rho_B, y, resid = perron_vector(B, "left")
    with np.errstate(divide="ignore"):
        logx = np.log(y) + phi / T
    logx = logx - np.max(logx)
    x = np.exp(logx)
    x /= x.sum()
    return mu, float(np.log(rho_B)), x, resid


@partial(jax.jit, static_argnames=("dense", "max_iter"))
def _power_iteration(arrays, T, x0, tol, dense: bool, max_iter: int):
    r"""Shifted power iteration ``x <- x (W + rho I) / (2 rho)`` in the log domain
    (row vector ``x``, dense or segment layout; ``T > 0``).

    The shift makes a periodic critical graph aperiodic (``(W + rho I)`` is primitive
    when ``W`` is irreducible), so the iterate converges to the Perron vector instead
    of cycling; ``rho`` is re-estimated each step from ``x W 1``.
    """
    ns, lk, r = arrays
    u0, c0 = init_pair(x0, T)

    def cond(state):
        it, _, _, _, delta = state
        return (it < max_iter) & (delta > tol)

    def body(state):
        it, u, c, _, _ = state
        p = forward(u, c, ns, lk, r, T, dense)
        g = reduce_pair(p.u, p.c, T, axis=0)
        gu = jnp.where(jnp.isfinite(g.u), g.u, 0.0)
        gc = jnp.where(jnp.isfinite(g.c), g.c, 0.0)
        both_u = jnp.stack([p.u, u + gu])
        both_c = jnp.stack([p.c, c + gc])
        s = reduce_pair(both_u, both_c, T, axis=0)
        nu, nc, _ = normalise_pair(s.u, s.c, T)
        x_old = softmax_pair(u, c, T, axis=0)
        x_new = softmax_pair(nu, nc, T, axis=0)
        return it + 1, nu, nc, g.u, jnp.sum(jnp.abs(x_new - x_old))

    state = (
        jnp.zeros((), jnp.int32),
        u0,
        c0,
        jnp.zeros((), r.dtype),
        jnp.asarray(jnp.inf, r.dtype),
    )
    it, u, c, _, delta = jax.lax.while_loop(cond, body, state)
    p = forward(u, c, ns, lk, r, T, dense)
    g = reduce_pair(p.u, p.c, T, axis=0)
    x = softmax_pair(u, c, T, axis=0)
    xw = softmax_pair(p.u, p.c, T, axis=0)
    return x, g.u, it, delta, jnp.sum(jnp.abs(xw - x))


def _steady_one(mdp: MDP, T: float, x0, tol: float, max_iter: int, method: str) -> SteadyState:
    S = mdp.num_states
    A0 = None
    if method == "dense":
        A0, _ = log_weight_matrix(mdp, 0.0)
        Te = _eval_temperature(T, A0)
        A, C = log_weight_matrix(mdp, Te)
        ncomp, labels = strong_components(A)
        if ncomp == 1 and np.isfinite(A).any():
            mu, log_rho_B, x, resid = _balanced_perron(A, C, Te)
            return _finish(T, Te, mu, log_rho_B, x, True, True, 0, resid, "balanced dense eig", A0)
        # Reducible: growth = best block. If that block is unique and closed (no edge
        # leaves it) the left Perron vector is unique and lives on it; otherwise the
        # vector depends on x0 and comes from iterating the dynamics.
        blocks = []
        for k in range(ncomp):
            idx = np.flatnonzero(labels == k)
            sub = A[np.ix_(idx, idx)]
            if np.isfinite(sub).any():
                mu, log_rho_B, xb, resid = _balanced_perron(sub, C[np.ix_(idx, idx)], Te)
                blocks.append((mu / Te + log_rho_B, mu, log_rho_B, idx, xb, resid))
        if not blocks:
            raise ValueError("mdp: the support graph has no cycle, so W_T has no steady state")
        blocks.sort(key=lambda b: b[0], reverse=True)
        top = blocks[0]
        unique = len(blocks) == 1 or blocks[1][0] < top[0] - 1e-12 * max(1.0, abs(top[0]))
        others = np.setdiff1d(np.arange(S), top[3])
        closed = not np.isfinite(A[np.ix_(top[3], others)]).any()
        if unique and closed:
            x = np.zeros(S)
            x[top[3]] = top[4]
            return _finish(
                T,
                Te,
                top[1],
                top[2],
                x,
                False,
                True,
                0,
                top[5],
                "balanced dense eig on the dominant closed class (reducible W_T)",
                A0,
            )
        best = (top[1], top[2])
        irreducible = False
    else:
        Te = edge_temperature(T, mdp.reward, np.isfinite(mdp.log_kernel))
        best = None
        irreducible = True  # not tested on the iterative path; see `method`
        if method == "pull":  # pull-form solvers, see quasispecies.kernels.krylov
            from quasispecies.kernels.krylov import perron_sparse

            r = perron_sparse(mdp, Te, initial_population(mdp, x0), tol, max_iter)
            args = (r.population, True, r.converged, r.iterations, r.residual, r.method, None)
            return _finish(T, Te, r.scaled_log_growth, 0.0, *args)
    x0v = initial_population(mdp, x0)
    x, g, it, delta, resid = _power_iteration(
        mdp.arrays(), jnp.asarray(Te), jnp.asarray(x0v), tol, mdp.dense, max_iter
    )
    x = np.asarray(x)
    if not x.sum() > 0:
        raise ValueError("x0: every lineage from x0 dies out; no steady state is reached from it")
    g = float(g)
    if best is None:
        mu, log_rho_B = g, 0.0  # iterative: scaled growth measured directly
    else:
        mu, log_rho_B = best
    used = "log-domain shifted power iteration" + (
        "" if irreducible else " from x0 (reducible W_T)"
    )
    return _finish(
        T,
        Te,
        mu,
        log_rho_B,
        x,
        irreducible,
        bool(float(delta) <= tol),
        int(it),
        float(resid),
        used,
        A0,
    )


def _finish(T, Te, mu, log_rho_B, x, irreducible, converged, it, resid, method, A0) -> SteadyState:
    if T > 0:
        scaled = mu + T * log_rho_B
        log_growth = mu / T + log_rho_B
    else:
        from quasispecies.kernels.maxplus import max_plus_eigenvalue

        scaled = max_plus_eigenvalue(A0) if A0 is not None else mu
        log_growth = log_rho_B if scaled == 0 else float(np.sign(scaled) * np.inf)
    return SteadyState(
        population=x,
        log_growth=float(log_growth),
        scaled_log_growth=float(scaled),
        temperature=float(T),
        irreducible=irreducible,
        converged=converged,
        iterations=it,
        residual=resid,
        method=method,
    )


def _steady_neutral(mdp: MDP, x0, tol, max_iter, method) -> SteadyState:
    """``T = inf``: the Perron vector of ``W = K``, solved as the zero-reward MDP at ``T = 1``.

    ``log_growth = log rho(K)``. ``scaled_log_growth`` is the ``T -> inf`` limit of
    ``T log rho(W_T)``: ``-inf`` when ``rho(K) < 1``; when ``rho(K) = 1`` the mean one-step
    reward ``sum_s x_s sum_{a,s'} K R`` under the returned population (for an irreducible
    ``K``, which is then stochastic with right Perron vector 1, this is exactly the limit,
    ``d log rho / d(1/T)`` at ``1/T = 0``).
    """
    res = _steady_one(neutral_mdp(mdp), 1.0, x0, tol, max_iter, method)
    if res.log_growth < -1e-12:
        scaled = -np.inf
    else:
        scaled = float(np.asarray(res.population) @ mean_reward(mdp))
    return res._replace(scaled_log_growth=scaled, temperature=np.inf)


def _traced_steady(mdp, T, x0, tol, max_iter, method) -> SteadyState:
    """The differentiable steady state (:mod:`quasispecies.dynamics.implicit`): values from
    the same solvers, gradients by implicit differentiation, never through iterations."""
    mdp = check_mdp(mdp)
    chosen = resolve_method(mdp, method)
    if not is_traced(mdp.next_state, mdp.prob, mdp.pi0):
        check_irreducible(mdp.next_state, mdp.prob, mdp.pi0)
    solver = "dense" if chosen == "dense" else f"{chosen}-{'dense' if mdp.dense else 'segment'}"
    reward = jnp.asarray(mdp.reward)
    leaves = (
        jnp.asarray(mdp.next_state),
        jnp.asarray(mdp.prob, dtype=reward.dtype),
        reward,
        jnp.asarray(mdp.pi0, dtype=reward.dtype),
    )
    Ts = traced_temperature(T).astype(reward.dtype)
    x = traced_population(mdp, x0, reward.dtype)

    def one(t):
        return perron(solver, tol, max_iter, *leaves, t, x)

    pop, log_growth, scaled, stats = jax.vmap(one)(Ts) if Ts.ndim == 1 else one(Ts)
    name = {
        "dense": "balanced dense eig",
        "power": "log-domain shifted power iteration",
        "pull": "pull-form power iteration / Krylov-Schur",
    }[chosen] + " (implicit gradients: left and right Perron vectors)"
    return SteadyState(
        population=pop,
        log_growth=log_growth,
        scaled_log_growth=scaled,
        temperature=Ts,
        irreducible=True,
        converged=stats[..., 1] > 0,
        iterations=stats[..., 0].astype(jnp.int32),
        residual=stats[..., 2],
        method=name,
    )


def steady_state(
    mdp,
    T,
    x0=None,
    *,
    tol: float = 1e-13,
    max_iter: int = 200_000,
    method: str = "auto",
) -> SteadyState:
    r"""The quasispecies: left Perron vector and growth rate of ``W_T`` (``x W_T = rho x``).

    Solves ``x W_T = rho x``, ``sum x = 1`` (row vector ``x``). For an irreducible ``W_T``
    (strongly connected support graph) the ``"dense"`` solver balances the operator by a
    max-plus subeigenvector and solves densely (exact, any ``T``, periodic graphs
    included). A reducible ``W_T`` has no unique Perron vector: the result says so
    (``irreducible=False``), ``log_growth`` is the largest block's, and ``population`` is
    the limit of the dynamics from ``x0`` (shifted power iteration, so a periodic
    critical cycle cannot make it oscillate).

    ``method``: ``"auto"`` (see :func:`resolve_method`: dense up to
    :data:`DENSE_STEADY_LIMIT` states), ``"dense"``, ``"power"`` or ``"pull"``; the
    result's ``.method`` names the algorithm that produced it. Sequence-space models
    choose their own solver and ignore it.

    At ``T = 0``: ``scaled_log_growth`` is the max-plus eigenvalue (maximum cycle mean,
    Karp 1978) and ``population`` the ``T -> 0+`` limit, concentrated on the critical
    cycles. At ``T = inf`` (MDPs only): the neutral-selection limit ``W = K``, pure
    mutation (:func:`quasispecies.dynamics.horizon.neutral_mdp`); ``log_growth = log rho(K)``.

    Differentiable (``jax.grad``/``jacrev``/``jit``/``vmap``) in the rewards, ``pi0`` and
    ``T > 0`` by implicit differentiation (:mod:`quasispecies.dynamics.implicit`): the
    same solver runs for the value, its left and right Perron vectors give
    ``d(T log rho)/dR`` (the stationary flux), one adjoint solve the population's
    gradient. Traced calls return JAX arrays and need an irreducible ``W_T``.
    """
    if traced_inputs(mdp, T, x0):
        return _traced_steady(mdp, T, x0, tol, max_iter, method)
    Ts, sweep = check_temperature(T, allow_inf=True)
    if isinstance(mdp, ReplicationModel):
        refuse_infinite(Ts)
        results = [mdp.steady_state_at(float(t)) for t in np.atleast_1d(Ts)]
        return stack_results(results) if sweep else results[0]
    mdp = check_mdp(mdp)
    chosen = resolve_method(mdp, method)
    results = [
        _steady_one(mdp, float(t), x0, tol, max_iter, chosen)
        if np.isfinite(t)
        else _steady_neutral(mdp, x0, tol, max_iter, chosen)
        for t in np.atleast_1d(Ts)
    ]
    return stack_results(results) if sweep else results[0]
