r"""Dynamic programmes over the path sum: k best paths, path statistics, selected policy.

Every function reads the path sum of :mod:`quasispecies.paths.enumeration`
(``n_H = x_0 W_T^H``, row vectors, ``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)``)
in a different semiring (J. Goodman, "Semiring parsing", *Computational Linguistics* 25,
1999), written once as :func:`quasispecies.semiring.forward_scan` /
:func:`~quasispecies.semiring.backward_scan`:

* :func:`top_k` — the ``k`` heaviest paths by the ``k``-best semiring (never by
  enumerating): ``O(H S A B k log)`` work.
* :func:`trajectory_stats` — ``T log Z``, the entropy of the path distribution
  ``p(path) ∝ x0 prod K e^{G/T}``, ``E[G]`` and ``KL(p || x0 prod K)`` (entropy semiring).
* :func:`selected_policy` — the policy the surviving lineages followed, from backward
  messages ``z_H = 1``, ``z_t = W_T z_{t+1}``:
  ``pi_T(a|s,t) ∝ pi0(a|s) sum_{s'} P(s'|s,a) e^{R/T} z_{t+1}(s')``. For deterministic ``P``
  this is the KL-regularised (soft) optimal policy relative to ``pi0`` (Todorov 2009;
  Kappen 2005 path-integral control; Levine 2018); as ``T -> 0`` it concentrates on the
  actions of the best paths (the Bellman-optimal actions when ``P`` is deterministic).
* :func:`state_marginals` — forward-backward: the distribution of ``s_t`` under
  ``p(path)``.

``T`` is a scalar or a 1-D array (a ``vmap``-ed sweep adding a leading axis). At
``T = 0`` results are the exact ``T -> 0+`` limits (max-plus with tie multiplicities).
``trajectory_stats``, ``entropy``, ``state_marginals`` and ``selected_policy`` take traced
rewards, ``pi0``, ``x0`` and ``T`` (``jax.grad`` / ``jit`` / ``vmap``); ``top_k`` selects
paths, a discrete choice, and needs concrete input.

References: V. P. Maslov, *Idempotent Analysis* (1992); E. Todorov, "Efficient
computation of optimal actions", PNAS 106 (2009); L. Huang & D. Chiang, "Better k-best
parsing" (2005); Z. Li & J. Eisner, "First- and second-order expectation semirings"
(2009); S. Levine, "Reinforcement learning and control as probabilistic inference" (2018).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.model.mdp import MDP, check_mdp, initial_population
from quasispecies.model.validate import (
    check_nonneg_int,
    check_temperature,
    is_traced,
    traced_array,
)
from quasispecies.paths.enumeration import Paths, canonical_arrays, log0, path_log_weight
from quasispecies.semiring import (
    Entropy,
    KBest,
    Log,
    backward_scan,
    forward_scan,
    host,
    softmax_pair,
)

__all__ = [
    "TrajectoryStats",
    "entropy",
    "path_probability",
    "selected_policy",
    "state_marginals",
    "top_k",
    "trajectory_stats",
]


class TrajectoryStats(NamedTuple):
    r"""Summary of the path distribution ``p(path) = x0 prod K e^{G/T} / Z`` at ``T``.

    Attributes
    ----------
    scaled_log_partition : ``T log Z`` (at ``T = 0``: the best return ``max G``).
    log_multiplicity : at ``T = 0``, ``log`` of the total prior weight of the best paths
        (so ``Z ~ exp(max G / T + log_multiplicity)`` as ``T -> 0+``); 0 at ``T > 0``.
    entropy : ``-sum p log p`` over paths, in nats (at ``T = 0``: of the ``T -> 0+`` limit).
    expected_return : ``E_p[G]``.
    expected_log_prior : ``E_p[log x0 + sum log K]``.
    kl_from_prior : ``KL(p || x0 prod K) = -entropy - expected_log_prior``.
    """

    scaled_log_partition: np.ndarray
    log_multiplicity: np.ndarray
    entropy: np.ndarray
    expected_return: np.ndarray
    expected_log_prior: np.ndarray
    kl_from_prior: np.ndarray


def _jax_arrays(mdp: MDP):
    ns, lk, r = canonical_arrays(mdp)
    return jnp.asarray(ns), jnp.asarray(lk), jnp.asarray(r)


def _sweep(fn, Ts, sweep: bool):
    if sweep:
        return jax.vmap(fn)(jnp.asarray(Ts))
    return fn(jnp.asarray(Ts))


# ------------------------------------------------------------------------- k best
@partial(jax.jit, static_argnames=("horizon", "k"))
def _top_k_kernel(ns, lk, r, logx0, T, horizon: int, k: int):
    sr = KBest(k)
    T = jnp.asarray(T, dtype=r.dtype)
    (p, q), bp = forward_scan(sr, logx0, ns, lk, r, T, horizon)
    S = p.shape[0]
    (fp, fq), fbp = sr.plus((p, q), jnp.zeros((S,), jnp.int32), 1, T)
    if bp is None:
        bp = jnp.zeros((0, S, k), fbp.dtype)
    return fp[0], fq[0], fbp[0], bp


def _backtrack(
    fbp: np.ndarray, bp: np.ndarray, shape: tuple[int, int, int], k: int, ns: np.ndarray
):
    S, A, B = shape
    H = bp.shape[0]
    valid = fbp >= 0
    idx = fbp[valid].astype(np.int64)
    s, j = np.divmod(idx, k)
    n = idx.shape[0]
    states = np.empty((n, H + 1), dtype=np.int64)
    actions = np.empty((n, H), dtype=np.int64)
    slots = np.empty((n, H), dtype=np.int64)
    states[:, H] = s
    for t in range(H - 1, -1, -1):
        f = bp[t][s, j].astype(np.int64)
        e, j = np.divmod(f, k)
        s_prev, a, b = np.unravel_index(e, (S, A, B))
        actions[:, t], slots[:, t], states[:, t] = a, b, s_prev
        s = np.asarray(s_prev)
    return states, actions, slots


def top_k(mdp, T, horizon: int, k: int, x0=None) -> Paths:
    r"""The ``k`` paths of largest weight, best first, by the ``k``-best semiring.

    Equal to sorting :func:`enumerate` by ``log_weight`` (descending; at ``T = 0`` ties
    in ``G`` are ordered by the prior weight ``log x0 + sum log K``, the ``T -> 0+`` order)
    and keeping the first ``k`` — without enumerating: the dynamic programme keeps the
    ``k`` best partial paths into each state (Huang & Chiang 2005), ``O(H S A B k)``
    candidates per sweep. Fewer than ``k`` rows when fewer paths exist. A path's weight is
    its term ``x0(s0) prod_t K e^{R/T}`` in ``n_H = x0 W_T^H`` (row vectors,
    ``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)``); the k-best semiring is
    one of J. Goodman's (1999) semiring path sums.
    """
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    k = check_nonneg_int(k, "k", minimum=1)
    Ts, sweep = check_temperature(T)
    x0 = initial_population(mdp, x0)
    ns, lk, r = canonical_arrays(mdp)
    arrays = _jax_arrays(mdp)
    logx0 = jnp.asarray(log0(x0))
    _, _, fbp, bp = _sweep(lambda t: _top_k_kernel(*arrays, logx0, t, horizon, k), Ts, sweep)
    fbp, bp = np.asarray(fbp), np.asarray(bp)
    outs = []
    for i in range(len(Ts) if sweep else 1):
        fb = fbp[i] if sweep else fbp
        b = bp[i] if sweep else bp
        states, actions, slots = _backtrack(fb, b, lk.shape, k, ns)
        lp = log0(x0)[states[:, 0]]
        G = np.zeros(states.shape[0])
        for t in range(horizon):
            lp = lp + lk[states[:, t], actions[:, t], slots[:, t]]
            G = G + r[states[:, t], actions[:, t], slots[:, t]]
        outs.append(
            (states, actions, lp, G, path_log_weight(lp, G, np.asarray(Ts[i] if sweep else Ts)))
        )
    if not sweep:
        st, ac, lp, G, lw = outs[0]
        return Paths(st, ac, lw, G, lp)
    return Paths(*(np.stack([o[i] for o in outs]) for i in (0, 1, 4, 3, 2)))


# -------------------------------------------------------------- entropy semiring
@partial(jax.jit, static_argnames=("horizon",))
def _stats_kernel(ns, lk, r, logx0, T, horizon: int):
    T = jnp.asarray(T, dtype=r.dtype)
    el, _ = forward_scan(Entropy, logx0, ns, lk, r, T, horizon)
    tot, _ = Entropy.plus(el, jnp.zeros((lk.shape[0],), jnp.int32), 1, T)
    return tuple(x[0] for x in tot)


def traced_call(mdp, T, x0=None) -> bool:
    """True when a path DP is being differentiated or traced (``jax.grad``, ``jit``,
    ``vmap``) through the MDP's rewards / ``pi0``, ``T`` or ``x0``."""
    return is_traced(T, x0) or (isinstance(mdp, MDP) and mdp.traced)


