r"""The population as a sum over its paths, and the paths themselves, streamed.

Expanding ``n_H = x_0 W_T^H`` (row vectors: ``n_{t+1} = n_t W_T``,
``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)``) term by term gives the exact
path sum

.. math::
   n_H(s') = \sum_{s_0 a_0 s_1 \dots a_{H-1} s_H = s'} x_0(s_0)
             \prod_{t<H} K(s_t, a_t, s_{t+1}) \; e^{G/T}, \qquad G = \sum_{t<H} R(s_t, a_t, s_{t+1}),

``K[s, a, s'] = pi0(a|s) P(s'|s, a)``. A path's log weight is
``log x0(s0) + sum_t log K + G/T`` (at ``T = 0``: ``G``, the exponent that survives the
``T -> 0+`` limit).

:func:`enumerate` / :func:`iter_chunks` produce the paths by *unranking*: with exact
counts ``N_r(s)`` of ``r``-step paths from ``s`` (the counting semiring, J. Goodman,
"Semiring parsing", *Computational Linguistics* 25, 1999) the ``i``-th path in
lexicographic order ``(s_0, a_0, s_1, a_1, ...)`` is found by ``H`` binary searches, so
any slice of the ``N`` paths is produced in ``O(chunk H)`` memory and an interrupted run
resumes at the first unfinished index. :func:`num_paths` is the count itself.

Paths that differ only in a duplicated successor entry (a sparse MDP listing the same
``(s, a, s')`` twice with equal reward) are one path; their kernel weights add
(:func:`canonical_arrays`).
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from quasispecies.model.mdp import MDP, check_mdp, initial_population
from quasispecies.model.validate import check_nonneg_int, check_temperature
from quasispecies.semiring import count_paths_table, host

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_BYTES",
    "MAX_STREAMED",
    "Paths",
    "canonical_arrays",
    "enumerate",
    "iter_chunks",
    "log0",
    "num_paths",
    "path_log_weight",
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


def log0(x: np.ndarray) -> np.ndarray:
    """``log x`` with ``log 0 = -inf`` and no warning (the log semiring's zero)."""
    with np.errstate(divide="ignore"):
        return np.log(x)


_CANON: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def canonical_arrays(mdp: MDP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(next_state, log_kernel, reward)`` NumPy arrays ``(S, A, B)`` with duplicates merged.

    Successor entries of one ``(s, a)`` with the same next state and the same reward are
    one transition (their log kernel weights are added in the log semiring,
    :func:`quasispecies.semiring.host.sorted_segment_lse`; the extra slots
    become ``-inf``). Dead entries have reward 0. Cached per MDP object.

    Needs concrete rewards and ``pi0``: enumerating, counting and ranking paths is a
    discrete choice, so under ``jax.grad`` / ``jit`` a ``ValueError`` says to differentiate
    a path's weight by indexing the traced ``R`` with the paths' ``states`` / ``actions``.
    """
    if mdp.traced:
        raise ValueError(
            "mdp: paths are enumerated, counted and ranked from concrete rewards and pi0 "
            "(a discrete choice with no derivative); compute them untraced and index the "
            "traced R with their states/actions, or differentiate paths.trajectory_stats"
        )
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
            merged = host.sorted_segment_lse(flat[so], starts)
            flat[so] = -np.inf
            flat[so[starts]] = merged
            lk = flat.reshape(lk.shape)
            r = np.where(np.isfinite(lk), r, 0.0)
    out = (ns, lk, r)
    _CANON[mdp] = out
    return out


# ---------------------------------------------------------------------- counting
def num_paths(mdp, horizon: int, x0=None) -> int:
    """Number of paths of positive weight from the support of ``x0`` (counting semiring).

    ``N_0(s) = 1``, ``N_r(s) = sum_{(a, s'): K[s,a,s'] > 0} N_{r-1}(s')``; the answer is
    ``sum_{s in supp x0} N_H(s)``, the path sum of ``x0 W^H 1`` in the counting semiring
    (J. Goodman, "Semiring parsing", 1999). Exact (a Python ``int``, arbitrarily large).
    For full support and deterministic transitions it is ``|supp x0| A^H``.
    """
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    x0 = initial_population(mdp, x0)
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
        self.logx0 = log0(x0)
        if self.total >= MAX_STREAMED:
            raise ValueError(
                f"horizon: {self.total:.3e} paths of horizon {horizon} cannot be enumerated, even "
                "streamed; use quasispecies.paths.top_k or trajectory_stats instead"
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


def path_log_weight(lp: np.ndarray, G: np.ndarray, Ts) -> np.ndarray:
    """A path's log weight ``lp + G / T`` from its log prior ``lp = log x0 + sum log K``
    and return ``G``; at ``T = 0`` the exponent that survives ``T -> 0+``, ``G`` (the
    ``log_weight`` of :class:`Paths`, DESIGN §4). A leading axis for a 1-D ``Ts``."""
    T = np.asarray(Ts, dtype=np.float64)
    if T.ndim:
        return (
            np.stack([path_log_weight(lp, G, t) for t in T]) if T.size else np.empty((0, *G.shape))
        )
    return G.copy() if float(T) == 0.0 else lp + G / float(T)


def _make_paths(states, actions, lp, G, Ts, sweep: bool) -> Paths:
    lw = path_log_weight(lp, G, Ts)
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
    The paths are the terms of ``n_H = x0 W_T^H`` (row vectors, ``W_T[s, s'] =
    sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s']/T)``), unranked from counting-semiring tables
    (J. Goodman, "Semiring parsing", 1999).
    """
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    chunk_size = check_nonneg_int(chunk_size, "chunk_size", minimum=1)
    start = check_nonneg_int(start, "start")
    Ts, sweep = check_temperature(T)
    x0 = initial_population(mdp, x0)
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
    :func:`quasispecies.scaled_log_population` (the row vector ``T log (x0 W_T^H)``).
    The paths are unranked from exact counting-semiring tables (Goodman 1999).
    """
    mdp = check_mdp(mdp)
    horizon = check_nonneg_int(horizon, "horizon")
    Ts, sweep = check_temperature(T)
    x0 = initial_population(mdp, x0)
    plan = _Unranker(mdp, horizon, x0)
    N = plan.total
    nT = len(Ts) if sweep else 1
    need = N * (8 * (2 * horizon + 1) + 8 * (2 + nT))
    if max_bytes is not None and need > max_bytes:
        raise ValueError(
            f"horizon: {N} paths of horizon {horizon} need {need / 2**30:.2f} GiB, more than "
            f"max_bytes = {max_bytes / 2**30:.2f} GiB; stream them with "
            "quasispecies.paths.iter_chunks(...), keep the best with top_k(...), or raise max_bytes"
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
