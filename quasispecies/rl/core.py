r"""Reinforcement learning as the ``T -> 0`` limit of selection, and where the limit differs.

Backward messages of the path sum (:mod:`quasispecies.paths.core`) are value functions on the
``T log`` scale. With ``H - t`` steps to go and ``V_H = 0``:

* **path-integral (log-E-exp) form** — the quasispecies' own recursion,
  ``Q_t(s,a) = T log sum_{s'} P(s'|s,a) exp([R + gamma V_{t+1}(s')] / T)``,
  ``V_t(s) = T log sum_a pi0(a|s) exp(Q_t(s,a) / T)``. For ``gamma = 1`` it is
  ``T log (W_T^{H-t} 1)(s)``: ``T log`` of the population grown from ``delta_s``. As
  ``T -> 0`` both log-sum-exps become maxima: the **optimistic** value
  ``V^+(s) = max_{a, s' in supp P} [R + gamma V^+(s')]``, the best return of any path of
  positive probability (Maslov dequantization).
* **expectation form** (soft value iteration; Ziebart 2008 MaxEnt IRL, Levine 2018) —
  ``Q_t(s,a) = sum_{s'} P (R + gamma V_{t+1}(s'))``, the same soft maximum over actions.
  As ``T -> 0`` it becomes Bellman's optimality equation and ``V -> V^*``.

The two coincide when every action has one successor (deterministic ``P``): then the
surviving lineages follow the KL-regularised optimal policy relative to ``pi0``
(Todorov 2009; Kappen 2005) and, at ``T -> 0``, Bellman's optimal policy. With stochastic
transitions selection optimises the luckiest outcome of each action (risk-seeking, an
exponential-utility Bellman operator, Howard & Matheson 1972), so ``V^+ >= V^*`` and the
gap is what a replicator population cannot see. :func:`limit_report` measures all of it.

Exact references: :func:`finite_horizon_values` (backward induction), :func:`policy_iteration`
(Howard 1960, one linear solve per step; no early-stopped value iteration),
:func:`max_cycle_mean` / :func:`optimal_cycle` (Karp 1978; Cochet-Terrasson et al. 1998).

Arrays: ``P[s, a, s']`` row-stochastic per allowed ``(s, a)``, ``R[s, a, s']``,
``pi0[s, a]``; values are ``(S,)``, Q-values ``(S, A)`` with ``-inf`` on disallowed actions,
time-indexed tables ``(H, S, A)`` with row ``t`` = ``H - t`` steps to go. A state from which
no path of the required length (or no infinite path, when discounting) exists has value
``-inf``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.maxplus import Cycle, max_cycle_mean, optimal_cycle
from quasispecies.model.files import jsonable
from quasispecies.model.mdp import MDP
from quasispecies.model.validate import as_float_array, check_nonneg_int, check_temperature
from quasispecies.semiring.core import reduce, softmax_pair

__all__ = [
    "DiscountedSolution",
    "LimitReport",
    "PolicyAgreement",
    "SoftValues",
    "Values",
    "finite_horizon_q",
    "finite_horizon_values",
    "forest",
    "limit_report",
    "max_cycle_mean",
    "optimal_actions",
    "optimal_cycle",
    "path_integral_values",
    "policy_agreement",
    "policy_iteration",
    "soft_value_iteration",
]

#: Two Q-values within ``OPT_RTOL * (1 + |Q|)`` count as tied optimal actions.
OPT_RTOL = 1e-9


class Values(NamedTuple):
    """``(expected, optimistic)``: Bellman ``V*_H`` and the best-path value ``V+_H``, each (S,)."""

    expected: np.ndarray
    optimistic: np.ndarray


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


class DiscountedSolution(NamedTuple):
    """Exact discounted optimum from :func:`policy_iteration`.

    values : (S,) ``V``; ``-inf`` on states with no infinite path.
    policy : (S,) optimal action (``-1`` where ``values`` is ``-inf``).
    q : (S, A) ``Q`` at the optimum.
    iterations : policy-improvement steps.
    """

    values: np.ndarray
    policy: np.ndarray
    q: np.ndarray
    iterations: int


def _check_mdp(mdp) -> MDP:
    if not isinstance(mdp, MDP):
        raise ValueError(f"mdp: expected a quasispecies.MDP, got {type(mdp).__name__}")
    return mdp


def _check_discount(discount, *, allow_one: bool) -> float:
    g = float(as_float_array(discount, "discount", ndim=0))
    if not (0.0 <= g <= 1.0) or (g == 1.0 and not allow_one):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"discount: must lie in {bound}, got {g!r}")
    return g


def _raw_arrays(mdp: MDP):
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


def _discounted(v, discount):
    return jnp.where(jnp.isneginf(v), -jnp.inf, discount * jnp.where(jnp.isneginf(v), 0.0, v))


# ------------------------------------------------------------------ finite horizon
def _bellman_step(ve, vo, ns, prob, r, live, safe, discount):
    nve = _discounted(ve, discount)[ns]
    nvo = _discounted(vo, discount)[ns]
    ue = jnp.where(live, prob * jnp.where(live, r + nve, 0.0), 0.0)
    dead_succ = (live & jnp.isneginf(nve)).any(axis=-1)
    qe = jnp.where(safe & ~dead_succ, jnp.sum(ue, axis=-1), -jnp.inf)
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

    Expected (Bellman): ``Q_t = sum_{s'} P (R + gamma V_{t+1})``, ``V_t = max_a Q_t``.
    Optimistic: ``Q^+_t = max_{s' in supp P} (R + gamma V^+_{t+1})``. ``V_H = 0``.
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    g = _check_discount(discount, allow_one=True)
    ns, prob, _, _, r, live, safe = _raw_arrays(mdp)
    _, _, qe, qo = _bellman_kernel(ns, prob, r, live, safe, g, horizon)
    return np.asarray(qo if optimistic else qe)


def finite_horizon_values(mdp, horizon: int, *, discount: float = 1.0) -> Values:
    r"""Bellman ``V*_H`` and optimistic ``V+_H`` by backward induction (DESIGN §4).

    .. math::
       V^*_t(s) = \max_a \sum_{s'} P(s'|s,a)\,[R(s,a,s') + \gamma V^*_{t+1}(s')], \qquad
       V^+_t(s) = \max_{a,\; s': P > 0} [R(s,a,s') + \gamma V^+_{t+1}(s')],

    ``V_H = 0``; returns ``(V*_0, V+_0)``. ``V+_H(s0) = max_{s'} u^0_H(s')`` is the
    ``T -> 0`` limit of ``T log`` of the population grown from ``delta_{s0}``; it equals
    ``V*_H`` for deterministic transitions and exceeds it in general. ``-inf`` where
    no path of ``H`` steps exists (dead ends count as ``-inf`` reward).
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    g = _check_discount(discount, allow_one=True)
    ns, prob, _, _, r, live, safe = _raw_arrays(mdp)
    ve, vo, _, _ = _bellman_kernel(ns, prob, r, live, safe, g, horizon)
    return Values(np.asarray(ve), np.asarray(vo))


def optimal_actions(q: np.ndarray, rtol: float = OPT_RTOL) -> np.ndarray:
    """Boolean mask of the maximising actions of ``q`` (last axis), ties within ``rtol``."""
    q = np.asarray(q, dtype=np.float64)
    best = np.max(q, axis=-1, keepdims=True)
    fin = np.isfinite(best)
    bs = np.where(fin, best, 0.0)
    return fin & np.isfinite(q) & (q >= bs - rtol * (1.0 + np.abs(bs)))


# -------------------------------------------------------------- soft value iteration
def _soft_backup(V, ns, prob, logP, logpi0, r, live, safe, T, discount, form: str, actions: str):
    nv = _discounted(V, discount)[ns]
    allowed = jnp.isfinite(logpi0)
    if form == "expectation":
        ue = jnp.where(live, prob * jnp.where(live, r + nv, 0.0), 0.0)
        dead_succ = (live & jnp.isneginf(nv)).any(axis=-1)
        Q = jnp.where(safe & ~dead_succ, jnp.sum(ue, axis=-1), -jnp.inf)
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
    ``T`` may be a 1-D array (a ``vmap``-ed sweep).
    """
    mdp = _check_mdp(mdp)
    if form not in ("expectation", "path_integral"):
        raise ValueError(f"form: expected 'expectation' or 'path_integral', got {form!r}")
    if actions not in ("soft", "max"):
        raise ValueError(f"actions: expected 'soft' or 'max', got {actions!r}")
    Ts, sweep = check_temperature(T)
    arrays = _raw_arrays(mdp)
    if horizon is not None:
        horizon = check_nonneg_int(horizon, "horizon")
        g = _check_discount(discount, allow_one=True)

        def fn(t):
            return _soft_finite(arrays, t, g, horizon, form, actions)
    else:
        g = _check_discount(discount, allow_one=False)
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
    """:func:`soft_value_iteration` with ``form="path_integral"`` (same keywords)."""
    return soft_value_iteration(mdp, T, form="path_integral", **kwargs)


# ------------------------------------------------------------ exact discounted optimum
def _viable(mdp: MDP, optimistic: bool):
    """States with an infinite path (optimistic) or a policy that never hits a dead end."""
    live = np.isfinite(mdp.log_kernel)
    ns = mdp.next_state
    ok = live.any(axis=(1, 2))
    while True:
        succ_ok = ok[ns]
        if optimistic:
            edge = live & succ_ok
            act = edge.any(axis=2)
        else:
            act = live.any(axis=2) & ~((mdp.prob > 0) & ~(live & succ_ok)).any(axis=2)
            edge = live & act[:, :, None]
        new = act.any(axis=1)
        if np.array_equal(new, ok):
            return ok, act, edge
        ok = new


def _solve(S: int, rows, cols, vals, rhs, idx):
    """Solve ``(I - M) v = rhs`` on the states ``idx`` (M given as COO triples)."""
    import scipy.sparse
    import scipy.sparse.linalg

    n = idx.size
    where = np.full(S, -1, dtype=np.int64)
    where[idx] = np.arange(n)
    M = scipy.sparse.coo_matrix((vals, (where[rows], where[cols])), shape=(n, n)).tocsr()
    A = scipy.sparse.identity(n, format="csr") - M
    if n <= 2000:
        sol = np.linalg.solve(A.toarray(), rhs[idx])
    else:
        sol = scipy.sparse.linalg.spsolve(A.tocsc(), rhs[idx])
    v = np.full(S, -np.inf)
    v[idx] = sol
    return v


def policy_iteration(
    mdp, discount: float, *, optimistic: bool = False, max_iter: int = 10_000
) -> DiscountedSolution:
    r"""Exact infinite-horizon discounted optimum by Howard's policy iteration.

    Expected (``optimistic=False``): ``V = max_a sum_{s'} P (R + gamma V)``. Each step
    solves the linear system ``(I - gamma P_pi) V = r_pi`` (dense LAPACK up to 2000 viable
    states, sparse LU beyond) and switches an action only on a strict improvement, so it
    stops at the exact optimum after finitely many steps (Howard 1960; Puterman 1994 §6.4).
    Value iteration with an early stop (e.g. pymdptoolbox's) is *not* such a reference.

    Optimistic (``optimistic=True``): ``V+ = max_{a, s' in supp P} (R + gamma V+)``, the same
    algorithm with every transition a deterministic choice: the ``T -> 0`` limit of the
    discounted path-integral recursion.

    States with no infinite path that avoids dead ends get ``-inf`` and policy ``-1``.
    """
    mdp = _check_mdp(mdp)
    g = _check_discount(discount, allow_one=False)
    max_iter = check_nonneg_int(max_iter, "max_iter", minimum=1)
    S, A = mdp.shape
    ok, act, edge = _viable(mdp, optimistic)
    idx = np.flatnonzero(ok)
    ns = mdp.next_state
    prob = np.where(edge, mdp.prob, 0.0)
    rew = np.where(edge, mdp.reward, 0.0)
    rbar = (prob * rew).sum(axis=2)  # (S, A) expected reward
    empty = DiscountedSolution(np.full(S, -np.inf), np.full(S, -1), np.full((S, A), -np.inf), 0)
    if idx.size == 0:
        return empty
    scale = max(1.0, float(np.abs(rew).max(initial=0.0)) / (1.0 - g))
    tol = 1e-12 * scale

    def q_of(V):
        Vn = np.where(np.isfinite(V), V, 0.0)[ns]
        if optimistic:
            qe = np.where(edge, rew + g * Vn, -np.inf)
            return qe.max(axis=2), qe
        q = rbar + g * (prob * Vn).sum(axis=2)
        return np.where(act, q, -np.inf), None

    # initial policy: greedy in the one-step reward
    if optimistic:
        first = np.where(edge, rew, -np.inf).reshape(S, -1)
        choice = np.argmax(first, axis=1)
    else:
        choice = np.argmax(np.where(act, rbar, -np.inf), axis=1)
    B = ns.shape[2]
    for it in range(1, max_iter + 1):
        if optimistic:
            a_c, b_c = np.divmod(choice, B)
            rows = idx
            cols = ns[idx, a_c[idx], b_c[idx]]
            vals = np.full(idx.size, g)
            rhs = rew[np.arange(S), a_c, b_c]
        else:
            a_c = choice
            sub = edge[idx, a_c[idx]]  # (n, B)
            r_i, b_i = np.nonzero(sub)
            rows = idx[r_i]
            cols = ns[rows, a_c[rows], b_i]
            vals = g * mdp.prob[rows, a_c[rows], b_i]
            rhs = rbar[np.arange(S), a_c]
        V = _solve(S, rows, cols, vals, rhs, idx)
        Q, QE = q_of(V)
        if optimistic:
            flat = QE.reshape(S, -1)
            best = flat.max(axis=1)
            cur = flat[np.arange(S), choice]
            cand = np.argmax(flat, axis=1)
        else:
            best = Q.max(axis=1)
            cur = Q[np.arange(S), choice]
            cand = np.argmax(Q, axis=1)
        improve = ok & (best > cur + tol)
        if not improve.any():
            policy = np.where(ok, choice // B if optimistic else choice, -1)
            return DiscountedSolution(V, policy, Q, it)
        choice = np.where(improve, cand, choice)
    raise RuntimeError("policy_iteration: did not terminate")


def forest(num_states: int = 3, r1: float = 4.0, r2: float = 2.0, p: float = 0.1) -> MDP:
    """pymdptoolbox's forest-management problem (``mdptoolbox.example.forest``) as an MDP.

    States are forest ages ``0 .. S-1``; action 0 *waits* (with probability ``p`` a fire
    resets the age to 0, otherwise it grows by one, capped at ``S-1``; reward ``r1`` in the
    oldest state), action 1 *cuts* (back to age 0; reward 1, ``r2`` in the oldest state, 0
    in the youngest). The textbook case where risk matters: waiting in the oldest state
    pays ``r1`` every step only while no fire comes, so the optimistic value of a
    replicator population (``V+ = r1 / (1 - gamma)`` there) overstates the Bellman optimum.
    """
    S = check_nonneg_int(num_states, "num_states", minimum=2)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: must lie in [0, 1], got {p!r}")
    P = np.zeros((S, 2, S))
    P[:, 0, 0] = p
    s = np.arange(S)
    P[s, 0, np.minimum(s + 1, S - 1)] += 1.0 - p
    P[:, 1, 0] = 1.0
    R = np.zeros((S, 2))
    R[S - 1, 0] = r1
    R[:, 1] = 1.0
    R[0, 1] = 0.0
    R[S - 1, 1] = r2
    return MDP(P, R)


# ----------------------------------------------------------------- the limit, measured
class PolicyAgreement(NamedTuple):
    """Agreement of ``argmax_a pi_T(a|s,t)`` with the optimal actions.

    fraction : agreeing / decided (``nan`` when nothing is decided).
    agree, decided : counts over the ``(t, s)`` where the reference optimum is unique.
    mask : (H, S) bool, where the reference optimum is unique.
    """

    fraction: float
    agree: int
    decided: int
    mask: np.ndarray


def policy_agreement(
    mdp, T, horizon: int, *, optimistic: bool = False, rtol: float = OPT_RTOL
) -> PolicyAgreement | list[PolicyAgreement]:
    r"""How often the selected policy ``pi_T(.|s,t)`` picks the Bellman-optimal action.

    Over every time ``t < H`` and state ``s`` where the optimal action of
    :func:`finite_horizon_q` is unique (``optimistic=True``: of ``Q^+``), the selected
    policy agrees when that action carries strictly more mass than any other. For
    deterministic MDPs the fraction tends to 1 as ``T -> 0``; for stochastic ones the
    ``T -> 0`` policy is the optimistic one and can disagree with Bellman's.
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    Ts, sweep = check_temperature(T)
    out = _agreements(mdp, Ts, sweep, horizon, optimistic, rtol)
    return out if sweep else out[0]


def _agreements(mdp, Ts, sweep, horizon, optimistic, rtol) -> list[PolicyAgreement]:
    from quasispecies.paths.core import selected_policy

    q = finite_horizon_q(mdp, horizon, optimistic=optimistic)
    opt = optimal_actions(q, rtol)
    mask = opt.sum(axis=-1) == 1
    ref = np.argmax(opt, axis=-1)
    pis = selected_policy(mdp, Ts, horizon)
    pis = pis if sweep else pis[None]
    out = []
    for pi in pis:
        mine = np.take_along_axis(pi, ref[..., None], axis=-1)[..., 0]
        other = np.where(np.arange(pi.shape[-1]) == ref[..., None], -np.inf, pi).max(axis=-1)
        agree = mask & (mine > other)
        decided = int(mask.sum())
        frac = float(agree.sum() / decided) if decided else float("nan")
        out.append(PolicyAgreement(frac, int(agree.sum()), decided, mask))
    return out


@dataclass(frozen=True)
class LimitReport:
    r"""The ``T -> 0`` limit of selection on one MDP, measured per temperature.

    Scalars describe the limit; every ``(K,)`` array is indexed like ``temperatures``.

    * Growth: ``scaled_log_growth = T log rho(W_T)`` satisfies
      ``mu* + (T / L) sum_{cycle} log K <= T log rho <= mu*`` (``growth_lower_bound`` and
      ``max_cycle_mean``), the cycle being :attr:`cycle` (length ``L``).
    * Values from ``x0 = delta_start`` over ``horizon`` steps: ``scaled_log_total = T log Z``
      (``Z`` = total population) satisfies ``V+ + T c* <= T log Z <= V+``, ``c*`` the log
      prior weight of the best paths (``value_lower_bound``); for uniform ``pi0`` and
      deterministic ``P`` the looser ``V+ - T H log A`` (``simple_lower_bound``).
      ``expected_value = V*_H(start)``, ``optimistic_value = V+_H(start)``.
    * ``policy_agreement``: fraction of the ``(t, s)`` with a unique Bellman-optimal
      action where ``argmax pi_T`` picks it (``policy_agreement_optimistic``: against the
      optimistic optimum).
    * ``entropy`` (nats) and ``expected_return`` of the path distribution.
    * ``gap = V+_H - V*_H`` per state (zero for deterministic MDPs).
    """

    temperatures: np.ndarray
    horizon: int
    start: int
    deterministic: bool
    max_cycle_mean: float
    cycle: Cycle
    scaled_log_growth: np.ndarray
    growth_lower_bound: np.ndarray
    expected_value: float
    optimistic_value: float
    scaled_log_total: np.ndarray
    value_lower_bound: np.ndarray
    simple_lower_bound: np.ndarray
    policy_agreement: np.ndarray
    policy_agreement_optimistic: np.ndarray
    entropy: np.ndarray
    expected_return: np.ndarray
    gap: np.ndarray
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (``inf`` as the strings ``"inf"``/``"-inf"``, NaN as ``None``)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "cycle"}
        d["cycle"] = {
            "mean": self.cycle.mean,
            "states": self.cycle.states,
            "actions": self.cycle.actions,
            "rewards": self.cycle.rewards,
            "log_kernel": self.cycle.log_kernel,
        }
        return jsonable(d)

    def table(self) -> str:
        """A plain-text table, one row per temperature."""
        head = (
            f"{'T':>10} {'T log rho':>11} {'>= bound':>11} {'T log Z':>11} {'>= bound':>11} "
            f"{'agree(V*)':>9} {'agree(V+)':>9} {'entropy':>9} {'E[G]':>9}"
        )
        rows = [head]
        for i, T in enumerate(self.temperatures):
            rows.append(
                f"{T:>10.3g} {self.scaled_log_growth[i]:>11.6f} {self.growth_lower_bound[i]:>11.6f} "
                f"{self.scaled_log_total[i]:>11.6f} {self.value_lower_bound[i]:>11.6f} "
                f"{self.policy_agreement[i]:>9.3f} {self.policy_agreement_optimistic[i]:>9.3f} "
                f"{self.entropy[i]:>9.4f} {self.expected_return[i]:>9.4f}"
            )
        rows.append(
            f"max cycle mean mu* = {self.max_cycle_mean:.6f} on cycle "
            f"{self.cycle.states.tolist()} (actions {self.cycle.actions.tolist()})"
        )
        rows.append(
            f"H = {self.horizon}, start = {self.start}: V*_H = {self.expected_value:.6f}, "
            f"V+_H = {self.optimistic_value:.6f}, max gap V+ - V* = "
            f"{np.max(np.where(np.isfinite(self.gap), self.gap, 0.0)):.6f}"
        )
        rows.extend(self.notes)
        return "\n".join(rows)


def limit_report(mdp, temperatures, *, horizon: int = 10, start: int = 0) -> LimitReport:
    r"""Measure the ``T -> 0`` reinforcement-learning limit of selection on ``mdp``.

    Per temperature: ``T log rho(W_T)`` against the maximum cycle mean and its bound
    (:func:`quasispecies.steady_state`), ``T log Z_H`` from ``delta_start`` against
    ``V*_H``, ``V+_H`` and the bound, the agreement of ``argmax pi_T`` with the
    Bellman-optimal actions, and the path entropy. See :class:`LimitReport`.
    """
    from quasispecies.dynamics.discrete import steady_state
    from quasispecies.paths.core import trajectory_stats

    mdp = _check_mdp(mdp)
    Ts, _ = check_temperature(temperatures, "temperatures")
    Ts = np.atleast_1d(Ts)
    horizon = check_nonneg_int(horizon, "horizon")
    start = check_nonneg_int(start, "start")
    if start >= mdp.num_states:
        raise ValueError(f"start: state {start} is outside [0, {mdp.num_states})")
    notes = []
    cyc = optimal_cycle(mdp)
    mu = cyc.mean
    if np.isfinite(mu):
        L = len(cyc.states)
        lower = mu + Ts * float(np.sum(cyc.log_kernel)) / L
        ss = steady_state(mdp, Ts, x0=start)
        growth = np.asarray(ss.scaled_log_growth, dtype=np.float64)
        if not bool(np.all(ss.irreducible)):
            notes.append(
                "W_T is reducible: T log rho is the growth of the best block; the "
                "quasispecies depends on x0"
            )
    else:
        lower = np.full(Ts.shape, -np.inf)
        growth = np.full(Ts.shape, -np.inf)
        notes.append("the support graph has no cycle: W_T is nilpotent, T log rho = -inf")
    vals = finite_horizon_values(mdp, horizon)
    stats = trajectory_stats(mdp, Ts, horizon, start)
    zero = trajectory_stats(mdp, 0.0, horizon, start)
    vplus = float(vals.optimistic[start])
    c_best = float(zero.log_multiplicity)
    vlower = vplus + Ts * c_best
    simple = vplus - Ts * horizon * np.log(mdp.num_actions)
    agree = _agreements(mdp, Ts, True, horizon, False, OPT_RTOL)
    agree_o = _agreements(mdp, Ts, True, horizon, True, OPT_RTOL)
    gap = np.where(
        np.isfinite(vals.optimistic) & np.isfinite(vals.expected),
        vals.optimistic - vals.expected,
        np.nan,
    )
    return LimitReport(
        temperatures=Ts,
        horizon=horizon,
        start=start,
        deterministic=mdp.deterministic,
        max_cycle_mean=float(mu),
        cycle=cyc,
        scaled_log_growth=growth,
        growth_lower_bound=lower,
        expected_value=float(vals.expected[start]),
        optimistic_value=vplus,
        scaled_log_total=np.asarray(stats.scaled_log_partition),
        value_lower_bound=vlower,
        simple_lower_bound=simple,
        policy_agreement=np.array([a.fraction for a in agree]),
        policy_agreement_optimistic=np.array([a.fraction for a in agree_o]),
        entropy=np.asarray(stats.entropy),
        expected_return=np.asarray(stats.expected_return),
        gap=gap,
        notes=notes,
    )
