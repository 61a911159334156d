r"""Best of ``n``: draw ``n`` i.i.d. samples from ``p`` and keep the one with the largest reward.

With ``F(y) = P(r(Y) <= r(y))`` and ``F(y-) = P(r(Y) < r(y))`` the law of the kept sample
is the order statistic

.. math::  \pi_n(y) = \frac{p(y)}{F(y) - F(y^-)} \bigl(F(y)^n - F(y^-)^n\bigr),

(ties share their group's mass in proportion to ``p``; without ties this is
``F(y)^n - F(y-)^n``). Its divergence and win rate obey

.. math::  \mathrm{KL}(\pi_n \,\|\, p) \le \log n - \frac{n-1}{n}, \qquad
           P(r(Y_n) > r(Y)) + \tfrac12 P(r(Y_n) = r(Y)) \le \frac{n}{n+1},

with equality for a continuous reward distribution (Stiennon et al. 2020 state the KL
value; Beirami et al. 2024, "Theoretical guarantees on the best-of-n alignment policy",
prove it is an upper bound). Both bounds follow from the continuous case: write
``Y = Q(U)`` with ``U`` uniform and ``Q`` the quantile function; best-of-``n`` of ``Y``
is ``Q(max U_i)``, a deterministic function of ``max U_i`` whose law has
``KL = log n - (n-1)/n`` to the uniform, so the data-processing inequality bounds the
discrete KL; within a tie group ``max U_i`` leans to the top of its interval, so its mean
exceeds the group's mid-rank, which bounds the half-credit win rate by ``E[max U_i]``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.model.validate import is_traced, traced_array
from quasispecies.selection.validate import check_dist_reward, check_n

__all__ = [
    "BestOfN",
    "best_of_n",
    "best_of_n_kl_bound",
    "best_of_n_stats",
    "best_of_n_win_rate_bound",
]


class BestOfN(NamedTuple):
    """Summary of best-of-``n`` selection (each field gains a leading axis for an ``n`` sweep).

    Attributes
    ----------
    probs : (N,) the exact best-of-``n`` distribution ``pi_n``.
    kl : ``KL(pi_n || p)`` in nats.
    kl_bound : ``log n - (n - 1) / n``.
    win_rate : ``P(r(Y_n) > r(Y)) + P(r(Y_n) = r(Y)) / 2`` with ``Y ~ p`` independent.
    win_rate_bound : ``n / (n + 1)``.
    expected_reward : ``E_{pi_n}[r]`` (``-inf`` only if every draw can be ``-inf``).
    n : the number of draws.
    """

    probs: jax.Array
    kl: jax.Array
    kl_bound: jax.Array
    win_rate: jax.Array
    win_rate_bound: jax.Array
    expected_reward: jax.Array
    n: jax.Array


def _tie_masses(p: jax.Array, r: jax.Array):
    """Per outcome: mass strictly above its reward, mass at or above it, its tie group, and
    whether ``F(y)`` and ``F(y-)`` are exactly 0.

    Upper tails (not ``F``) are accumulated so that ``F`` close to 1 keeps its precision:
    ``log F = log1p(-tail)``.
    """
    order = jnp.argsort(r)
    rs, ps = r[order], p[order]
    # suffix[i] = sum_{j >= i} ps[j]; suffix[N] = 0.
    suffix = jnp.concatenate([jnp.cumsum(ps[::-1])[::-1], jnp.zeros((1,), p.dtype)])
    lo = jnp.searchsorted(rs, r, side="left")
    hi = jnp.searchsorted(rs, r, side="right")
    above = suffix[hi]  # P(r(Y) > r(y)) = 1 - F(y)
    at_or_above = suffix[lo]  # P(r(Y) >= r(y)) = 1 - F(y-)
    # The group's mass summed from its own entries (a difference of cumulative sums
    # would cancel catastrophically for a rare group next to a heavy one).
    g = jax.ops.segment_sum(p, lo, num_segments=p.shape[0])[lo]
    # F(y) = 0 (F(y-) = 0) exactly when nothing of positive mass ranks at or below (below)
    # y: read from prefix sums, whose zeros are exact, so log F is -inf there, not log1p(-1).
    prefix = jnp.concatenate([jnp.zeros((1,), p.dtype), jnp.cumsum(ps)])
    return above, at_or_above, g, prefix[hi] <= 0, prefix[lo] <= 0


def _log_cdf(tail: jax.Array, zero: jax.Array) -> jax.Array:
    """``log(1 - tail)``, ``-inf`` where ``zero``, with finite gradients on both branches."""
    safe = jnp.where(zero, 0.0, jnp.minimum(tail, 1.0))
    return jnp.where(zero, -jnp.inf, jnp.log1p(-safe))


def _best_of_n_one(p: jax.Array, r: jax.Array, n: jax.Array) -> BestOfN:
    above, at_or_above, g, F_zero, Fm_zero = _tie_masses(p, r)
    logF = _log_cdf(above, F_zero)
    logFm = _log_cdf(at_or_above, Fm_zero)
    # log(F^n - F-^n) = n log F + log(-expm1(n (log F- - log F))), -inf when F- = F.
    diff = n * (logFm - logF)
    gap = -jnp.expm1(jnp.where(jnp.isfinite(diff), diff, -jnp.inf))
    log_mass = jnp.where(gap > 0, n * logF + jnp.log(jnp.where(gap > 0, gap, 1.0)), -jnp.inf)
    gpos = g > 0
    log_ratio = jnp.where(gpos, log_mass - jnp.log(jnp.where(gpos, g, 1.0)), -jnp.inf)  # pi_n / p
    pos = p > 0
    probs = jnp.where(pos, p * jnp.exp(jnp.where(pos, log_ratio, 0.0)), 0.0)
    kl = jnp.sum(jnp.where(pos & (probs > 0), probs * jnp.where(pos, log_ratio, 0.0), 0.0))
    below = 1.0 - at_or_above  # F(y-)
    win = jnp.sum(probs * (below + 0.5 * g))
    rsafe = jnp.where(probs > 0, r, 0.0)
    er = jnp.sum(probs * rsafe)
    return BestOfN(
        probs=probs,
        kl=kl,
        kl_bound=jnp.log(n) - (n - 1.0) / n,
        win_rate=win,
        win_rate_bound=n / (n + 1.0),
        expected_reward=er,
        n=n,
    )


@jax.jit
def _best_of_n_kernel(p: jax.Array, r: jax.Array, n: jax.Array) -> BestOfN:
    return jax.vmap(_best_of_n_one, in_axes=(None, None, 0))(p, r, n)


def best_of_n_stats(p, r, n) -> BestOfN:
    r"""Exact best-of-``n`` distribution with its KL, win rate and the two bounds.

    .. math::  \pi_n(y) = p(y)\, \frac{F(y)^n - F(y^-)^n}{F(y) - F(y^-)}, \quad
               \mathrm{KL}(\pi_n \| p) \le \log n - \tfrac{n-1}{n}, \quad
               \mathrm{win} \le \tfrac{n}{n+1}

    (order statistics of ``n`` i.i.d. draws; bounds from Beirami et al. 2024, see the
    module docstring). ``n`` may be a 1-D array of integers (a sweep, ``vmap``, leading
    axis). Ties in ``r`` (exact equality) share their group's mass in proportion to
    ``p``: that is what picking uniformly among tied draws gives.

    Differentiable (``jax.grad`` / ``jacrev`` / ``jit`` / ``vmap``) with respect to ``p``
    along the simplex (tangent directions: the law is computed from upper tails and
    assumes ``sum p = 1``; zero-mass outcomes and ``-inf`` rewards give finite gradients,
    never NaN) and ``r``: ``pi_n`` depends on ``r`` only through its order, so its
    derivative in ``r`` is 0 away from ties (a tie is a jump), while ``expected_reward``
    has ``d / d r = pi_n``. ``n`` is an integer and not differentiated. Traced ``p`` and
    ``r`` are shape-checked only; their values are the caller's contract.
    """
    if is_traced(p, r):
        p = traced_array(p, "p", ndim=1)
        r = traced_array(r, "r", ndim=1)
        if r.shape != p.shape:
            raise ValueError(f"r: expected shape {p.shape} to match p, got {r.shape}")
        dtype = jnp.result_type(p.dtype, r.dtype)
        p, r = p.astype(dtype), r.astype(dtype)
    else:
        p, r = check_dist_reward(p, r, "p", "r")
    n_arr, sweep = check_n(n)
    res = _best_of_n_kernel(jnp.asarray(p), jnp.asarray(r), jnp.asarray(np.atleast_1d(n_arr)))
    if sweep:
        return res
    return BestOfN(*(x[0] for x in res))


def best_of_n(p, r, n) -> jax.Array:
    r"""Exact distribution of the best of ``n`` i.i.d. draws from ``p`` ranked by ``r``.

    .. math::  \pi_n(y) = p(y)\, \frac{F(y)^n - F(y^-)^n}{F(y) - F(y^-)},\quad
               F(y) = \sum_{r(y') \le r(y)} p(y'),\ F(y^-) = \sum_{r(y') < r(y)} p(y')

    (the law of the largest of ``n`` i.i.d. draws, an order statistic; ``F(y)^n - F(y-)^n`` when
    rewards are distinct, ties share the group's mass in proportion to ``p``). Computed
    from upper tails in the log domain, so rare outcomes keep their relative precision.
    Reference: Beirami et al. (2024), "Theoretical guarantees on the best-of-n alignment
    policy".

    Parameters
    ----------
    p : (N,) distribution; r : (N,) rewards (``-inf`` ranks lowest); n : int >= 1, or a
        1-D array of them (adds a leading axis).

    Differentiable with respect to ``p`` (and, trivially, ``r``: the law is locally
    constant in ``r``), see :func:`best_of_n_stats`.
    """
    return best_of_n_stats(p, r, n).probs


def best_of_n_kl_bound(n) -> np.ndarray:
    """``log n - (n - 1) / n``: the KL of best-of-``n`` for a continuous reward, an upper
    bound for any reward distribution (Beirami et al. 2024)."""
    n_arr, sweep = check_n(n)
    out = np.log(n_arr) - (n_arr - 1.0) / n_arr
    return out if sweep else out[()]


def best_of_n_win_rate_bound(n) -> np.ndarray:
    """``n / (n + 1)``: the win rate of best-of-``n`` against a fresh draw for a continuous
    reward (``E[max of n uniforms]``); an upper bound when ties count one half."""
    n_arr, sweep = check_n(n)
    out = n_arr / (n_arr + 1.0)
    return out if sweep else out[()]
