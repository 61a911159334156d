r"""The one reduction every kernel is written against: ``T log sum exp(x / T)``.

At temperature ``T > 0`` the "plus" of the semiring is

.. math::  a \oplus_T b = T \log(e^{a/T} + e^{b/T}),

and at ``T = 0`` it is ``max`` (Maslov dequantization: the max-plus, or tropical,
semiring is the ``T -> 0`` limit of the log semiring). "Times" is ``+`` in both.
``-inf`` is the semiring zero; ``0`` is the one.

Kernels carry a second, optional component: a log-multiplicity ``c`` such that an
element ``(u, c)`` stands for the positive number ``exp(u / T + c)``. At ``T > 0`` the
two fold together (``u + T c``), but at ``T = 0`` the pair keeps what the pure max
forgets: the log of the total kernel weight of the paths that attain the max. With
it, ``T = 0`` results are the exact ``T -> 0+`` limits (for example which state the
population sits on when two best paths tie), not an arbitrary tie-break.

All functions accept a traced ``T`` (a temperature sweep is a ``vmap`` over it): the
``T = 0`` branch is selected with ``jnp.where``, with the usual "double where" so
that no ``NaN`` leaks into values or gradients from the branch not taken.

Layouts: a dense axis (:func:`reduce_pair`, :func:`softmax_pair`), segments / successor
lists (:func:`segment_reduce_pair`, :func:`segment_lse`, :func:`segment_softmax_pair`);
the pull (sliced-ELL) layout at a known ``T > 0`` is :mod:`quasispecies.semiring.ell`.

Reference: J. Goodman, "Semiring parsing", *Computational Linguistics* 25 (1999);
V. P. Maslov, *Idempotent Analysis* (1992); G. L. Litvinov, "Maslov dequantization,
idempotent and tropical mathematics" (2005).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

__all__ = [
    "TIE_RTOL",
    "LogPair",
    "reduce",
    "reduce_pair",
    "scaled_lse",
]

#: Relative tolerance under which two max-plus values count as a tie at ``T = 0``.
#: Sums of float64 rewards taken in different orders differ by a few ulp; a gap of
#: ``1e-12 |u|`` contributes ``exp(-1e-12 |u| / T)`` at any ``T`` the toolkit resolves
#: (``T >= 1e-8``), i.e. it is a tie there too.
TIE_RTOL = 1e-12


def _pos(T: Array) -> Array:
    return T > 0


def _safe_T(T: Array) -> Array:
    return jnp.where(_pos(T), T, 1.0)


def at_temperature(T: Array, positive: Array, zero: Array) -> Array:
    """``positive`` where ``T > 0``, ``zero`` at ``T = 0``: the one branch between a
    quantity's ``T > 0`` form and its ``T -> 0+`` limit, for code outside the semiring."""
    return jnp.where(_pos(T), positive, zero)


def safe_temperature(T: Array) -> Array:
    """``T``, or 1 at ``T = 0``: a divisor for the ``T > 0`` branch that never makes a
    ``NaN`` (or its gradient) in the branch :func:`at_temperature` discards."""
    return _safe_T(T)


__all__ += ["at_temperature", "safe_temperature"]


def _exponent(u: Array, c: Array, sT: Array) -> Array:
    """``u / T + c`` with ``-inf`` entries kept at ``-inf`` and NaN-free gradients
    (the "double where": the masked entries never reach the division)."""
    dead = jnp.isneginf(u)
    return jnp.where(dead, -jnp.inf, jnp.where(dead, 0.0, u) / sT + jnp.where(dead, 0.0, c))


def _pair_logp(us: Array, cs: Array, Us: Array, Cs: Array, T: Array) -> Array:
    """``log`` of the share ``exp(u/T + c) / exp(U/T + C)`` of one element in its total.

    All of ``us, cs, Us, Cs`` are finite (the caller masks dead entries). At ``T > 0``:
    ``(u - U) / T + c - C``; at ``T = 0`` the ``T -> 0+`` limit: ``c - C`` on the entries
    tied with the maximum (within :data:`TIE_RTOL`), ``-inf`` elsewhere.
    """
    pos_logp = (us - Us) / _safe_T(T) + cs - Cs
    tie = jnp.abs(us - Us) <= TIE_RTOL * (1.0 + jnp.abs(Us))
    zero_logp = jnp.where(tie, cs - Cs, -jnp.inf)
    return jnp.where(_pos(T), pos_logp, zero_logp)


class LogPair(NamedTuple):
    """An element ``exp(u / T + c)`` of the log semiring at temperature ``T``.

    ``u`` is on the ``T log n`` scale, ``c`` is a natural-log multiplicity.
    """

    u: Array
    c: Array


