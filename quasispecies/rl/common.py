"""Inputs shared by the RL solvers: the discount check and the MDP as JAX arrays.

Arrays: ``P[s, a, s']`` row-stochastic per allowed ``(s, a)`` (stored as successor lists
``next_state[s, a, b]``, ``prob[s, a, b]``), ``R[s, a, s']``, ``pi0[s, a]``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

from quasispecies.model.mdp import MDP
from quasispecies.model.validate import as_float_array

__all__ = ["check_discount", "discounted", "expected_backup", "raw_arrays"]


def check_discount(discount, *, allow_one: bool) -> float:
    """``discount`` as a float in ``[0, 1]`` (``[0, 1)`` unless ``allow_one``), else ``ValueError``."""
    g = float(as_float_array(discount, "discount", ndim=0))
    if not (0.0 <= g <= 1.0) or (g == 1.0 and not allow_one):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"discount: must lie in {bound}, got {g!r}")
    return g


def raw_arrays(mdp: MDP):
    """``(next_state, prob, log P, log pi0, reward, live, safe)`` as JAX arrays.

    ``live[s, a, b]``: the transition has positive kernel weight and finite reward.
    ``safe[s, a]``: the action is allowed and none of its successors of positive
    probability has reward ``-inf`` (the expectation of such an action is ``-inf``;
    in the path sum that outcome merely carries no weight).
    """
    lk = mdp.log_kernel
    live = np.isfinite(lk)
    allowed = live.any(axis=2)
    with np.errstate(divide="ignore"):
        logpi0 = np.where(allowed, np.log(mdp.pi0), -np.inf)
        logP = np.where(live, np.log(mdp.prob), -np.inf)
    safe = allowed & ~((mdp.prob > 0) & ~live).any(axis=2)
    r = np.where(live, mdp.reward, 0.0)
    prob = np.where(live, mdp.prob, 0.0)
    return (
        jnp.asarray(mdp.next_state),
        jnp.asarray(prob),
        jnp.asarray(logP),
        jnp.asarray(logpi0),
        jnp.asarray(r),
        jnp.asarray(live),
        jnp.asarray(safe),
    )


def discounted(v: Array, discount) -> Array:
    """``gamma v`` with ``-inf`` (no path) kept at ``-inf`` and no ``0 * inf`` NaN."""
    return jnp.where(jnp.isneginf(v), -jnp.inf, discount * jnp.where(jnp.isneginf(v), 0.0, v))


def expected_backup(nv: Array, prob: Array, r: Array, live: Array, safe: Array) -> Array:
    r"""Bellman's expected backup ``Q(s,a) = sum_b P[s,a,b] (R[s,a,b] + nv[s,a,b])``.

    ``nv[s, a, b]`` is the (discounted) value of successor ``next_state[s, a, b]``. ``-inf``
    where the action is not ``safe`` or a live successor has value ``-inf`` (no path).
    """
    ue = jnp.where(live, prob * jnp.where(live, r + nv, 0.0), 0.0)
    dead_succ = (live & jnp.isneginf(nv)).any(axis=-1)
    return jnp.where(safe & ~dead_succ, jnp.sum(ue, axis=-1), -jnp.inf)
