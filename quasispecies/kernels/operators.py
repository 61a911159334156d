r"""Replication operators in the log semiring: one step forward or backward.

Row-vector convention: a population is a row vector ``n`` and ``n_{t+1} = n_t W_T``,
``W_T[s, s'] = sum_a K[s, a, s'] exp(R[s, a, s'] / T)``. In the log domain, with an
element written ``exp(u / T + c)`` (see :mod:`quasispecies.semiring.core`):

* forward (population, :func:`forward`)
  ``u'(s') = (+)_{s, a, b: next_state[s,a,b] = s'} [u(s) + R(s,a,b)]`` with
  multiplicity ``c(s) + log K(s,a,b)``;
* backward (values / messages, :func:`backward`)
  ``v'(s) = (+)_{a, b} [R(s,a,b) + v(next_state[s,a,b])]`` with multiplicity
  ``log K(s,a,b) + d(next_state)``.

At ``T > 0`` these are ``T log`` of the linear updates ``n W_T`` and ``W_T z``; at
``T = 0`` they are the max-plus (Bellman "optimistic") updates. Dense MDPs reduce over
axes; sparse ones (``S`` up to ``10^6``) use segment reductions, never an ``S x S``
matrix. These helpers are traced inside the jitted public kernels; they are not
jitted themselves.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

from quasispecies.semiring.core import LogPair, reduce_pair, segment_reduce_pair

__all__ = ["backward", "forward", "log_weight_matrix"]


def forward(
    u: Array, c: Array, next_state: Array, log_kernel: Array, reward: Array, T: Array, dense: bool
) -> LogPair:
    """One replication step ``n -> n W_T`` in the log semiring (see module docstring)."""
    S, A, B = log_kernel.shape
    U = u[:, None, None] + reward
    C = c[:, None, None] + log_kernel
    if dense:
        return reduce_pair(U.reshape(S * A, B), C.reshape(S * A, B), T, axis=0)
    return segment_reduce_pair(U.ravel(), C.ravel(), next_state.ravel(), S, T)


def backward(
    v: Array, d: Array, next_state: Array, log_kernel: Array, reward: Array, T: Array
) -> LogPair:
    """One backward step ``z -> W_T z`` in the log semiring (see module docstring)."""
    S = log_kernel.shape[0]
    U = reward + v[next_state]
    C = log_kernel + d[next_state]
    return reduce_pair(U.reshape(S, -1), C.reshape(S, -1), T, axis=-1)


def log_weight_matrix(mdp, T: float) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``(S, S)`` pair ``(A, C)`` with ``W_T[s, s'] = exp(A / T + C)``.

    ``A = T log W_T`` (and ``C = 0``) at ``T > 0``; at ``T = 0`` ``A`` is the max-plus
    weight ``max_a R`` over allowed transitions and ``C`` the log kernel weight of the
    maximising transitions. ``-inf`` marks "no edge". ``O(S^2)`` memory: for small and
    medium ``S`` only.
    """
    ns, lk, r = mdp.arrays()
    S = lk.shape[0]
    seg = (jnp.arange(S)[:, None, None] * S + ns).ravel()
    out = segment_reduce_pair(r.ravel(), lk.ravel(), seg, S * S, jnp.asarray(T, dtype=r.dtype))
    return np.asarray(out.u).reshape(S, S), np.asarray(out.c).reshape(S, S)
