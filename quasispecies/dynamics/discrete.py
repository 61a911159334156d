r"""Quasispecies dynamics on an MDP, in the log domain at temperature ``T``.

Discrete quasispecies (replicator-mutator) equation, row-vector convention:

.. math:: n_{t+1} = n_t W_T, \qquad x_t = n_t / \textstyle\sum_s n_t(s),
          \qquad W_T[s, s'] = \sum_a \pi_0(a|s) P(s'|s, a) e^{R(s,a,s')/T}.

Populations are carried as ``u_t = T log n_t`` (plus a log-multiplicity at ``T = 0``,
see :mod:`quasispecies.semiring.core`), so ``T = 1e-8`` neither overflows nor underflows and
``T = 0`` is the max-plus (tropical) recursion on the same code path:
``u_{t+1}(s') = max_{(s,a): K > 0} [u_t(s) + R(s, a, s')]``.

``T`` may be a scalar or a 1-D array; an array is a ``vmap``-ed sweep and adds a
leading axis to every result. References: M. Eigen, *Naturwissenschaften* 58 (1971);
E. Todorov, "Efficient computation of optimal actions", PNAS 106 (2009).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.maxplus import howard, strong_components, subeigenvector
from quasispecies.kernels.operators import forward, log_weight_matrix
from quasispecies.model.mdp import MDP, check_mdp as _check_mdp, initial_population as _initial
from quasispecies.model.protocol import ReplicationModel
from quasispecies.model.results import SteadyState, stack_results
from quasispecies.model.validate import check_nonneg_int, check_temperature
from quasispecies.semiring.core import reduce_pair, softmax_pair

__all__ = ["evolve", "evolve_continuous", "scaled_log_population", "steady_state"]

#: Above this many states a steady state is found by iteration, not a dense eigensolve.
DENSE_STEADY_LIMIT = 2500


# ---------------------------------------------------------------------- the kernel
def _init_pair(x0, T):
    pos = x0 > 0
    logx = jnp.log(jnp.where(pos, x0, 1.0))
    u0 = jnp.where(pos, T * logx, -jnp.inf)
    c0 = jnp.where(pos, jnp.where(T > 0, 0.0, logx), -jnp.inf)
    return u0, c0


def _normalise(u, c, T):
    tot = reduce_pair(u, c, T, axis=0)
    Us = jnp.where(jnp.isfinite(tot.u), tot.u, 0.0)
    Cs = jnp.where(jnp.isfinite(tot.c), tot.c, 0.0)
    return u - Us, c - Cs, tot.u


@partial(jax.jit, static_argnames=("steps", "dense", "history"))
def _run(arrays, T, x0, steps: int, dense: bool, history: bool):
    ns, lk, r = arrays
    T = jnp.asarray(T, dtype=r.dtype)

    def step(carry, _):
        u, c, log_total = carry
        p = forward(u, c, ns, lk, r, T, dense)
        u, c, g = _normalise(p.u, p.c, T)
        x = softmax_pair(u, c, T, axis=0) if history else None
        return (u, c, log_total + g), x

    u0, c0 = _init_pair(x0, T)
    (u, _, log_total), xs = jax.lax.scan(step, (u0, c0, jnp.zeros((), r.dtype)), None, length=steps)
    u_final = jnp.where(jnp.isfinite(u), u + log_total, -jnp.inf)
    if history:
        xs = jnp.concatenate([x0[None, :], xs], axis=0)
    return xs, u_final


def _sweep(fn, T: np.ndarray, sweep: bool):
    if sweep:
        return jax.vmap(fn)(jnp.asarray(T))
    return fn(jnp.asarray(T))


#: Sparse MDPs with at least this many states run finite-horizon kernels in pull form
#: (:mod:`quasispecies.kernels.pull`: no scatter, linear domain where that is exact).
PULL_MIN_STATES = 1024


def _horizon_run(mdp: MDP, Ts: np.ndarray, sweep: bool, x0, steps: int, history: bool):
    """``(populations or None, u_steps)``, per temperature when ``sweep``."""
    if not mdp.dense and mdp.num_states >= PULL_MIN_STATES:
        from quasispecies.kernels.pull import horizon

        res = horizon(mdp, np.atleast_1d(Ts), steps, x0, history=history)
        if sweep:
            return res.history, res.u
        return (None if res.history is None else res.history[0]), res.u[0]
    arrays = mdp.arrays()
    return _sweep(lambda t: _run(arrays, t, jnp.asarray(x0), steps, mdp.dense, history), Ts, sweep)


def evolve(mdp, T, steps: int, x0=None) -> np.ndarray:
    r"""Normalised populations ``x_0 .. x_steps`` of ``n_{t+1} = n_t W_T``.

    Parameters
    ----------
    mdp : MDP (or a sequence-space model from :mod:`quasispecies.sequence.core`)
    T : float or (K,) array, ``>= 0``
        Temperature(s). At ``T = 0`` the result is the ``T -> 0+`` limit (mass on the
        states reached by the best paths, shared by their kernel weight).
    steps : int
    x0 : (S,) probability vector, int start state, or None (uniform)

    Returns
    -------
    (steps + 1, S) array, or (K, steps + 1, S) for a temperature array.
    """
    steps = check_nonneg_int(steps, "steps")
    Ts, sweep = check_temperature(T)
    if isinstance(mdp, ReplicationModel):
        out = [mdp.evolve_at(float(t), steps, x0) for t in np.atleast_1d(Ts)]
        return np.stack(out) if sweep else out[0]
    mdp = _check_mdp(mdp)
    x0 = _initial(mdp, x0)
    xs, _ = _horizon_run(mdp, Ts, sweep, x0, steps, True)
    xs = np.asarray(xs)
    dead = ~(xs.sum(axis=-1) > 0)
    if dead.any():
        t = int(np.argwhere(dead)[0][-1])
        raise ValueError(
            f"mdp: no lineage survives to step {t}: every path from x0 reaches a state "
            "with no allowed action, so the normalised population is undefined"
        )
    return xs


def scaled_log_population(mdp, T, steps: int, x0=None) -> np.ndarray:
    r"""``u_steps = T log n_steps`` (unnormalised), the path sum on the ``T log`` scale.

    .. math:: u_H(s') = T \log \sum_{\text{paths} \to s'} x_0(s_0) \prod_t K_t\, e^{G/T}

    At ``T = 0``: the max-plus value ``max_paths G`` over paths of positive probability
    from the support of ``x0``; ``-inf`` where unreachable. Bound:
    ``u^0_H + T log w* <= u^T_H <= u^0_H``.
    """
    steps = check_nonneg_int(steps, "steps")
    Ts, sweep = check_temperature(T)
    mdp = _check_mdp(mdp)
    x0 = _initial(mdp, x0)
    _, u = _horizon_run(mdp, Ts, sweep, x0, steps, False)
    return np.asarray(u)


# --------------------------------------------------------------- continuous time
def _dense_W(mdp: MDP, T: float) -> np.ndarray:
    A, C = log_weight_matrix(mdp, T)
    with np.errstate(over="ignore", invalid="ignore"):
        W = np.where(np.isfinite(A), np.exp(A / T + C) if T > 0 else np.nan, 0.0)
    return W


def evolve_continuous(mdp, T: float, times, x0=None, generator=None) -> np.ndarray:
    r"""Continuous-time quasispecies ``dx/dt = x G - (x G 1) x``, solved exactly.

    The equation is linear after the change of variables ``n' = n G``, so
    ``x(t) = x_0 e^{G t} / (x_0 e^{G t} 1)`` — a matrix exponential, no ODE solver.
    ``G = W_T`` of the MDP by default (or pass ``generator``, any ``(S, S)`` matrix with
    non-negative off-diagonal entries). Returns ``(len(times), S)``.

    ``W_T`` is formed explicitly, so ``T`` must be large enough that
    ``exp(max R / T)`` is a float64; a smaller ``T`` raises ``ValueError``.
    """
    mdp = _check_mdp(mdp)
    Ts, sweep = check_temperature(T)
    if sweep:
        raise ValueError("T: evolve_continuous takes one temperature")
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if t.ndim != 1 or np.isnan(t).any() or (t < 0).any():
        raise ValueError("times: expected a 1-D array of non-negative times")
    x0 = _initial(mdp, x0)
    if generator is None:
        if float(Ts) == 0:
            raise ValueError(
                "T: continuous-time dynamics need T > 0 (exp(R/T) at T = 0 is not a rate)"
            )
        G = _dense_W(mdp, float(Ts))
        if not np.isfinite(G).all():
            raise ValueError(
                f"T: exp(R / T) overflows float64 at T = {float(Ts)!r}; use a larger T"
            )
    else:
        G = np.asarray(generator, dtype=np.float64)
        if G.shape != (mdp.num_states, mdp.num_states):
            raise ValueError(f"generator: expected shape {(mdp.num_states,) * 2}, got {G.shape}")
        if not np.isfinite(G).all():
            raise ValueError("generator: must be finite")
    return np.asarray(_expm_flow(jnp.asarray(G), jnp.asarray(x0), jnp.asarray(t)))


@jax.jit
def _expm_flow(G, x0, t):
    def one(ti):
        # Shift by the largest diagonal entry: e^{(G - cI)t} = e^{-ct} e^{Gt}, same x(t).
        c = jnp.max(jnp.diag(G))
        n = x0 @ jax.scipy.linalg.expm((G - c * jnp.eye(G.shape[0])) * ti)
        return n / jnp.sum(n)

    return jax.vmap(one)(t)


# ------------------------------------------------------------------ steady state
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
    eta, _, _ = howard(A)
    mu = float(eta.max())
    phi = subeigenvector(A, mu)
    with np.errstate(invalid="ignore", over="ignore"):
        B = np.where(np.isfinite(A), np.exp((phi[:, None] + A - mu - phi[None, :]) / T + C), 0.0)
    import scipy.linalg

    w, V = scipy.linalg.eig(B.T)
    k = int(np.argmax(w.real))
    rho_B = float(w[k].real)
    y = np.abs(V[:, k].real)
    # LAPACK's geev balances internally and can return the vector of a badly scaled B
    # with a 1e-4 residual; polish it by inverse iteration on (B - sigma I)^T, which is
    # backward stable (LU) and converges like |rho - sigma| / gap per step.
    sigma = rho_B * (1.0 + 1e-10)
    lu = scipy.linalg.lu_factor((B - sigma * np.eye(B.shape[0])).T)
    for _ in range(3):
        y = np.abs(scipy.linalg.lu_solve(lu, y / np.abs(y).sum()))
    y /= y.sum()
    rho_B = float((y @ B).sum())
    resid = float(np.abs(y @ B - rho_B * y).sum() / rho_B)
    with np.errstate(divide="ignore"):
        logx = np.log(y) + phi / T
    logx = logx - np.max(logx)
    x = np.exp(logx)
    x /= x.sum()
    return mu, float(np.log(rho_B)), x, resid


@partial(jax.jit, static_argnames=("dense", "max_iter"))
def _power_iteration(arrays, T, x0, tol, dense: bool, max_iter: int):
    """Shifted power iteration ``x <- x (W + rho I) / (2 rho)`` in the log domain.

    The shift makes a periodic critical graph aperiodic (``(W + rho I)`` is primitive
    when ``W`` is irreducible), so the iterate converges to the Perron vector instead
    of cycling; ``rho`` is re-estimated each step from ``x W 1``.
    """
    ns, lk, r = arrays
    u0, c0 = _init_pair(x0, T)

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
        nu, nc, _ = _normalise(s.u, s.c, T)
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


def _steady_one(mdp: MDP, T: float, x0, tol: float, max_iter: int) -> SteadyState:
    S = mdp.num_states
    A0 = None
    if S <= DENSE_STEADY_LIMIT:
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
        Te = (
            T
            if T > 0
            else 1e-8
            * max(1.0, float(np.max(np.abs(mdp.reward[np.isfinite(mdp.log_kernel)]), initial=0.0)))
        )
        best = None
        irreducible = True  # not tested on the iterative path; see `method`
        if not mdp.dense:  # pull-form solvers, see quasispecies.kernels.krylov
            from quasispecies.kernels.krylov import perron_sparse

            r = perron_sparse(mdp, Te, _initial(mdp, x0), tol, max_iter)
            args = (r.population, True, r.converged, r.iterations, r.residual, r.method, None)
            return _finish(T, Te, r.scaled_log_growth, 0.0, *args)
    x0v = _initial(mdp, x0)
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
    method = "log-domain shifted power iteration" + (
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
        method,
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


def steady_state(mdp, T, x0=None, *, tol: float = 1e-13, max_iter: int = 200_000) -> SteadyState:
    r"""The quasispecies: left Perron vector and growth rate of ``W_T``.

    Solves ``x W_T = rho x``, ``sum x = 1``. For an irreducible ``W_T`` (strongly connected
    support graph) with ``S <= DENSE_STEADY_LIMIT`` the operator is balanced by a
    max-plus subeigenvector and solved by a dense eigensolve (exact, any ``T``,
    periodic graphs included). A reducible ``W_T`` has no unique Perron vector: the
    result says so (``irreducible=False``), ``log_growth`` is the largest block's, and
    ``population`` is the limit of the dynamics from ``x0`` (shifted power iteration,
    so a periodic critical cycle cannot make it oscillate).

    At ``T = 0``: ``scaled_log_growth`` is the max-plus eigenvalue (maximum cycle mean)
    and ``population`` the ``T -> 0+`` limit, concentrated on the critical cycles.
    """
    Ts, sweep = check_temperature(T)
    if isinstance(mdp, ReplicationModel):
        results = [mdp.steady_state_at(float(t)) for t in np.atleast_1d(Ts)]
        return stack_results(results) if sweep else results[0]
    mdp = _check_mdp(mdp)
    results = [_steady_one(mdp, float(t), x0, tol, max_iter) for t in np.atleast_1d(Ts)]
    return stack_results(results) if sweep else results[0]
