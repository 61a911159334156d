r"""The population as a sum over paths: enumeration, k best paths, entropy, selected policy.

Expanding ``n_H = x_0 W_T^H`` (row-vector convention, ``W_T[s, s'] = sum_a K e^{R/T}``,
``K[s, a, s'] = pi0(a|s) P(s'|s, a)``) term by term gives the exact path sum

.. math::
   n_H(s') = \sum_{s_0 a_0 s_1 \dots a_{H-1} s_H = s'} x_0(s_0)
             \prod_{t<H} K(s_t, a_t, s_{t+1}) \; e^{G/T}, \qquad G = \sum_{t<H} R(s_t, a_t, s_{t+1}).

A path is the sequence of states and actions; its log weight is
``log x0(s0) + sum_t log K + G/T`` (at ``T = 0``: ``G``, the exponent that survives the
``T -> 0+`` limit). Every quantity here is that sum read in a different semiring
(:mod:`quasispecies.semiring.ext`):

* :func:`enumerate` / :func:`iter_chunks` — the paths themselves, streamed in chunks by
  *unranking*: with exact counts ``N_r(s)`` of ``r``-step paths from ``s`` (counting
  semiring) the ``i``-th path in lexicographic order ``(s_0, a_0, s_1, a_1, ...)`` is found
  by ``H`` binary searches, so any slice of the ``N`` paths is produced in ``O(chunk H)``
  memory, and an interrupted run resumes at the first unfinished index.
* :func:`top_k` — the ``k`` heaviest paths by the ``k``-best semiring (never by
  enumerating): ``O(H S A B k log)`` work.
* :func:`trajectory_stats` — ``T log Z``, the entropy of the path distribution
  ``p(path) ∝ x0 prod K e^{G/T}``, ``E[G]`` and ``KL(p || x0 prod K)`` (entropy semiring).
* :func:`num_paths` — the number of paths of positive weight (counting semiring).
* :func:`selected_policy` — the policy the surviving lineages followed, from backward
  messages ``z_H = 1``, ``z_t = W_T z_{t+1}``:
  ``pi_T(a|s,t) ∝ pi0(a|s) sum_{s'} P(s'|s,a) e^{R/T} z_{t+1}(s')``. For deterministic ``P``
  this is the KL-regularised (soft) optimal policy relative to ``pi0`` (Todorov 2009;
  Kappen 2005 path-integral control; Levine 2018); as ``T -> 0`` it concentrates on the
  actions of the best paths (the Bellman-optimal actions when ``P`` is deterministic).
* :func:`state_marginals` — forward-backward: the distribution of ``s_t`` under
  ``p(path)``.

Paths that differ only in a duplicated successor entry (a sparse MDP listing the same
``(s, a, s')`` twice with equal reward) are one path; their kernel weights add.

``T`` is a scalar or a 1-D array (a ``vmap``-ed sweep adding a leading axis). At
``T = 0`` results are the exact ``T -> 0+`` limits (max-plus with tie multiplicities).

References: V. P. Maslov, *Idempotent Analysis* (1992); E. Todorov, "Efficient
computation of optimal actions", PNAS 106 (2009); L. Huang & D. Chiang, "Better k-best
parsing" (2005); Z. Li & J. Eisner, "First- and second-order expectation semirings"
(2009); S. Levine, "Reinforcement learning and control as probabilistic inference" (2018).
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.model.mdp import MDP, check_mdp as _check_mdp, initial_population as _initial
from quasispecies.model.validate import check_nonneg_int, check_temperature
from quasispecies.semiring.core import softmax_pair
from quasispecies.semiring.ext import (
    Entropy,
    KBest,
    Log,
    backward_scan,
    count_paths_table,
    forward_scan,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_BYTES",
    "Paths",
    "TrajectoryStats",
    "enumerate",
    "iter_chunks",
    "num_paths",
    "selected_policy",
    "state_marginals",
    "top_k",
    "trajectory_stats",
]

#: :func:`enumerate` refuses to build arrays larger than this (bytes) unless told otherwise.
DEFAULT_MAX_BYTES = 2**31
#: Paths per chunk yielded by :func:`iter_chunks`.
DEFAULT_CHUNK_SIZE = 1 << 17
#: Streaming refuses more paths than this (the index of a path must fit an int64).
MAX_STREAMED = 2**62


class Paths(NamedTuple):
    """A set of paths ``s_0 a_0 s_1 ... a_{H-1} s_H``, one per row.

    Attributes
    ----------
    states : (N, H + 1) int64
    actions : (N, H) int64
    log_weight : (N,) float
        ``log x0(s0) + sum_t log K(s_t, a_t, s_{t+1}) + G / T``; at ``T = 0`` it is ``G``.
    reward : (N,) float
        The return ``G = sum_t R(s_t, a_t, s_{t+1})``.
    log_prior : (N,) float
        ``log x0(s0) + sum_t log K``: the path's weight under the exploration process.

    For a temperature sweep every field gains a leading ``(K,)`` axis (``states``,
    ``actions``, ``reward`` and ``log_prior`` are then read-only broadcast views).
    """

    states: np.ndarray
    actions: np.ndarray
    log_weight: np.ndarray
    reward: np.ndarray
    log_prior: np.ndarray


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


# ------------------------------------------------------------------------- inputs
def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


_CANON: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def canonical_arrays(mdp: MDP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(next_state, log_kernel, reward)`` NumPy arrays ``(S, A, B)`` with duplicates merged.

    Successor entries of one ``(s, a)`` with the same next state and the same reward are
    one transition (their log kernel weights are added by ``logaddexp``; the extra slots
    become ``-inf``). Dead entries have reward 0. Cached per MDP object.
    """
    hit = _CANON.get(mdp)
    if hit is not None:
        return hit
    ns = np.asarray(mdp.next_state).astype(np.int64)
    lk = np.array(mdp.log_kernel, dtype=np.float64)
    r = np.where(np.isfinite(lk), mdp.reward, 0.0)
    B = lk.shape[2]
    if not mdp.dense and B > 1:
        live = np.isfinite(lk)
        idx = np.flatnonzero(live.ravel())
        s, a, _ = np.unravel_index(idx, lk.shape)
        nsl, rl = ns.ravel()[idx], r.ravel()[idx]
        order = np.lexsort((rl, nsl, a, s))
        so = idx[order]
        same = (
            (s[order][1:] == s[order][:-1])
            & (a[order][1:] == a[order][:-1])
            & (nsl[order][1:] == nsl[order][:-1])
            & (rl[order][1:] == rl[order][:-1])
        )
        if same.any():
            starts = np.flatnonzero(np.concatenate([[True], ~same]))
            flat = lk.ravel()
            merged = np.logaddexp.reduceat(flat[so], starts)
            flat[so] = -np.inf
            flat[so[starts]] = merged
            lk = flat.reshape(lk.shape)
            r = np.where(np.isfinite(lk), r, 0.0)
    out = (ns, lk, r)
    _CANON[mdp] = out
    return out


