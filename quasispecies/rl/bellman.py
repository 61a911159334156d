r"""Finite-horizon Bellman backward induction, expected and optimistic.

With ``H - t`` steps to go and ``V_H = 0`` (R. Bellman, *Dynamic Programming*, 1957):

* **expected** (Bellman's optimality equation):
  ``Q_t(s,a) = sum_{s'} P(s'|s,a) [R(s,a,s') + gamma V_{t+1}(s')]``, ``V_t = max_a Q_t``;
* **optimistic** (the ``T -> 0`` limit of the path sum, max-plus semiring):
  ``Q^+_t(s,a) = max_{s' in supp P(.|s,a)} [R + gamma V^+_{t+1}(s')]``, ``V^+_t = max_a Q^+_t``.

``V^+_H(s0) = max_{s'} u^0_H(s')`` is ``T log`` of the population grown from ``delta_{s0}``
as ``T -> 0``, with the row-vector convention ``n_{t+1} = n_t W_T``,
``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)``. It equals ``V^*_H`` for
deterministic transitions and exceeds it in general.

Arrays: values ``(S,)``, Q-values ``(S, A)`` with ``-inf`` on disallowed actions,
time-indexed tables ``(H, S, A)`` with row ``t`` = ``H - t`` steps to go. A state from
which no path of the required length exists has value ``-inf``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.model.mdp import check_mdp
from quasispecies.model.validate import check_nonneg_int
from quasispecies.rl.common import check_discount, discounted, expected_backup, raw_arrays

__all__ = ["OPT_RTOL", "Values", "finite_horizon_q", "finite_horizon_values", "optimal_actions"]

#: Two Q-values within ``OPT_RTOL * (1 + |Q|)`` count as tied optimal actions.
OPT_RTOL = 1e-9


class Values(NamedTuple):
    """``(expected, optimistic)``: Bellman ``V*_H`` and the best-path value ``V+_H``, each (S,)."""

    expected: np.ndarray
    optimistic: np.ndarray


def _bellman_step(ve, vo, ns, prob, r, live, safe, discount):
    nve = discounted(ve, discount)[ns]
    nvo = discounted(vo, discount)[ns]
    qe = expected_backup(nve, prob, r, live, safe)
    # max-plus "plus" over the successors of positive probability (semiring zero -inf)
    qo = jnp.max(jnp.where(live, r + nvo, -jnp.inf), axis=-1)
    return qe, qo


@partial(jax.jit, static_argnames=("horizon",))
def _bellman_kernel(ns, prob, r, live, safe, discount, horizon: int):
    S, A = live.shape[:2]

    def step(carry, _):
        ve, vo = carry
        qe, qo = _bellman_step(ve, vo, ns, prob, r, live, safe, discount)
        nv = (jnp.max(qe, axis=-1), jnp.max(qo, axis=-1))
        return nv, (qe, qo)

    z = jnp.zeros((S,), r.dtype)
    if horizon == 0:
        empty = jnp.zeros((0, S, A), r.dtype)
        return z, z, empty, empty
    (ve, vo), (qe, qo) = jax.lax.scan(step, (z, z), None, length=horizon, reverse=True)
    return ve, vo, qe, qo


def finite_horizon_q(
    mdp, horizon: int, *, discount: float = 1.0, optimistic: bool = False
) -> np.ndarray:
    r"""``Q_t(s, a)`` for ``t = 0 .. H-1`` (``H - t`` steps to go), shape ``(H, S, A)``.

    Expected (Bellman 1957): ``Q_t(s,a) = sum_{s'} P[s,a,s'] (R[s,a,s'] + gamma V_{t+1}(s'))``,
    ``V_t = max_a Q_t``. Optimistic: ``Q^+_t(s,a) = max_{s': P[s,a,s'] > 0} (R + gamma V^+_{t+1})``
    (max-plus). ``V_H = 0``; ``-inf`` on disallowed actions and where no path of the
    remaining length exists.
    """
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    g = check_discount(discount, allow_one=True)
    ns, prob, _, _, r, live, safe = raw_arrays(mdp)
    _, _, qe, qo = _bellman_kernel(ns, prob, r, live, safe, g, horizon)
    return np.asarray(qo if optimistic else qe)


def finite_horizon_values(mdp, horizon: int, *, discount: float = 1.0) -> Values:
    r"""Bellman ``V*_H`` and optimistic ``V+_H`` by backward induction (DESIGN §4).

    .. math::
       V^*_t(s) = \max_a \sum_{s'} P(s'|s,a)\,[R(s,a,s') + \gamma V^*_{t+1}(s')], \qquad
       V^+_t(s) = \max_{a,\; s': P > 0} [R(s,a,s') + \gamma V^+_{t+1}(s')],

    ``V_H = 0``; returns ``(V*_0, V+_0)`` (R. Bellman, *Dynamic Programming*, 1957).
    ``V+_H(s0) = max_{s'} u^0_H(s')`` is the ``T -> 0`` limit of ``T log`` of the row
    vector ``n_H = delta_{s0} W_T^H``; it equals ``V*_H`` for deterministic transitions
    and exceeds it in general. ``-inf`` where no path of ``H`` steps exists (dead ends
    count as ``-inf`` reward).
    """
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    g = check_discount(discount, allow_one=True)
    ns, prob, _, _, r, live, safe = raw_arrays(mdp)
    ve, vo, _, _ = _bellman_kernel(ns, prob, r, live, safe, g, horizon)
    return Values(np.asarray(ve), np.asarray(vo))


def optimal_actions(q: np.ndarray, rtol: float = OPT_RTOL) -> np.ndarray:
    """Boolean mask of the maximising actions ``argmax_a q[..., a]`` (ties within ``rtol``).

    ``q[..., a]`` is a Q-table (last axis = action, e.g. :func:`finite_horizon_q`); action
    ``a`` is optimal when ``q[a] >= max q - rtol (1 + |max q|)`` and finite (Bellman 1957).
    """
    q = np.asarray(q, dtype=np.float64)
    best = np.max(q, axis=-1, keepdims=True)
    fin = np.isfinite(best)
    bs = np.where(fin, best, 0.0)
    return fin & np.isfinite(q) & (q >= bs - rtol * (1.0 + np.abs(bs)))
