r"""The log semiring over the *pull* (sliced-ELL, by destination) layout, at ``T > 0``.

A replication step ``n_{t+1} = n_t W_T`` (row vectors,
``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s'] / T)``) stored by destination is,
for each destination ``s'``, a sum over its (padded) predecessor edges ``j``:

.. math:: u_{t+1}(s') = T \log \sum_j \exp\big( (u_t(p_j) + R_j) / T + \log K_j \big).

:mod:`quasispecies.kernels.pull` gathers ``U_j = u_t(p_j) + R_j`` into ``(D, n)`` tables
(axis 0 = the ``D`` padded predecessors of each of ``n`` destinations, padding has
``log K = -inf``) and reduces them here; destinations of very high in-degree use the
segment layout (:func:`segment_scaled_lse`). The functions take a *known positive* ``T``
(the caller chose the log kernel because ``T > 0``): they evaluate only that branch, the
fastest form of the sum, where :func:`quasispecies.semiring.core.reduce_pair` evaluates
both branches and selects. At ``T = 0`` (and for the tie multiplicities) the pull kernels
call :func:`~quasispecies.semiring.core.reduce_pair` with ``axis=0`` and
:func:`~quasispecies.semiring.core.segment_reduce_pair`.

Also here: the rescalings the finite-horizon loops apply after each step. They divide
by the *largest* entry, not the total, because a ``max`` is order independent: a state
vector split over devices (:mod:`quasispecies.kernels.sharding`) rescales bitwise as on
one device. ``gmax`` is the max over devices (the identity on one device).

Reference: J. Goodman, "Semiring parsing", *Computational Linguistics* 25 (1999).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jax import Array

from quasispecies.semiring.core import segment_lse

__all__ = [
    "ell_scaled_lse",
    "exp_normalise",
    "lse_columns",
    "population_at",
    "scaled_plus",
    "scaled_total",
    "segment_scaled_lse",
    "shift_max",
    "shift_max_pair",
]


def _identity(v: Array) -> Array:
    return v


def lse_columns(z: Array) -> Array:
    r"""``log sum_j exp z[j, i]`` over axis 0 of a ``(D, n)`` table (``T = 1``).

    ``-inf`` for a column whose entries are all ``-inf`` (the semiring zero), never
    ``NaN``.
    """
    m = jnp.max(z, axis=0)
    ms = jnp.where(jnp.isfinite(m), m, 0.0)
    s = jnp.sum(jnp.exp(z - ms[None, :]), axis=0)
    return jnp.where(s > 0, ms + jnp.log(jnp.where(s > 0, s, 1.0)), -jnp.inf)


def ell_scaled_lse(U: Array, logw: Array, T: Array) -> Array:
    r"""``T log sum_j exp(U[j, i] / T + logw[j, i])`` over axis 0, for ``T > 0``.

    One bucket of the pull-form log step: ``U_j = u(p_j) + R_j`` and ``logw_j = log K_j``
    of the ``D`` padded predecessor edges of each destination.
    """
    return T * lse_columns(U / T + logw)


def segment_scaled_lse(U: Array, logw: Array, seg: Array, num: int, T: Array) -> Array:
    r"""``T log sum_{i: seg(i) = k} exp(U_i / T + logw_i)`` per segment ``k``, for ``T > 0``.

    The pull kernels' tail (destinations of in-degree above the widest bucket).
    """
    return T * segment_lse(U / T + logw, seg, num)


def scaled_total(u: Array, T: Array) -> Array:
    r"""``T log sum_s exp(u_s / T)`` over a whole vector, for ``T > 0``.

    ``T log`` of the total population ``sum_s n_s`` when ``u = T log n``; ``-inf`` when
    every entry is.
    """
    m = jnp.max(u, initial=-jnp.inf)
    ms = jnp.where(jnp.isfinite(m), m, 0.0)
    return ms + T * jnp.log(jnp.sum(jnp.exp((u - ms) / T)))


def scaled_plus(a: Array, b: Array, T: Array) -> Array:
    r"""The binary semiring sum ``a (+)_T b = T log(e^{a/T} + e^{b/T})``, for ``T > 0``.

    Elementwise; ``-inf`` is the zero (``-inf (+) -inf = -inf``, no ``NaN``).
    """
    m = jnp.maximum(a, b)
    ms = jnp.where(jnp.isfinite(m), m, 0.0)
    s = jnp.exp((a - ms) / T) + jnp.exp((b - ms) / T)
    return jnp.where(s > 0, ms + T * jnp.log(jnp.where(s > 0, s, 1.0)), -jnp.inf)


def exp_normalise(z: Array) -> Array:
    r"""``exp(z) / sum exp(z)`` over a vector (``-inf`` = zero weight).

    The normalised population ``x = n / sum n`` from ``z = log n``; all zeros (not
    ``NaN``) when every entry is ``-inf``.
    """
    m = jnp.max(z, initial=-jnp.inf)
    e = jnp.exp(z - jnp.where(jnp.isfinite(m), m, 0.0))
    s = jnp.sum(e)
    return e / jnp.where(s > 0, s, 1.0)


def population_at(u: Array, T: Array) -> Array:
    r"""``x = exp(u / T) / sum exp(u / T)`` for ``T > 0``: the population from ``u = T log n``."""
    return exp_normalise(jnp.where(jnp.isfinite(u), u / T, -jnp.inf))


def shift_max(v: Array, gmax: Callable[[Array], Array] = _identity) -> tuple[Array, Array]:
    r"""``(v - m, m)`` with ``m = max v`` (``0`` if every entry is ``-inf``).

    Divides ``n = exp(v / T)`` by its largest entry; ``m`` is what was taken out (add it
    back on the ``T log`` scale). Exact in the max-plus semiring.
    """
    m = gmax(jnp.max(v, initial=-jnp.inf))
    ms = jnp.where(jnp.isfinite(m), m, 0.0)
    return v - ms, ms


def shift_max_pair(
    v: Array, d: Array, gmax: Callable[[Array], Array] = _identity
) -> tuple[Array, Array, Array]:
    r""":func:`shift_max` for a pair ``(v, d)``: ``(v - max v, d - max_{v finite} d, max v)``.

    The multiplicity ``d`` is shifted by its own largest value over the live entries,
    which keeps it in range at ``T = 0`` (where ``exp(v / T + d)`` is read through ``d``).
    """
    v, ms = shift_max(v, gmax)
    cm = gmax(jnp.max(jnp.where(jnp.isfinite(v), d, -jnp.inf), initial=-jnp.inf))
    cms = jnp.where(jnp.isfinite(cm), cm, 0.0)
    return v, d - cms, ms