def _jax_arrays(mdp: MDP):
    ns, lk, r = canonical_arrays(mdp)
    return jnp.asarray(ns), jnp.asarray(lk), jnp.asarray(r)


def _sweep(fn, Ts: np.ndarray, sweep: bool):
    if sweep:
        return jax.vmap(fn)(jnp.asarray(Ts))
    return fn(jnp.asarray(Ts))


# ---------------------------------------------------------------------- counting
def num_paths(mdp, horizon: int, x0=None) -> int:
    """Number of paths of positive weight from the support of ``x0`` (counting semiring).

    Exact (a Python ``int``, arbitrarily large). For full support and deterministic
    transitions it is ``|supp x0| A^H``.
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    x0 = _initial(mdp, x0)
    ns, lk, _ = canonical_arrays(mdp)
    N = count_paths_table(ns, np.isfinite(lk), horizon)
    return int(sum(int(v) for v in N[horizon][x0 > 0]))


# ------------------------------------------------------------------- enumeration
class _Unranker:
    """Tables that map a path index ``i in [0, N)`` to the ``i``-th path (lexicographic)."""

    def __init__(self, mdp: MDP, horizon: int, x0: np.ndarray):
        ns, lk, r = canonical_arrays(mdp)
        S = mdp.num_states
        live = np.isfinite(lk)
        e_idx = np.flatnonzero(live.ravel())  # C order: sorted by (s, a, b)
        e_src, e_act, _ = np.unravel_index(e_idx, lk.shape)
        self.e_act = e_act.astype(np.int64)
        self.e_dst = ns.ravel()[e_idx]
        self.e_lk = lk.ravel()[e_idx]
        self.e_r = r.ravel()[e_idx]
        counts = count_paths_table(ns, live, horizon)
        self.roots = np.flatnonzero(x0 > 0)
        root_counts = [int(v) for v in counts[horizon][self.roots]]
        self.total = sum(root_counts)
        self.horizon = horizon
        self.logx0 = _log(x0)
        if self.total >= MAX_STREAMED:
            raise ValueError(
                f"horizon: {self.total:.3e} paths of horizon {horizon} cannot be enumerated, even "
                "streamed; use quasispecies.paths.core.top_k or trajectory_stats instead"
            )
        counts = counts.astype(np.int64)
        self.counts = counts
        self.root_counts = np.asarray(root_counts, dtype=np.int64)
        self.root_cum = np.cumsum(self.root_counts)
        indptr = np.searchsorted(e_src, np.arange(S + 1))
        empty = np.zeros(0, dtype=np.int64)
        self.cum: list[np.ndarray] = [empty]  # index = steps to go
        self.base: list[np.ndarray] = [empty]
        for rem in range(1, horizon + 1):
            c = np.cumsum(counts[rem - 1][self.e_dst])
            self.cum.append(c)
            self.base.append(np.concatenate([[0], c])[indptr[:-1]])

    def unrank(self, first: int, last: int):
        """Paths ``first .. last - 1``: states, actions, sum log K (with x0), G."""
        H = self.horizon
        g = np.arange(first, last, dtype=np.int64)
        k = np.searchsorted(self.root_cum, g, side="right")
        s = self.roots[k]
        j = g - (self.root_cum[k] - self.root_counts[k])
        n = g.shape[0]
        states = np.empty((n, H + 1), dtype=np.int64)
        actions = np.empty((n, H), dtype=np.int64)
        states[:, 0] = s
        lp = self.logx0[s].copy()
        G = np.zeros(n)
        for t in range(H):
            rem = H - t
            cum = self.cum[rem]
            pos = self.base[rem][s] + j
            e = np.searchsorted(cum, pos, side="right")
            dst = self.e_dst[e]
            j = pos - (cum[e] - self.counts[rem - 1][dst])
            actions[:, t] = self.e_act[e]
            states[:, t + 1] = dst
            lp += self.e_lk[e]
            G += self.e_r[e]
            s = dst
        return states, actions, lp, G


def _log_weight(lp: np.ndarray, G: np.ndarray, Ts) -> np.ndarray:
    """``lp + G / T`` (``G`` at ``T = 0``); a leading axis for a 1-D ``Ts``."""
    T = np.asarray(Ts, dtype=np.float64)
    if T.ndim:
        return np.stack([_log_weight(lp, G, t) for t in T]) if T.size else np.empty((0, *G.shape))
    return G.copy() if float(T) == 0.0 else lp + G / float(T)


def _make_paths(states, actions, lp, G, Ts, sweep: bool) -> Paths:
    lw = _log_weight(lp, G, Ts)
    if sweep:
        K = len(Ts)

        def bc(a):
            return np.broadcast_to(a, (K, *a.shape))

        return Paths(bc(states), bc(actions), lw, bc(G), bc(lp))
    return Paths(states, actions, lw, G, lp)


def _progress(progress, total: int, desc: str):
    from tqdm import tqdm

    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    return tqdm(
        total=total, unit="path", unit_scale=True, desc=desc, disable=not progress, leave=False
    )


def iter_chunks(
    mdp,
    T,
    horizon: int,
    x0=None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    start: int = 0,
    stop: int | None = None,
    progress: bool | None = None,
) -> Iterator[Paths]:
    """Stream the paths of :func:`enumerate` as :class:`Paths` chunks of ``chunk_size`` rows.

    Paths come in lexicographic order of ``(s_0, a_0, s_1, a_1, ..., s_H)`` (successor
    slot order within an action); path ``i`` is the same path in every call, so a run
    interrupted after ``m`` paths resumes with ``start=m``. Memory is ``O(chunk_size H)``
    plus ``O(H E)`` tables (``E`` transitions), whatever the number of paths.
    ``progress``: a tqdm bar on stderr (default: only when stderr is a terminal).
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    chunk_size = check_nonneg_int(chunk_size, "chunk_size", minimum=1)
    start = check_nonneg_int(start, "start")
    Ts, sweep = check_temperature(T)
    x0 = _initial(mdp, x0)
    plan = _Unranker(mdp, horizon, x0)
    stop = plan.total if stop is None else min(check_nonneg_int(stop, "stop"), plan.total)
    return _chunks(plan, Ts, sweep, chunk_size, start, stop, progress)


