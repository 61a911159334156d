r"""Replication operators in the log semiring: one forward step, and the dense log matrix.

Row-vector convention: a population is a row vector ``n`` and ``n_{t+1} = n_t W_T``,
``W_T[s, s'] = sum_a K[s, a, s'] exp(R[s, a, s'] / T)``. In the log domain, with an
element written ``exp(u / T + c)`` (see :mod:`quasispecies.semiring.core`):

* forward (population, :func:`forward`)
  ``u'(s') = (+)_{s, a, b: next_state[s,a,b] = s'} [u(s) + R(s,a,b)]`` with
  multiplicity ``c(s) + log K(s,a,b)``.

At ``T > 0`` this is ``T log`` of the linear update ``n W_T``; at ``T = 0`` the max-plus
update. The backward step (values / messages, ``z -> W_T z``) is
:func:`quasispecies.semiring.ext.backward_scan`, the one backward programme. Dense MDPs reduce over
axes; sparse ones (``S`` up to ``10^6``) use segment reductions, never an ``S x S``
matrix. These helpers are traced inside the jitted public kernels; they are not
jitted themselves.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

from quasispecies.semiring.core import LogPair, reduce_pair, segment_reduce_pair

__all__ = ["forward", "log_weight_matrix"]


def forward(
    u: Array, c: Array, next_state: Array, log_kernel: Array, reward: Array, T: Array, dense: bool
) -> LogPair:
    r"""One replication step ``n -> n W_T`` (row vector) in the log semiring.

    ``(u', c')(s') = (+)_T over (s, a, b) with next_state[s,a,b] = s'`` of
    ``(u(s) + R(s,a,b), c(s) + log K(s,a,b))``, ``K = pi0 P``: at ``T > 0``,
    ``exp(u'/T + c') = sum_s exp(u(s)/T + c(s)) W_T[s, s']``; at ``T = 0`` the max-plus
    step with tie multiplicities. ``dense`` MDPs (``next_state[s, a, b] = b``) reduce over
    an axis (:func:`~quasispecies.semiring.core.reduce_pair`), sparse ones over segments
    (:func:`~quasispecies.semiring.core.segment_reduce_pair`).
    """
    S, A, B = log_kernel.shape
    U = u[:, None, None] + reward
    C = c[:, None, None] + log_kernel
    if dense:
        return reduce_pair(U.reshape(S * A, B), C.reshape(S * A, B), T, axis=0)
    return segment_reduce_pair(U.ravel(), C.ravel(), next_state.ravel(), S, T)


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