def _masked_max(u: Array, axis) -> Array:
    return jnp.max(u, axis=axis, keepdims=True, initial=-jnp.inf)


def reduce_pair(u: Array, c: Array, T: Array, axis=-1) -> LogPair:
    r"""Semiring sum of ``exp(u_i / T + c_i)`` over ``axis``, returned as a :class:`LogPair`.

    * ``T > 0``: ``u_out = T logsumexp(u / T + c)``, ``c_out = 0``.
    * ``T = 0``: ``u_out = max u``; ``c_out = logsumexp(c_i)`` over the ``i`` that
      attain the max within :data:`TIE_RTOL` (the exact ``T -> 0+`` multiplicity).

    Entries with ``u = -inf`` or ``c = -inf`` are the semiring zero. An all-zero
    reduction returns ``(-inf, -inf)``, never ``NaN``. With ``u_i = u(s) + R(s, a, s')``
    and ``c_i = c(s) + log K(s, a, s')`` over the predecessors of ``s'`` this is one step
    of ``n_{t+1} = n_t W_T`` (row vectors). The log semiring and its Viterbi limit:
    Goodman (1999).
    """
    T = jnp.asarray(T, dtype=u.dtype)
    u = jnp.where(jnp.isneginf(c), -jnp.inf, u)
    pos = _pos(T)
    sT = _safe_T(T)
    # T > 0 branch: fold c into the exponent, stable LSE.
    z = _exponent(u, c, sT)
    zmax = _masked_max(z, axis)
    zmax_safe = jnp.where(jnp.isfinite(zmax), zmax, 0.0)
    s = jnp.sum(jnp.exp(z - zmax_safe), axis=axis, keepdims=True)
    s_safe = jnp.where(s > 0, s, 1.0)
    lse = jnp.where(s > 0, zmax_safe + jnp.log(s_safe), -jnp.inf)
    u_pos = jnp.where(s > 0, sT * jnp.where(s > 0, lse, 0.0), -jnp.inf)  # NaN-free dT
    # T = 0 branch: max, and the multiplicity of the ties.
    umax = _masked_max(u, axis)
    umax_safe = jnp.where(jnp.isfinite(umax), umax, 0.0)
    tie = jnp.isfinite(u) & (jnp.abs(u - umax_safe) <= TIE_RTOL * (1.0 + jnp.abs(umax_safe)))
    ct = jnp.where(tie, c, -jnp.inf)
    cmax = _masked_max(ct, axis)
    cmax_safe = jnp.where(jnp.isfinite(cmax), cmax, 0.0)
    cs = jnp.sum(jnp.exp(ct - cmax_safe), axis=axis, keepdims=True)
    cs_safe = jnp.where(cs > 0, cs, 1.0)
    c_zero = jnp.where(cs > 0, cmax_safe + jnp.log(cs_safe), -jnp.inf)
    u_out = jnp.where(pos, u_pos, umax)
    c_out = jnp.where(pos, jnp.where(jnp.isneginf(u_pos), -jnp.inf, 0.0), c_zero)
    return LogPair(jnp.squeeze(u_out, axis=axis), jnp.squeeze(c_out, axis=axis))


def reduce(u: Array, T: Array, axis=-1, logw: Array | None = None) -> Array:
    r"""``T log sum_i w_i exp(u_i / T)`` over ``axis`` (max over ``w_i > 0`` at ``T = 0``).

    ``logw`` (broadcastable to ``u``) is the natural log of the weights; ``-inf``
    removes an entry. This is the ``u`` component of :func:`reduce_pair`.
    """
    c = jnp.zeros_like(u) if logw is None else jnp.broadcast_to(logw, u.shape).astype(u.dtype)
    return reduce_pair(u, c, T, axis=axis).u


def scaled_lse(x: Array, T: Array, axis=-1) -> Array:
    """``T * logsumexp(x / T)``; ``max(x)`` at ``T = 0``. Bounded by ``max x + T log n``."""
    return reduce(jnp.asarray(x), T, axis=axis)


def softmax_pair(u: Array, c: Array, T: Array, axis=-1) -> Array:
    """Normalised ``exp(u / T + c)`` over ``axis`` (the ``T -> 0+`` limit at ``T = 0``).

    All-zero input gives all zeros rather than ``NaN``.
    """
    T = jnp.asarray(T, dtype=u.dtype)
    tot = reduce_pair(u, c, T, axis=axis)
    U = jnp.expand_dims(tot.u, axis)
    C = jnp.expand_dims(tot.c, axis)
    finite = jnp.isfinite(U)
    Us = jnp.where(finite, U, 0.0)
    Cs = jnp.where(jnp.isfinite(C), C, 0.0)
    live = jnp.isfinite(u) & ~jnp.isneginf(c)
    us = jnp.where(live, u, Us)
    cs = jnp.where(live, c, 0.0)
    logp = _pair_logp(us, cs, Us, Cs, T)
    return jnp.where(live & finite, jnp.exp(logp), 0.0)