def _chunks(plan, Ts, sweep, chunk_size, start, stop, progress) -> Iterator[Paths]:
    with _progress(progress, max(stop - start, 0), "paths") as bar:
        for first in range(start, stop, chunk_size):
            last = min(first + chunk_size, stop)
            states, actions, lp, G = plan.unrank(first, last)
            bar.update(last - first)
            yield _make_paths(states, actions, lp, G, Ts, sweep)


def enumerate(
    mdp,
    T,
    horizon: int,
    x0=None,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool | None = None,
) -> Paths:
    r"""Every path of positive weight, with its log weight (DESIGN §4).

    Parameters
    ----------
    mdp : MDP
    T : float or (K,) array, ``>= 0``
    horizon : int ``H >= 0``
    x0 : (S,) probability vector, int start state, or None (uniform)
    max_bytes : refuse (``ValueError`` naming ``horizon``) when the result would exceed
        this many bytes; ``None`` removes the limit. Stream with :func:`iter_chunks` instead.

    Returns
    -------
    :class:`Paths` with ``.states (N, H+1)``, ``.actions (N, H)``,
    ``.log_weight (N,) = log x0 + sum log K + G/T`` (at ``T = 0``: ``G``), in the order of
    :func:`iter_chunks`. ``T log sum exp(log_weight)`` over the paths ending in ``s`` is
    :func:`quasispecies.scaled_log_population`.
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    Ts, sweep = check_temperature(T)
    x0 = _initial(mdp, x0)
    plan = _Unranker(mdp, horizon, x0)
    N = plan.total
    nT = len(Ts) if sweep else 1
    need = N * (8 * (2 * horizon + 1) + 8 * (2 + nT))
    if max_bytes is not None and need > max_bytes:
        raise ValueError(
            f"horizon: {N} paths of horizon {horizon} need {need / 2**30:.2f} GiB, more than "
            f"max_bytes = {max_bytes / 2**30:.2f} GiB; stream them with "
            "quasispecies.paths.core.iter_chunks(...), keep the best with top_k(...), or raise max_bytes"
        )
    states = np.empty((N, horizon + 1), dtype=np.int64)
    actions = np.empty((N, horizon), dtype=np.int64)
    lp = np.empty(N)
    G = np.empty(N)
    with _progress(progress, N, "paths") as bar:
        for first in range(0, N, chunk_size):
            last = min(first + chunk_size, N)
            states[first:last], actions[first:last], lp[first:last], G[first:last] = plan.unrank(
                first, last
            )
            bar.update(last - first)
    return _make_paths(states, actions, lp, G, Ts, sweep)


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
    candidates per sweep. Fewer than ``k`` rows when fewer paths exist.
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    k = check_nonneg_int(k, "k", minimum=1)
    Ts, sweep = check_temperature(T)
    x0 = _initial(mdp, x0)
    ns, lk, r = canonical_arrays(mdp)
    arrays = _jax_arrays(mdp)
    logx0 = jnp.asarray(_log(x0))
    _, _, fbp, bp = _sweep(lambda t: _top_k_kernel(*arrays, logx0, t, horizon, k), Ts, sweep)
    fbp, bp = np.asarray(fbp), np.asarray(bp)
    outs = []
    for i in range(len(Ts) if sweep else 1):
        fb = fbp[i] if sweep else fbp
        b = bp[i] if sweep else bp
        states, actions, slots = _backtrack(fb, b, lk.shape, k, ns)
        lp = _log(x0)[states[:, 0]]
        G = np.zeros(states.shape[0])
        for t in range(horizon):
            lp = lp + lk[states[:, t], actions[:, t], slots[:, t]]
            G = G + r[states[:, t], actions[:, t], slots[:, t]]
        outs.append(
            (states, actions, lp, G, _log_weight(lp, G, np.asarray(Ts[i] if sweep else Ts)))
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


def trajectory_stats(mdp, T, horizon: int, x0=None) -> TrajectoryStats:
    r"""``T log Z``, entropy, ``E[G]`` and ``KL`` from the prior of the path distribution.

    ``p(path) = x0(s0) prod_t K(s_t, a_t, s_{t+1}) e^{G/T} / Z`` over the paths of
    :func:`enumerate`, computed by the entropy semiring in one forward sweep (no
    enumeration). The entropy falls from that of the exploration process (``T -> inf``) to
    that of the uniform-by-prior-weight choice among the best paths (``T = 0``).
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    Ts, sweep = check_temperature(T)
    x0 = _initial(mdp, x0)
    arrays = _jax_arrays(mdp)
    logx0 = jnp.asarray(_log(x0))
    u, c, h, g, kk = (
        np.asarray(a)
        for a in _sweep(lambda t: _stats_kernel(*arrays, logx0, t, horizon), Ts, sweep)
    )
    return TrajectoryStats(u, c, h, g, kk, -h - kk)


def entropy(mdp, T, horizon: int, x0=None) -> np.ndarray:
    """Entropy (nats) of the path distribution at ``T``; see :func:`trajectory_stats`."""
    return trajectory_stats(mdp, T, horizon, x0).entropy


__all__ += ["canonical_arrays", "entropy"]


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
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    Ts, sweep = check_temperature(T)
    arrays = _jax_arrays(mdp)
    pi, _, _ = _sweep(lambda t: _policy_kernel(*arrays, t, horizon), Ts, sweep)
    return np.asarray(pi)


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
    """
    mdp = _check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    Ts, sweep = check_temperature(T)
    x0 = _initial(mdp, x0)
    arrays = _jax_arrays(mdp)
    logx0 = jnp.asarray(_log(x0))
    return np.asarray(_sweep(lambda t: _marginal_kernel(*arrays, logx0, t, horizon), Ts, sweep))