def _traced_prepare(mdp: MDP, T, x0):
    """``(arrays, log x0, T, sweep)`` as JAX values for traced inputs (shapes checked only).

    The MDP's arrays come from :meth:`MDP.traced_arrays` (zero ``pi0`` / ``P`` and ``-inf``
    rewards give ``log K = -inf`` with zero, not NaN, gradients). Duplicated successors
    (one ``(s, a, s')`` listed twice) are one path only when their rewards are equal
    (:func:`~quasispecies.paths.enumeration.canonical_arrays`), which a traced reward
    cannot be asked, so they are refused.
    """
    if not mdp.dense and mdp.num_successors > 1:
        ns = np.asarray(mdp.next_state)
        live = np.asarray(mdp.prob) > 0
        key = np.where(live, ns, -1 - np.arange(ns.shape[2]))
        srt = np.sort(key, axis=2)
        if (srt[:, :, 1:] == srt[:, :, :-1]).any():
            raise ValueError(
                "mdp: a successor list repeats a next state; such paths merge only when their "
                "rewards are equal, which traced rewards cannot be asked: merge the duplicates "
                "before differentiating"
            )
    arrays = mdp.traced_arrays()
    dtype = arrays[2].dtype
    Tj = traced_array(T, "T", ndim=(0, 1)).astype(dtype)
    if is_traced(x0):
        x = traced_array(x0, "x0", ndim=1)
        if x.shape != (mdp.num_states,):
            raise ValueError(f"x0: expected length {mdp.num_states}, got {x.shape[0]}")
        x = x.astype(dtype)
    else:
        x = jnp.asarray(initial_population(mdp, x0), dtype=dtype)
    pos = x > 0
    logx0 = jnp.where(pos, jnp.log(jnp.where(pos, x, 1.0)), -jnp.inf)
    return arrays, logx0, Tj, Tj.ndim == 1


