"""The log semiring on the host (NumPy), for code that runs outside JAX.

Same rules as :mod:`quasispecies.semiring.core` at ``T = 1``: ``-inf`` is the zero, an
all-zero reduction is ``-inf`` (never ``NaN``, never a warning). Used where the data
are ragged or live in NumPy already (token trees, path tables, the Hamming-class
refinement in extended precision).
"""

from __future__ import annotations

import numpy as np
import scipy.special

from quasispecies.semiring.core import TIE_RTOL

__all__ = [
    "log_normalise",
    "lse",
    "plus",
    "segment_lse",
    "share",
    "softmax_pair",
    "sorted_segment_lse",
]


def lse(a, axis=None, keepdims: bool = False) -> np.ndarray:
    """``log sum exp a`` over ``axis`` (``-inf`` for an empty or all ``-inf`` slice)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return scipy.special.logsumexp(a, axis=axis, keepdims=keepdims)


def log_normalise(a, axis=-1) -> np.ndarray:
    """``a - lse(a)`` over ``axis``: log-probabilities from log-weights."""
    a = np.asarray(a, dtype=float)
    return a - lse(a, axis=axis, keepdims=True)


def segment_lse(vals, seg, num: int) -> np.ndarray:
    """``log sum exp`` of ``vals`` grouped by ``seg`` in ``[0, num)`` (``-inf`` if empty)."""
    vals = np.asarray(vals, dtype=float)
    seg = np.asarray(seg)
    m = np.full(num, -np.inf)
    np.maximum.at(m, seg, vals)
    ms = np.where(np.isfinite(m), m, 0.0)
    tot = np.zeros(num)
    np.add.at(tot, seg, np.exp(vals - ms[seg]))
    with np.errstate(divide="ignore"):
        return np.where(tot > 0, ms + np.log(np.where(tot > 0, tot, 1.0)), -np.inf)


def sorted_segment_lse(vals, starts) -> np.ndarray:
    """``log sum exp`` of contiguous runs ``vals[starts[i]:starts[i+1]]`` (``reduceat``)."""
    return np.logaddexp.reduceat(np.asarray(vals, dtype=float), np.asarray(starts))


def _ties(x: np.ndarray, U: float) -> np.ndarray:
    """Entries of ``x`` tied with the maximum ``U`` (within ``TIE_RTOL``, as the JAX side)."""
    return np.abs(x - U) <= TIE_RTOL * (1.0 + abs(U))


def softmax_pair(u, c, T: float) -> np.ndarray:
    r"""Normalised ``exp(u / T + c)`` of a vector on the host, for ``c = 0`` at ``T > 0``.

    ``T > 0``: ``softmax(u / T)``. ``T = 0``: the ``T -> 0+`` limit of
    :func:`quasispecies.semiring.core.softmax_pair`, ``exp(c)`` normalised over the
    entries tied with ``max u`` (within :data:`~quasispecies.semiring.core.TIE_RTOL`).
    ``-inf`` entries of ``u`` get 0; all zeros if every entry is ``-inf``.
    """
    u = np.asarray(u, dtype=float)
    c = np.asarray(c, dtype=float)
    fin = np.isfinite(u)
    out = np.zeros_like(u)
    if not fin.any():
        return out
    U = u[fin].max()
    if T > 0:
        z = (u[fin] - U) / T
    else:
        cc = np.where(_ties(u[fin], U), c[fin], -np.inf)
        z = cc - cc.max()
    out[fin] = np.exp(z)
    return out / out.sum()


def plus(a, b, out=None) -> np.ndarray:
    """The binary log-semiring sum ``log(e^a + e^b)`` elementwise (``np.logaddexp``)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.logaddexp(a, b, out=out)


def share(log_weight, reward, log_prior, scaled_log_partition, log_multiplicity, T: float):
    """Shares ``exp(u/T + c) / exp(U/T + C)`` of elements against a known total, scalar ``T``.

    The host form of :func:`quasispecies.semiring.softmax_pair` for when only some of the
    elements are at hand (the top-k paths of a path sum) and the total ``(U, C)`` is
    known from the full reduction:

    * ``T > 0``: ``exp(log_weight - U / T)`` (``log_weight = log_prior + reward / T``);
    * ``T = 0``: the ``T -> 0+`` limit, ``exp(log_prior - C)`` on the elements whose
      reward ties with ``U = max`` (within :data:`~quasispecies.semiring.TIE_RTOL`), 0
      elsewhere.

    An empty total (``U = -inf``) gives zeros.
    """
    U = float(scaled_log_partition)
    if not np.isfinite(U):
        return np.zeros(np.shape(log_weight))
    if T > 0:
        return np.exp(log_weight - U / T)
    return np.where(_ties(reward, U), np.exp(log_prior - float(log_multiplicity)), 0.0)
