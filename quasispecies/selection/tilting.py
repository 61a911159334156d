r"""Tilting a distribution by a reward: the KL-regularised optimum ("RLHF as a Bayesian update").

.. math::  p_\beta(y) = \frac{p_0(y)\, e^{r(y)/\beta}}{Z_\beta},
           \qquad \beta \log Z_\beta = \max_p \; \mathbb{E}_p[r] - \beta\, \mathrm{KL}(p \,\|\, p_0),

the maximiser being ``p_beta`` (Donsker–Varadhan; Korbak, Perez & Buckley 2022, "RL with
KL penalties is better viewed as Bayesian inference"). A survival probability
``h(y) in [0, 1]`` is the case ``r = log h``, ``beta = 1`` (:func:`soft_select`).

The normaliser is the log-semiring sum (:func:`quasispecies.semiring.lse`), so
``beta = 1e-6`` neither overflows nor underflows. Conventions: float64; distributions
are 1-D and sum to 1 (within ``1e-8``); rewards may be ``-inf`` (never selected) but not
NaN or ``+inf``. Invalid input raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.model.validate import (
    as_float_array,
    check_distribution,
    is_traced,
    traced_array,
)
from quasispecies.selection.validate import check_beta, check_dist_reward, check_rate
from quasispecies.semiring import lse

__all__ = [
    "kl_divergence",
    "log_prob",
    "log_tilt",
    "soft_select",
    "survival",
    "tilt",
    "tilt_log_partition",
]


def log_prob(p: jax.Array) -> jax.Array:
    """``log p`` with ``-inf`` (the log-semiring zero) where ``p = 0``, NaN-free gradients."""
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


def log_tilt(logp0: jax.Array, r: jax.Array, inv_beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""``(log p_beta, log Z_beta)`` for one strength ``1/beta``, in the log semiring:

    .. math:: \log p_\beta = \log p_0 + r/\beta - \log Z_\beta, \qquad
              \log Z_\beta = \mathrm{lse}_y\,(\log p_0(y) + r(y)/\beta)

    (Korbak et al. 2022). ``-inf`` in ``logp0`` (zero prior mass) or in ``r`` (excluded
    outcome) stays ``-inf``; ``inv_beta = 0`` gives back ``p0``. Unjitted, written for
    one distribution: callers ``vmap`` it over strengths.
    """
    dead = jnp.isneginf(logp0) | jnp.isneginf(r)
    z = jnp.where(dead, -jnp.inf, jnp.where(dead, 0.0, logp0) + jnp.where(dead, 0.0, r) * inv_beta)
    logZ = lse(z)
    return z - logZ, logZ