def _prepare(mdp, T, horizon, x0):
    """Validated ``(arrays, log x0, Ts, sweep, horizon)`` for the forward-backward DPs."""
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    if traced_call(mdp, T, x0):
        return (*_traced_prepare(mdp, T, x0), horizon)
    Ts, sweep = check_temperature(T)
    x0 = initial_population(mdp, x0)
    return _jax_arrays(mdp), jnp.asarray(log0(x0)), Ts, sweep, horizon


def trajectory_stats(mdp, T, horizon: int, x0=None) -> TrajectoryStats:
    r"""``T log Z``, entropy, ``E[G]`` and ``KL`` from the prior of the path distribution.

    ``p(path) = x0(s0) prod_t K(s_t, a_t, s_{t+1}) e^{G/T} / Z`` over the paths of
    :func:`enumerate`, computed by the entropy semiring in one forward sweep (no
    enumeration). The entropy falls from that of the exploration process (``T -> inf``) to
    that of the uniform-by-prior-weight choice among the best paths (``T = 0``).
    ``Z = x0 W_T^H 1`` (row vector ``x0``, ``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s']
    exp(R[s,a,s']/T)``); the entropy/expectation semiring is in J. Goodman (1999) and
    Li & Eisner (2009).

    Differentiable (``jax.grad`` / ``jacrev`` / ``jit`` / ``vmap``; JAX arrays come back
    then) with respect to the rewards, ``pi0`` (on its support), ``x0`` and ``T > 0``, by
    backpropagation through the semiring scan: ``d(T log Z)/dR`` is the expected edge use
    under ``p(path)``. At ``T = 0`` the gradient of ``T log Z = max G`` in ``R`` is a
    subgradient, the edge count of the best path (with ties a convex combination of the
    best paths' counts). ``-inf`` rewards and zero ``pi0`` / ``x0`` entries give finite
    gradients. Traced inputs are shape-checked only (values are the caller's contract).
    """
    arrays, logx0, Ts, sweep, horizon = _prepare(mdp, T, horizon, x0)
    out = _sweep(lambda t: _stats_kernel(*arrays, logx0, t, horizon), Ts, sweep)
    if traced_call(mdp, T, x0):
        u, c, h, g, kk = out
    else:
        u, c, h, g, kk = (np.asarray(a) for a in out)
    return TrajectoryStats(u, c, h, g, kk, -h - kk)


