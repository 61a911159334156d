r"""Perron vectors of large sparse replication operators (``S`` up to ``10^6`` and beyond).

Solves ``x W_T = rho x`` (row-vector convention, ``x >= 0``, ``sum x = 1``) using only
applications of ``W_T`` in pull form (:mod:`quasispecies.kernels.pull`), never an ``S x S`` matrix.

* **linear domain** (``T > 0`` and every weight ``K e^{(R - R_max)/T}`` a normal float64):
  power iteration, which on a well-mixing operator reaches a residual of ``1e-13`` in a few
  dozen cheap steps; its convergence factor is measured as it runs, and when it predicts
  more than :data:`POWER_BUDGET` further steps the iterate seeds a **Krylov–Schur**
  (thick-restart Arnoldi) solve instead, which copes with small spectral gaps and with
  periodic operators (the Perron root is the Ritz value of largest *real* part).
* **log domain** otherwise (tiny ``T``, or ``T = 0`` evaluated at ``T_e = 1e-8`` scale): the
  shifted power iteration ``x <- x (W + rho I) / (2 rho)`` on ``u = T log x``, as in
  :func:`quasispecies.dynamics.steady.steady_state`, with the pull-form log-sum-exp step
  (:func:`quasispecies.kernels.pull.log_step`; the sums are the semiring's,
  :mod:`quasispecies.semiring.ell`).

The residual reported is ``||x W - rho x||_1 / rho`` with ``rho = sum(x W)``.

References: G. W. Stewart, "A Krylov–Schur algorithm for large eigenproblems",
SIAM J. Matrix Anal. Appl. 23 (2001); R. B. Lehoucq, D. C. Sorensen, C. Yang, *ARPACK
Users' Guide* (1998).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels import pull
from quasispecies.semiring.core import init_pair
from quasispecies.semiring.ell import population_at, scaled_plus, scaled_total

__all__ = ["POWER_BUDGET", "SparsePerron", "krylov_schur", "perron_sparse"]

#: Power iteration continues only while it predicts at most this many more steps.
POWER_BUDGET = 400

#: Power steps between convergence checks (one jitted call).
POWER_CHUNK = 16


class SparsePerron(NamedTuple):
    """Result of :func:`perron_sparse` (original state order).

    ``convergence_factor`` is the per-step contraction that power iteration measured
    (``|lambda_2| / rho``, estimated from successive updates; ``nan`` when power iteration
    did not run long enough to measure it).
    """

    population: np.ndarray
    scaled_log_growth: float  # T log rho
    iterations: int  # operator applications
    residual: float
    converged: bool
    method: str
    convergence_factor: float = float("nan")


# ----------------------------------------------------------------- linear domain
def _matvec(arrs, ws, tw, static):
    def mv(x):
        return pull.linear_step(arrs, ws, tw, x, static)

    return mv


@partial(jax.jit, static_argnames=("static",))
def _weights(arrs, T, rmax, static):
    arrs = pull.local_arrays(arrs, 0)
    return pull.linear_weights(arrs, T, rmax)


@partial(jax.jit, static_argnames=("static", "steps"))
def _power_chunk(arrs, ws, tw, x, static, steps):
    """``steps`` normalised power steps; returns ``(x, ||xW/rho - x||_1 of the last step)``."""
    mv = _matvec(pull.local_arrays(arrs, 0), ws, tw, static)

    def body(_, carry):
        x, _ = carry
        y = mv(x)
        s = jnp.sum(y)
        y = y / jnp.where(s > 0, s, 1.0)
        return y, jnp.sum(jnp.abs(y - x))

    return jax.lax.fori_loop(0, steps, body, (x, jnp.asarray(jnp.inf, x.dtype)))


@partial(jax.jit, static_argnames=("static",))
def _residual(arrs, ws, tw, x, static):
    y = _matvec(pull.local_arrays(arrs, 0), ws, tw, static)(x)
    rho = jnp.sum(y)
    return rho, jnp.sum(jnp.abs(y - rho * x)) / rho


@partial(jax.jit, static_argnames=("static", "m"))
def _arnoldi(arrs, ws, tw, V, H, k, static, m):
    """Extend an Arnoldi/Krylov–Schur decomposition from column ``k`` to ``m``.

    ``V`` is ``(m + 1, N)`` with orthonormal rows ``0..k``; ``H`` is ``(m + 1, m)``.
    Classical Gram–Schmidt with one reorthogonalisation pass (DGKS).
    """
    mv = _matvec(pull.local_arrays(arrs, 0), ws, tw, static)
    rows = jnp.arange(m + 1)

    def body(j, carry):
        V, H = carry
        w = mv(V[j])
        mask = rows <= j
        h = jnp.where(mask, V @ w, 0.0)
        w = w - h @ V
        h2 = jnp.where(mask, V @ w, 0.0)
        w = w - h2 @ V
        h = h + h2
        beta = jnp.linalg.norm(w)
        ok = beta > 1e-14 * jnp.linalg.norm(h)  # (numerically) invariant subspace
        V = V.at[j + 1].set(jnp.where(ok, w / jnp.where(ok, beta, 1.0), 0.0))
        H = H.at[:, j].set(h.at[j + 1].set(jnp.where(ok, beta, 0.0)))
        return V, H

    return jax.lax.fori_loop(k, m, body, (V, H))


def _restart_basis(Hm: np.ndarray, keep: int):
    """The Perron Ritz pair of ``Hm`` and an orthonormal basis ``Q`` of the invariant
    subspace of (about) ``keep`` Ritz values of largest real part.

    ``Q`` comes from an ordered real Schur form ``Hm = Z T Z^T`` (Stewart 2001), so
    ``span Q`` is invariant to rounding and the compressed decomposition stays an exact
    Arnoldi-like relation; a basis from the eigenvectors instead loses that when ``Hm``
    is far from normal (clustered Ritz values at low ``T``), and the restarted iteration
    then reports convergence for a wrong vector.
    """
    from scipy.linalg import schur

    lam, Y = np.linalg.eig(Hm)
    order = np.argsort(-lam.real, kind="stable")
    lam, Y = lam[order], Y[:, order]
    cut = lam.real[min(keep, len(lam)) - 1]
    tol = 1e-12 * max(1.0, float(np.abs(lam).max()))
    _, Z, sdim = schur(Hm, output="real", sort=lambda re, im: re >= cut - tol)
    return float(lam[0].real), Y[:, 0].real, Z[:, : max(int(sdim), 1)]


def krylov_schur(
    arrs, ws, tw, static, x0, *, tol: float, m: int = 20, keep: int = 8, max_restarts: int = 1000
):
    """Perron pair of ``x -> x W`` from start ``x0`` by thick-restart Arnoldi.

    Returns ``(x, rho, matvecs, converged)`` with ``x >= 0`` summing to 1. Restarts keep the
    ``keep`` Ritz vectors of largest real part (Stewart 2001); the Rayleigh quotient is
    formed on the host (``m x m``).
    """
    N = x0.shape[0]
    V = jnp.zeros((m + 1, N), x0.dtype).at[0].set(x0 / jnp.linalg.norm(x0))
    H = jnp.zeros((m + 1, m), x0.dtype)
    k, matvecs = 0, 0
    x, theta = x0, np.nan
    for _ in range(max_restarts):
        V, H = _arnoldi(arrs, ws, tw, V, H, k, static, m)
        matvecs += m - k
        Hn = np.asarray(H)
        theta, y, Q = _restart_basis(Hn[:m, :m], keep)
        y = y / np.linalg.norm(y)
        res = abs(float(Hn[m, :m] @ y))
        x = jnp.asarray(y) @ V[:m]
        if res <= tol * abs(theta) or not np.any(Hn[m, :m]):
            break
        kk = Q.shape[1]
        Vk = jnp.asarray(Q.T) @ V[:m]
        Hk = np.zeros((m + 1, m))
        Hk[:kk, :kk] = Q.T @ Hn[:m, :m] @ Q
        Hk[kk, :kk] = Hn[m, :m] @ Q
        V = jnp.zeros_like(V).at[:kk].set(Vk).at[kk].set(V[m])
        H = jnp.asarray(Hk)
        k = kk
    x = jnp.abs(x)
    return x / jnp.sum(x), theta, matvecs


# -------------------------------------------------------------------- log domain
@partial(jax.jit, static_argnames=("static", "max_iter"))
def _log_power(arrs, T, u0, tol, static, max_iter: int):
    """Shifted power iteration ``x <- x (W + rho I) / (2 rho)`` on ``u = T log x``."""
    arrs = pull.local_arrays(arrs, 0)

    def cond(state):
        it, _, delta = state
        return (it < max_iter) & (delta > tol)

    def body(state):
        it, u, _ = state
        v = pull.log_step(arrs, u, T, static)
        g = scaled_total(v, T)  # T log rho, with sum exp(u / T) = 1
        nu = scaled_plus(v - g, u, T)
        nu = nu - scaled_total(nu, T)
        delta = jnp.sum(jnp.abs(population_at(nu, T) - population_at(u, T)))
        return it + 1, nu, delta

    u0 = u0 - scaled_total(u0, T)
    it, u, delta = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), u0, jnp.inf))
    v = pull.log_step(arrs, u, T, static)
    g = scaled_total(v, T)
    x = population_at(u, T)
    xw = population_at(v, T)
    return x, g, it, delta, jnp.sum(jnp.abs(xw - x))


# ------------------------------------------------------------------------ driver
def perron_sparse(
    mdp,
    T: float,
    x0: np.ndarray,
    tol: float = 1e-13,
    max_iter: int = 200_000,
    *,
    method: str = "auto",
) -> SparsePerron:
    """Left Perron vector and ``T log rho`` of ``W_T`` for a sparse ``mdp`` at ``T > 0``.

    ``x0`` (original order) starts the iteration; for a reducible ``W_T`` the result is the
    dominant Perron vector reachable from it. ``method``: ``"auto"`` (linear power iteration
    with a Krylov–Schur fallback, log domain when weights leave the float64 range),
    ``"power"``, ``"krylov"`` or ``"log"``.
    """
    if not T > 0:
        raise ValueError(f"T: perron_sparse needs an evaluation temperature > 0, got {T!r}")
    if method not in ("auto", "power", "krylov", "log"):
        raise ValueError(f"method: expected 'auto', 'power', 'krylov' or 'log', got {method!r}")
    op = pull.pull_operator(mdp)
    arrs, static = op.device_arrays(), op.static()
    x0i = jnp.asarray(pull.to_internal(op, np.asarray(x0, dtype=np.float64)))
    Tj = jnp.asarray(T, dtype=jnp.float64)
    if method != "log":
        ws, tw, logwmin = _weights(arrs, Tj, op.reward_max, static)
        if float(logwmin) < pull.GUARD_LOG and method == "auto":
            method = "log"
    if method == "log":
        u0 = init_pair(x0i, Tj).u
        x, g, it, delta, resid = _log_power(arrs, Tj, u0, tol / 2, static, max_iter)
        if not float(jnp.sum(x)) > 0:
            raise ValueError(
                "x0: every lineage from x0 dies out; no steady state is reached from it"
            )
        return SparsePerron(
            pull.to_original(op, x),
            float(g),
            int(it),
            float(resid),
            bool(float(delta) <= tol / 2),
            "log-domain shifted power iteration (pull form)",
        )
    x = x0i / jnp.sum(x0i)
    its, used = 0, "power iteration (pull form, linear domain)"
    delta, prev, rate, hopeless = np.inf, None, np.nan, 0
    if method in ("auto", "power"):
        # Power iteration contracts by |lambda_2| / rho per step. As T -> 0, W_T tends to
        # its max-plus skeleton: a critical cycle of length p > 1 puts p eigenvalues near
        # rho e^{2 pi i k / p} (|lambda_2| / rho = 1 - O(e^{-gap/T})), and the iterate
        # oscillates for millions of steps. The factor is measured every chunk; "auto"
        # then hands over to Krylov-Schur, and "power" stops once the measured factor
        # says max_iter cannot be enough, reporting converged=False.
        while its < max_iter:
            x, d = _power_chunk(arrs, ws, tw, x, static, POWER_CHUNK)
            its += POWER_CHUNK
            delta = float(d)
            if not delta > tol or not np.isfinite(delta):
                break
            if prev is not None:
                rate = (delta / prev) ** (1.0 / POWER_CHUNK) if prev > 0 else np.nan
                more = np.log(tol / delta) / np.log(rate) if 0 < rate < 1 else np.inf
                if method == "auto" and more > POWER_BUDGET:
                    method = "krylov"
                    break
                # two consecutive hopeless estimates (one can be a transient)
                hopeless = hopeless + 1 if more > 4 * (max_iter - its) else 0
                if hopeless >= 2:
                    need = f"~{more:.3g} more steps" if np.isfinite(more) else "no contraction"
                    used += (
                        f", stopped: measured convergence factor {rate:.9g} per step, {need} "
                        "(near-periodic spectrum, |lambda_2| ~ rho); use method='auto' or "
                        "'krylov'"
                    )
                    break
            prev = delta
    if method == "krylov":
        used = (
            "Krylov–Schur (pull form, linear domain)"
            if its == 0
            else "power iteration, then Krylov–Schur (pull form, linear domain)"
        )
        tol2 = tol
        for _ in range(4):
            x, _, mv = krylov_schur(
                arrs, ws, tw, static, x, tol=tol2, max_restarts=max(1, (max_iter - its) // 12)
            )
            its += mv
            rho, resid = _residual(arrs, ws, tw, x, static)
            if float(resid) <= tol or its >= max_iter:
                break
            tol2 = max(tol2 / 100, 1e-16)
        resid = float(resid)
        if resid > tol:
            # Arnoldi's backward error is eps ||W||, i.e. eps ||W|| / rho relative to the
            # Perron root. At low T, W is far from normal (large weights on edges off every
            # cycle: ||W|| / rho ~ 1e8 is common), and the Krylov answer is only good to
            # ~1e-8 there. Power steps stay in the positive cone, where every operation is
            # componentwise accurate: polish with up to POWER_BUDGET of them (the residual
            # may grow transiently on a non-normal W) and keep the best iterate.
            polished, xn = False, x
            for _ in range(POWER_BUDGET // POWER_CHUNK):
                xn, _ = _power_chunk(arrs, ws, tw, xn, static, POWER_CHUNK)
                its += POWER_CHUNK
                rn = float(_residual(arrs, ws, tw, xn, static)[1])
                if rn < resid:
                    x, resid, polished = xn, rn, True
                if resid <= tol:
                    break
            if polished:
                used = used[: -len(")")] + ", polished by power steps)"
    rho, resid = _residual(arrs, ws, tw, x, static)
    rho, resid = float(rho), float(resid)
    if not rho > 0:
        raise ValueError("x0: every lineage from x0 dies out; no steady state is reached from it")
    g = T * np.log(rho) + op.reward_max
    return SparsePerron(
        pull.to_original(op, x), float(g), its + 1, resid, bool(resid <= tol), used, float(rate)
    )