@jax.jit
def _tilt_kernel(p0: jax.Array, r: jax.Array, inv_beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    logp, logZ = jax.vmap(log_tilt, in_axes=(None, None, 0))(log_prob(p0), r, inv_beta)
    return jnp.exp(logp), logZ


def _tilt_traced(p0, r, beta, p_name, r_name):
    """The tilt with traced inputs (``jax.grad`` / ``jit`` / ``vmap``): shapes checked,
    values the caller's contract (``p0`` a distribution, ``beta > 0``)."""
    p0 = traced_array(p0, p_name, ndim=1)
    r = traced_array(r, r_name, ndim=1)
    if r.shape != p0.shape:
        raise ValueError(f"{r_name}: expected shape {p0.shape} to match {p_name}, got {r.shape}")
    b = traced_array(beta, "beta", ndim=(0, 1))
    dtype = jnp.result_type(p0.dtype, r.dtype, b.dtype)
    p, logZ = _tilt_kernel(p0.astype(dtype), r.astype(dtype), 1.0 / jnp.atleast_1d(b).astype(dtype))
    return (p, logZ, b) if b.ndim == 1 else (p[0], logZ[0], b)


def _tilt_checked(p0, r, beta, p_name="p0", r_name="r"):
    if is_traced(p0, r, beta):
        return _tilt_traced(p0, r, beta, p_name, r_name)
    p0, r = check_dist_reward(p0, r, p_name, r_name)
    b, sweep = check_beta(beta)
    live = (p0 > 0) & np.isfinite(r)
    if not live.any():
        raise ValueError(
            f"{r_name}: every outcome with positive {p_name} has reward -inf; nothing survives"
        )
    p, logZ = _tilt_kernel(jnp.asarray(p0), jnp.asarray(r), jnp.asarray(1.0 / np.atleast_1d(b)))
    return (p, logZ, b) if sweep else (p[0], logZ[0], b)


def tilt(p0, r, beta) -> jax.Array:
    r"""The reward-tilted distribution ``p0 exp(r / beta) / Z`` (computed in the log domain).

    .. math::  p_\beta(y) = p_0(y)\, e^{r(y)/\beta} \Big/ \sum_{y'} p_0(y')\, e^{r(y')/\beta}

    is the unique maximiser of ``E_p[r] - beta KL(p || p0)`` (Korbak, Perez & Buckley
    2022, "RL with KL penalties is better viewed as Bayesian inference"): the policy that
    KL-regularised RL (RLHF with a KL penalty ``beta``) converges to. As ``beta -> 0`` it
    tends to ``p0`` restricted to ``argmax r``
    (:func:`quasispecies.selection.collapse.attractor`); ``beta -> inf`` gives back ``p0``.

    Parameters
    ----------
    p0 : (N,) array
        Base distribution (non-negative, sums to 1).
    r : (N,) array
        Rewards; ``-inf`` removes an outcome.
    beta : float > 0, or (B,) array
        KL coefficient ("temperature" of the tilt). An array is a sweep (``vmap``) and
        adds a leading axis to the result.

    Returns
    -------
    (N,) or (B, N) float64 array summing to 1 along the last axis.

    Differentiable (``jax.grad`` / ``jacrev`` / ``jit`` / ``vmap``) with respect to ``r``,
    ``p0`` (on its support: zero-mass and ``-inf``-reward outcomes get gradient 0, never
    NaN) and ``beta``: ``d p_beta(y) / d r(z) = p_beta(y) (1[y = z] - p_beta(z)) / beta``.
    Traced inputs are shape-checked only; their values are the caller's contract.
    """
    return _tilt_checked(p0, r, beta)[0]


def tilt_log_partition(p0, r, beta) -> jax.Array:
    r"""``beta log Z_beta = beta log sum_y p0(y) exp(r(y) / beta)``: the optimal value of
    ``E_p[r] - beta KL(p || p0)`` (Donsker–Varadhan; Korbak et al. 2022). Scalar, or
    ``(B,)`` for a sweep of ``beta``. Differentiable as :func:`tilt`:
    ``d / d r = p_beta``, ``d / d beta = log Z_beta - E_{p_beta}[r] / beta = -KL(p_beta || p0)``."""
    _, logZ, b = _tilt_checked(p0, r, beta)
    return jnp.asarray(b) * logZ


def kl_divergence(p, q) -> float:
    r"""``KL(p || q) = sum_y p(y) log(p(y) / q(y))`` in nats (``0 log 0 = 0``).

    ``+inf`` when ``p`` puts mass where ``q`` has none.
    """
    p = check_distribution(p, "p")
    q = check_distribution(q, "q", size=p.shape[0])
    return float(_kl(jnp.asarray(p), jnp.asarray(q)))


@jax.jit
def _kl(p: jax.Array, q: jax.Array) -> jax.Array:
    pos = p > 0
    ps = jnp.where(pos, p, 1.0)
    qs = jnp.where(pos & (q > 0), q, 1.0)
    term = jnp.where(pos, ps * (jnp.log(ps) - jnp.log(qs)), 0.0)
    bad = pos & (q <= 0)
    return jnp.where(bad.any(), jnp.inf, term.sum())


def _check_p_h(p, h) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    p_arr = as_float_array(p, "p", ndim=(1, 2))
    h_arr = check_rate(h, "h")
    if h_arr.shape != p_arr.shape:
        raise ValueError(f"h: expected shape {p_arr.shape} to match p, got {h_arr.shape}")
    rows_p = p_arr[None] if p_arr.ndim == 1 else p_arr
    rows_h = h_arr[None] if h_arr.ndim == 1 else h_arr
    for i, row in enumerate(rows_p):
        check_distribution(row, "p" if p_arr.ndim == 1 else f"p[{i}]")
    return p_arr, h_arr, rows_p, rows_h


def soft_select(p, h) -> jax.Array:
    r"""Selection by a survival probability: ``p'(y) = p(y) h(y) / sum_y' p(y') h(y')``.

    Each individual ``y`` survives (is cherry-picked, replicates) with probability
    ``h(y)``; the survivors are distributed as ``p h`` renormalised. This is
    :func:`tilt` with ``r = log h`` and ``beta = 1``, and one round of
    :func:`quasispecies.selection.chaining.filter_rounds` is the two-outcome case
    ``p = (1 - eps, eps)``, ``h = (tpr, fpr)``. Applied ``k`` times it is ``p h^k``: the
    population converges to ``p`` restricted to ``argmax h``.

    Parameters
    ----------
    p : (N,) or (Q, N) array
        A distribution, or one conditional distribution ``p(a | q)`` per row.
    h : same shape as ``p``
        Survival probabilities in ``[0, 1]`` (``h(q, a)`` for conditional tables).
    """
    p_arr, _, rows_p, rows_h = _check_p_h(p, h)
    surv = (rows_p * rows_h).sum(axis=1)
    if (surv <= 0).any():
        i = int(np.argmax(surv <= 0))
        where = "" if p_arr.ndim == 1 else f" in row {i}"
        raise ValueError(
            f"h: zero survival probability wherever p has mass{where}; nothing survives"
        )
    out = jax.vmap(_soft_select_row)(jnp.asarray(rows_p), jnp.asarray(rows_h))
    return out[0] if p_arr.ndim == 1 else out


@jax.jit
def _soft_select_row(p: jax.Array, h: jax.Array) -> jax.Array:
    w = p * h
    return w / w.sum()


def survival(p, h) -> jax.Array:
    """Fraction of the population that survives soft selection: ``sum_y p(y) h(y)``
    (per row for a conditional table). Same arguments as :func:`soft_select`."""
    p_arr, h_arr, _, _ = _check_p_h(p, h)
    return jnp.sum(jnp.asarray(p_arr) * jnp.asarray(h_arr), axis=-1)