def entropy(mdp, T, horizon: int, x0=None) -> np.ndarray:
    r"""Entropy ``-sum_path p log p`` (nats) of ``p(path) = x0 prod K e^{G/T} / Z`` at ``T``.

    ``Z = x0 W_T^H 1`` (row-vector convention); computed in the entropy semiring
    (Goodman 1999; Li & Eisner 2009) by :func:`trajectory_stats`, and differentiable as it is.
    """
    return trajectory_stats(mdp, T, horizon, x0).entropy


# --------------------------------------------------------------- selected policy
@partial(jax.jit, static_argnames=("horizon",))
def _policy_kernel(ns, lk, r, T, horizon: int):
    T = jnp.asarray(T, dtype=r.dtype)
    beta, Q = backward_scan(ns, lk, r, T, horizon)
    return softmax_pair(Q.u, Q.c, T, axis=-1), Q.u, beta.u


def selected_policy(mdp, T, horizon: int) -> np.ndarray:
    r"""``pi_T(a | s, t)``, shape ``(H, S, A)``: the policy followed by the surviving lineages.

    Backward messages ``z_H = 1``, ``z_t(s) = sum_{a, s'} K F_T z_{t+1}(s')`` (computed as
    ``T log z`` by :func:`~quasispecies.semiring.ext.backward_scan`) give

    .. math:: \pi_T(a|s,t) = \frac{\pi_0(a|s) \sum_{s'} P(s'|s,a) e^{R/T} z_{t+1}(s')}{z_t(s)}.

    Row ``t`` is the decision at step ``t`` with ``H - t`` steps to go. At ``T = 0`` the
    ``T -> 0+`` limit: all mass on the actions that start a best remaining path
    (``argmax_a max_{s'} [R + V^+_{H-t-1}(s')]``), shared by prior weight. A state with no
    allowed action (or no path of the remaining length) gets an all-zero row.
    ``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)`` acts on the column vector
    ``z`` here (populations are row vectors, ``n_{t+1} = n_t W_T``). For deterministic ``P``
    this is the soft-Bellman / LMDP optimal policy (E. Todorov, PNAS 106, 2009).

    Differentiable (``jax.grad`` / ``jacrev`` / ``jit`` / ``vmap``; a JAX array is then
    returned) with respect to the rewards, ``pi0`` (on its support) and ``T > 0``.
    """
    if traced_call(mdp, T):
        return _traced_policy(mdp, T, horizon)
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    Ts, sweep = check_temperature(T)
    arrays = _jax_arrays(mdp)
    pi, _, _ = _sweep(lambda t: _policy_kernel(*arrays, t, horizon), Ts, sweep)
    return np.asarray(pi)