__all__ += ["softmax_pair"]


def segment_lse(z: Array, segment_ids: Array, num_segments: int) -> Array:
    r"""``log sum_{i: seg(i) = k} exp z_i`` for each segment ``k`` (``T = 1``).

    The segment (successor-list) layout of the log-semiring sum: a stable max-shifted
    log-sum-exp with ``jax.ops.segment_max`` / ``segment_sum``; an empty or all ``-inf``
    segment gives ``-inf``, never ``NaN``.
    """
    import jax.ops

    zmax = jax.ops.segment_max(z, segment_ids, num_segments=num_segments)
    zmax_safe = jnp.where(jnp.isfinite(zmax), zmax, 0.0)
    s = jax.ops.segment_sum(
        jnp.exp(z - zmax_safe[segment_ids]), segment_ids, num_segments=num_segments
    )
    return jnp.where(s > 0, zmax_safe + jnp.log(jnp.where(s > 0, s, 1.0)), -jnp.inf)


def segment_reduce_pair(
    u: Array, c: Array, segment_ids: Array, num_segments: int, T: Array
) -> LogPair:
    r""":func:`reduce_pair` over groups: entries with equal ``segment_ids`` are summed.

    .. math:: (u, c)_k = \bigoplus_{T,\, i:\, seg(i) = k} (u_i, c_i)

    The sparse counterpart of a reduction over an axis (``jax.ops.segment_*``), used to
    push a population along successor lists without a dense ``S x S`` matrix: with
    ``seg = next_state`` it is one step ``n -> n W_T`` (row vectors). Same ``T = 0`` tie
    rule as :func:`reduce_pair` (Goodman 1999, the log / Viterbi semirings).
    """
    import jax.ops

    T = jnp.asarray(T, dtype=u.dtype)
    u = jnp.where(jnp.isneginf(c), -jnp.inf, u)
    pos = _pos(T)
    sT = _safe_T(T)
    z = _exponent(u, c, sT)
    lse_seg = segment_lse(z, segment_ids, num_segments)
    some = jnp.isfinite(lse_seg)
    u_pos = jnp.where(some, sT * jnp.where(some, lse_seg, 0.0), -jnp.inf)  # NaN-free dT
    umax = jax.ops.segment_max(u, segment_ids, num_segments=num_segments)
    umax_safe = jnp.where(jnp.isfinite(umax), umax, 0.0)
    um = umax_safe[segment_ids]
    tie = jnp.isfinite(u) & (jnp.abs(u - um) <= TIE_RTOL * (1.0 + jnp.abs(um)))
    c_zero = segment_lse(jnp.where(tie, c, -jnp.inf), segment_ids, num_segments)
    u_out = jnp.where(pos, u_pos, umax)
    c_out = jnp.where(pos, jnp.where(jnp.isneginf(u_pos), -jnp.inf, 0.0), c_zero)
    return LogPair(u_out, c_out)


def segment_softmax_pair(
    u: Array, c: Array, seg: Array, num: int, T: Array
) -> tuple[Array, Array, LogPair]:
    r"""Normalised weights ``p_i = exp(u_i/T + c_i) / sum_{j in seg(i)} exp(u_j/T + c_j)``.

    Returns ``(p, log p, total)`` with ``total`` the :class:`LogPair` of each segment
    (:func:`segment_reduce_pair`). At ``T = 0``: the ``T -> 0+`` limit, ``p_i = exp(c_i - C)``
    on the entries tied (within :data:`TIE_RTOL`) with the segment max and 0 elsewhere.
    Zero-weight entries get ``p = 0`` and ``log p = -inf``; no ``NaN``. The segment
    counterpart of :func:`softmax_pair` (used by the entropy semiring's "plus").
    """
    T = jnp.asarray(T, dtype=u.dtype)
    tot = segment_reduce_pair(u, c, seg, num, T)
    U = tot.u[seg]
    C = tot.c[seg]
    live = jnp.isfinite(u) & jnp.isfinite(c) & jnp.isfinite(U)
    us = jnp.where(live, u, 0.0)
    cs = jnp.where(live, c, 0.0)
    Us = jnp.where(live, U, 0.0)
    Cs = jnp.where(live & jnp.isfinite(C), C, 0.0)
    logp = jnp.where(live, _pair_logp(us, cs, Us, Cs, T), -jnp.inf)
    p = jnp.exp(logp)
    return p, logp, tot


__all__ += ["segment_lse", "segment_reduce_pair", "segment_softmax_pair"]


