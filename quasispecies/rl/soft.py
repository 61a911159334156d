r"""Soft (entropy-regularised) value iteration: the path-integral and expectation forms.

The backward messages of the path sum are value functions on the ``T log`` scale
(row-vector convention ``n_{t+1} = n_t W_T``,
``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)``). With ``V_H = 0``:

* **path-integral (log-E-exp) form**, the quasispecies' own recursion,
  ``Q(s,a) = T log sum_{s'} P(s'|s,a) exp([R + gamma V(s')] / T)``,
  ``V(s) = T log sum_a pi0(a|s) exp(Q(s,a) / T)``. For ``gamma = 1``,
  ``V_t = T log (W_T^{H-t} 1)``; as ``T -> 0`` both sums become maxima (the optimistic
  value ``V^+``, Maslov dequantization). For deterministic ``P`` this is the
  linearly-solvable (KL-regularised) MDP of E. Todorov, PNAS 106 (2009); Kappen 2005.
* **expectation form** (soft VI; Ziebart 2008, Levine 2018):
  ``Q(s,a) = sum_{s'} P (R + gamma V(s'))`` with the same soft maximum over actions; as
  ``T -> 0`` Bellman's optimality equation, ``V -> V^*``.

Every log-sum-exp is :func:`quasispecies.semiring.reduce` and every policy
:func:`quasispecies.semiring.softmax_pair` (max-plus, with the exact ``T -> 0+`` tie
rule, at ``T = 0``).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.model.mdp import check_mdp
from quasispecies.model.validate import check_nonneg_int, check_temperature
from quasispecies.rl.common import check_discount, discounted, expected_backup, raw_arrays
from quasispecies.semiring import reduce, softmax_pair

__all__ = ["SoftValues", "path_integral_values", "soft_value_iteration"]


class SoftValues(NamedTuple):
    """Result of :func:`soft_value_iteration`.

    values : (S,) ``V`` (for a finite horizon: ``V_0``, all ``H`` steps to go).
    q : (S, A) ``Q`` of the first decision (``-inf`` where not allowed).
    policy : (S, A) ``pi(a|s) ∝ pi0(a|s) exp(Q/T)`` (``actions="max"``: uniform on argmax).
    iterations : backups applied.
    """

    values: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    iterations: np.ndarray


def _soft_backup(V, ns, prob, logP, logpi0, r, live, safe, T, discount, form: str, actions: str):
    nv = discounted(V, discount)[ns]
    allowed = jnp.isfinite(logpi0)
    if form == "expectation":
        Q = expected_backup(nv, prob, r, live, safe)
    else:
        Q = reduce(jnp.where(live, r + nv, -jnp.inf), T, axis=-1, logw=logP)
        Q = jnp.where(allowed, Q, -jnp.inf)
    if actions == "soft":
        Vn = reduce(Q, T, axis=-1, logw=logpi0)
        pi = softmax_pair(Q, logpi0, T, axis=-1)
    else:
        Vn = jnp.max(Q, axis=-1)
        flat = jnp.where(allowed, 0.0, -jnp.inf)
        pi = softmax_pair(Q, flat, jnp.zeros_like(T), axis=-1)
    return Vn, Q, pi


@partial(jax.jit, static_argnames=("horizon", "form", "actions"))
def _soft_finite(arrays, T, discount, horizon: int, form: str, actions: str):
    ns, prob, logP, logpi0, r, live, safe = arrays
    T = jnp.asarray(T, r.dtype)
    S, A = logpi0.shape
    V = jnp.zeros((S,), r.dtype)
    Q = jnp.full((S, A), -jnp.inf, r.dtype)
    pi = jnp.zeros((S, A), r.dtype)

    def step(carry, _):
        V, _, _ = carry
        return _soft_backup(
            V, ns, prob, logP, logpi0, r, live, safe, T, discount, form, actions
        ), None

    (V, Q, pi), _ = jax.lax.scan(step, (V, Q, pi), None, length=horizon)
    return V, Q, pi, jnp.asarray(horizon)


@partial(jax.jit, static_argnames=("form", "actions", "max_iter"))
def _soft_infinite(arrays, T, discount, tol, form: str, actions: str, max_iter: int):
    ns, prob, logP, logpi0, r, live, safe = arrays
    T = jnp.asarray(T, r.dtype)
    S, A = logpi0.shape

    def cond(state):
        it, _, _, _, delta = state
        return (it < max_iter) & (delta > tol)

    def body(state):
        it, V, _, _, _ = state
        Vn, Q, pi = _soft_backup(
            V, ns, prob, logP, logpi0, r, live, safe, T, discount, form, actions
        )
        both = jnp.isfinite(Vn) & jnp.isfinite(V)
        same_inf = jnp.isneginf(Vn) & jnp.isneginf(V)
        diff = jnp.where(both, jnp.abs(Vn - V), jnp.where(same_inf, 0.0, jnp.inf))
        return it + 1, Vn, Q, pi, jnp.max(diff)

    init = (
        jnp.zeros((), jnp.int32),
        jnp.zeros((S,), r.dtype),
        jnp.full((S, A), -jnp.inf, r.dtype),
        jnp.zeros((S, A), r.dtype),
        jnp.asarray(jnp.inf, r.dtype),
    )
    it, V, Q, pi, delta = jax.lax.while_loop(cond, body, init)
    return V, Q, pi, it, delta


def soft_value_iteration(
    mdp,
    T,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
    form: str = "expectation",
    actions: str = "soft",
    tol: float = 1e-12,
    max_iter: int = 100_000,
) -> SoftValues:
    r"""Soft (entropy-regularised) value iteration in either of its two forms.

    ``form="expectation"`` (soft VI; Ziebart et al. 2008, Levine 2018 §4):
    ``Q(s,a) = sum_{s'} P (R + gamma V(s'))``.
    ``form="path_integral"`` (the quasispecies recursion; Kappen 2005, Todorov 2009):
    ``Q(s,a) = T log sum_{s'} P exp((R + gamma V(s')) / T)``.
    ``actions="soft"``: ``V(s) = T log sum_a pi0(a|s) exp(Q(s,a)/T)`` (KL-regularised to
    ``pi0``; the replicator dynamics); ``actions="max"``: ``V = max_a Q`` (only the
    transitions are softened: the exponential-utility Bellman operator).

    ``horizon=H`` applies ``H`` backups from ``V = 0``; ``horizon=None`` iterates the
    ``gamma``-contraction (``discount < 1``) until successive values differ by at most
    ``tol`` (so the error is at most ``tol gamma / (1 - gamma)``). At ``T = 0``:
    ``expectation`` gives Bellman's ``V*``, ``path_integral`` the optimistic ``V+``.
    ``T`` may be a 1-D array (a ``vmap``-ed sweep). For ``gamma = 1`` the path-integral
    ``V`` with ``horizon=H`` is ``T log (W_T^H 1)(s)``, ``W_T[s, s'] =
    sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)`` (row-vector convention, ``n_{t+1} = n_t W_T``).
    Reference: E. Todorov, "Efficient computation of optimal actions", PNAS 106 (2009).
    """
    mdp = check_mdp(mdp)
    if form not in ("expectation", "path_integral"):
        raise ValueError(f"form: expected 'expectation' or 'path_integral', got {form!r}")
    if actions not in ("soft", "max"):
        raise ValueError(f"actions: expected 'soft' or 'max', got {actions!r}")
    Ts, sweep = check_temperature(T)
    arrays = raw_arrays(mdp)
    if horizon is not None:
        horizon = check_nonneg_int(horizon, "horizon")
        g = check_discount(discount, allow_one=True)

        def fn(t):
            return _soft_finite(arrays, t, g, horizon, form, actions)
    else:
        g = check_discount(discount, allow_one=False)
        max_iter = check_nonneg_int(max_iter, "max_iter", minimum=1)
        if not tol > 0:
            raise ValueError(f"tol: must be > 0, got {tol!r}")

        def fn(t):
            V, Q, pi, it, _ = _soft_infinite(arrays, t, g, tol, form, actions, max_iter)
            return V, Q, pi, it

    out = jax.vmap(fn)(jnp.asarray(Ts)) if sweep else fn(jnp.asarray(Ts))
    V, Q, pi, it = (np.asarray(a) for a in out)
    if horizon is None and (it >= max_iter).any():
        raise RuntimeError(
            f"soft_value_iteration: no convergence to tol={tol} in {max_iter} backups"
        )
    return SoftValues(V, Q, pi, it)


def path_integral_values(mdp, T, **kwargs) -> SoftValues:
    r""":func:`soft_value_iteration` with ``form="path_integral"`` (same keywords).

    ``Q(s,a) = T log sum_{s'} P(s'|s,a) exp([R + gamma V(s')]/T)``,
    ``V(s) = T log sum_a pi0(a|s) exp(Q(s,a)/T)``: with ``gamma = 1`` and ``horizon=H``,
    ``V = T log (W_T^H 1)``, the backward message of the path sum (row-vector
    ``n_{t+1} = n_t W_T``); at ``T = 0`` the optimistic value ``V^+`` (max-plus).
    Reference: E. Todorov, PNAS 106 (2009).
    """
    return soft_value_iteration(mdp, T, form="path_integral", **kwargs)