def _traced_policy(mdp, T, horizon: int):
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    arrays, _, Ts, sweep = _traced_prepare(mdp, T, None)
    return _sweep(lambda t: _policy_kernel(*arrays, t, horizon), Ts, sweep)[0]


@partial(jax.jit, static_argnames=("horizon",))
def _marginal_kernel(ns, lk, r, logx0, T, horizon: int):
    T = jnp.asarray(T, dtype=r.dtype)
    _, (_, alphas) = forward_scan(Log, logx0, ns, lk, r, T, horizon, history=True)
    beta, _ = backward_scan(ns, lk, r, T, horizon)
    u = alphas.u + beta.u
    c = alphas.c + beta.c
    return softmax_pair(u, c, T, axis=-1)


def state_marginals(mdp, T, horizon: int, x0=None) -> np.ndarray:
    r"""``P(s_t = s)`` under the path distribution at ``T``, shape ``(H + 1, S)``.

    Forward-backward: ``p_t(s) ∝ alpha_t(s) beta_t(s)`` with ``alpha_t = x0 W_T^t`` (the
    population) and ``beta_t = W_T^{H-t} 1`` (the backward message). Row ``H`` is the
    normalised population ``x_H`` of :func:`quasispecies.evolve`; row 0 is ``x0``
    re-weighted by the paths' futures. All zeros when no path of length ``H`` exists.
    ``alpha_t`` is a row vector (``alpha_{t+1} = alpha_t W_T``), ``beta_t`` a column vector
    (``beta_t = W_T beta_{t+1}``); forward-backward in the log semiring (Goodman 1999).
    Differentiable in the rewards, ``pi0``, ``x0`` and ``T > 0`` as :func:`trajectory_stats`.
    """
    arrays, logx0, Ts, sweep, horizon = _prepare(mdp, T, horizon, x0)
    out = _sweep(lambda t: _marginal_kernel(*arrays, logx0, t, horizon), Ts, sweep)
    return out if traced_call(mdp, T, x0) else np.asarray(out)


# ------------------------------------------------------------ shares of the total
def path_probability(paths: Paths, stats: TrajectoryStats, T: float) -> np.ndarray:
    r"""``p(path) = x0(s0) prod_t K e^{R/T} / Z`` of each row of ``paths`` (e.g. :func:`top_k`).

    ``stats`` is :func:`trajectory_stats` of the same MDP, ``T``, horizon and ``x0`` (it
    carries ``T log Z`` and, at ``T = 0``, the log prior weight ``C`` of the best paths);
    ``Z = x0 W_T^H 1`` with the row-vector ``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s']
    exp(R[s,a,s']/T)``. At ``T = 0`` the ``T -> 0+`` limit: the best paths share the mass
    by prior weight, ``p = exp(log_prior - C)``, every other path gets 0 (the max-plus rule
    of J. Goodman's (1999) semiring). ``T`` is one temperature; all zeros if ``Z = 0``.
    """
    Ts, sweep = check_temperature(T)
    if sweep:
        raise ValueError("T: path_probability takes one temperature, got an array")
    return host.share(
        np.asarray(paths.log_weight),
        np.asarray(paths.reward),
        np.asarray(paths.log_prior),
        stats.scaled_log_partition,
        stats.log_multiplicity,
        float(Ts),
    )