# ------------------------------------------------------------ shared building blocks
# Every consumer of the toolkit takes these from here rather than re-deriving them:
# the T -> 0 rule for an initial population, normalisation of a pair, the plain
# (T = 1) log-sum-exp and the Boltzmann exponent with its T = 0 limit.


def init_pair(x0: Array, T: Array) -> LogPair:
    r"""The log-semiring element of a non-negative vector ``x0`` at temperature ``T``.

    ``x0 = exp(u / T + c)`` with ``u = T log x0`` and ``c = 0`` at ``T > 0``; at ``T = 0``
    ``u = 0`` on the support and the weight moves into the multiplicity, ``c = log x0``
    (so ties between start states are shared by their initial mass, the exact
    ``T -> 0+`` limit). Zero entries are the semiring zero ``(-inf, -inf)``.
    """
    pos = x0 > 0
    return init_log_pair(jnp.where(pos, jnp.log(jnp.where(pos, x0, 1.0)), -jnp.inf), T)


def init_log_pair(logx0: Array, T: Array) -> LogPair:
    """:func:`init_pair` from ``log x0`` (``-inf`` entries are the semiring zero)."""
    pos = jnp.isfinite(logx0)
    lx = jnp.where(pos, logx0, 0.0)
    u0 = jnp.where(pos, T * lx, -jnp.inf)
    c0 = jnp.where(pos, jnp.where(_pos(T), 0.0, lx), -jnp.inf)
    return LogPair(u0, c0)


def normalise_pair(u: Array, c: Array, T: Array, axis=0) -> tuple[Array, Array, Array]:
    """``(u - U, c - C, U)`` with ``(U, C)`` the semiring total over ``axis``.

    Dividing a population by its total, in the log domain: afterwards the pair sums to
    the semiring one, and ``U`` (``T log`` of the total) is what was taken out. An
    all-zero input is left as it is (``U = -inf``, no ``NaN``).
    """
    tot = reduce_pair(u, c, T, axis=axis)
    Us = jnp.where(jnp.isfinite(tot.u), tot.u, 0.0)
    Cs = jnp.where(jnp.isfinite(tot.c), tot.c, 0.0)
    if u.ndim > 1:
        Us = jnp.expand_dims(Us, axis)
        Cs = jnp.expand_dims(Cs, axis)
    return u - Us, c - Cs, tot.u


def lse(x: Array, axis=-1, keepdims: bool = False) -> Array:
    """``log sum exp x`` over ``axis`` at ``T = 1`` (``-inf`` for an all ``-inf`` slice).

    The ordinary log-semiring sum, for log-probabilities and log-weights that carry no
    temperature (normalising a log distribution, marginalising a log kernel).
    """
    import jax.nn

    return jax.nn.logsumexp(x, axis=axis, keepdims=keepdims)


def plus(a: Array, b: Array) -> Array:
    """The binary log-semiring sum at ``T = 1``: ``log(e^a + e^b)`` (``jnp.logaddexp``)."""
    return jnp.logaddexp(a, b)


def probabilities(x: Array, axis=-1) -> Array:
    """``exp(x - max x) / sum exp(x - max x)`` over ``axis`` (``jax.nn.softmax``).

    Normalises in probability space, so in float32 it rounds at ``ulp(1)`` rather than
    at ``ulp(lse x)`` as ``exp(log_normalise(x))`` does: the form neural-network
    attention is written in.
    """
    import jax.nn

    return jax.nn.softmax(x, axis=axis)


def log_probabilities(x: Array, axis=-1) -> Array:
    """``x - max x - log sum exp(x - max x)`` over ``axis`` (``jax.nn.log_softmax``)."""
    import jax.nn

    return jax.nn.log_softmax(x, axis=axis)


def log_normalise(x: Array, axis=-1) -> Array:
    """``x - lse(x)`` over ``axis``: log-probabilities from log-weights (``T = 1``)."""
    return x - lse(x, axis=axis, keepdims=True)


def boltzmann_exponent(u: Array, umax: Array, T: Array) -> Array:
    r"""``(u - umax) / T``, and its ``T -> 0+`` limit at ``T = 0``: ``0`` where
    ``u >= umax`` and ``-inf`` elsewhere.

    ``exp`` of it is the Boltzmann weight ``exp(u / T)`` relative to the largest one
    (``umax`` is the caller's maximum, so the result is ``<= 0`` and never overflows).
    """
    Tsafe = _safe_T(T)
    return jnp.where(_pos(T), (u - umax) / Tsafe, jnp.where(u >= umax, 0.0, -jnp.inf))


__all__ += [
    "boltzmann_exponent",
    "init_log_pair",
    "init_pair",
    "log_normalise",
    "log_probabilities",
    "lse",
    "normalise_pair",
    "plus",
    "probabilities",
]
