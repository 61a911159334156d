r"""More semirings for path sums, and the one forward / backward programme written against them.

:mod:`quasispecies.semiring.core` holds the log semiring at temperature ``T`` (max-plus at
``T = 0``, with a tie multiplicity). A path sum over the MDP's paths
``s_0 a_0 s_1 ... a_{H-1} s_H`` is the same dynamic programme in any semiring; only
"plus" (combine the paths that meet in a state) and "times" (extend a path by a
transition) change. Following pytorch-struct (Rush 2020, *Torch-Struct*), each semiring
here is a small object and :func:`forward_scan` / :func:`backward_scan` are written once.

An *element* is a tuple of arrays with a leading state axis. A transition
``e = (s, a, b)`` (successor ``next_state[s, a, b]``) carries the edge element built from
its log kernel ``log K = log pi0 + log P`` and reward ``R``:

=================  =====================================  ===========================================
semiring           element of a set of paths              plus / times
=================  =====================================  ===========================================
:class:`Log`       ``(u, c)``: ``sum w = exp(u/T + c)``   ``T``-log-sum-exp / add (max-plus at 0)
:class:`Entropy`   ``(u, c, h, g, k)``                    chain rule of entropy / shift ``g, k``
:class:`KBest`     ``(p, q)`` each ``(k,)``: the ``k``    merge-and-keep-``k`` / add
                   largest path scores, best first
=================  =====================================  ===========================================

* **Entropy** (Li & Eisner 2009, "First- and second-order expectation semirings"; here in
  normalised form). ``(u, c)`` is the log-semiring weight of the set; ``h`` the entropy of
  the normalised path distribution inside it, ``p(path) ∝ x0 prod K exp(G/T)``; ``g`` the
  expected return ``E[G]`` and ``k`` the expected log prior weight ``E[log x0 + sum log K]``.
  Extending every path by one transition multiplies every weight by the same factor, so
  ``h`` is unchanged and ``g, k`` shift by ``R, log K``. Merging disjoint sets with
  weights ``w_i`` and ``p_i = w_i / sum w``:
  ``h = sum_i p_i h_i + H(p)``, ``g = sum_i p_i g_i`` (the chain rule). Working with
  ``log p_i = (u_i - U)/T + c_i - C`` avoids the cancellation of ``log Z - E[G]/T`` at small
  ``T``. At ``T = 0`` the ``p_i`` are the exact ``T -> 0+`` limit: the tied best paths,
  weighted by their kernel weight. ``KL(p_T || prior) = -h - k``.
* **k-best** (Huang & Chiang 2005, "Better k-best parsing"; pytorch-struct ``KMaxSemiring``).
  A path's score is ``p = log x0 + sum log K + G/T`` at ``T > 0``; at ``T = 0`` the pair
  ``(p, q) = (G, log x0 + sum log K)`` ordered lexicographically, which is the ``T -> 0+``
  order of ``G/T + log prior``. Plus keeps the ``k`` best of a multiset, with back-pointers.
* **Counting** (``(N, +, x)``): the number of paths of positive weight, exactly, in NumPy
  (:func:`count_paths_table`; ``A^H`` per start state for full support and deterministic
  transitions).

Reference: J. Goodman, "Semiring parsing", *Computational Linguistics* 25 (1999).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from quasispecies.semiring.core import (
    TIE_RTOL,
    LogPair,
    init_log_pair,
    reduce_pair,
    segment_reduce_pair,
    segment_softmax_pair,
)

__all__ = [
    "Entropy",
    "EntropyElement",
    "KBest",
    "Log",
    "backward_scan",
    "count_paths_table",
    "forward_scan",
]


def _seg_sum(x: Array, seg: Array, num: int) -> Array:
    return jax.ops.segment_sum(x, seg, num_segments=num)


# --------------------------------------------------------------------- semirings
class Log:
    r"""The log semiring at ``T`` (max-plus with tie multiplicity at ``T = 0``): path sums.

    Elements ``(u, c)`` stand for ``exp(u / T + c)``; plus is ``(+)_T``
    (:func:`~quasispecies.semiring.core.segment_reduce_pair`), times is ``+`` on both
    components, zero ``(-inf, -inf)``, one ``(0, 0)``. The forward scan in it gives
    ``T log n_H`` with ``n_H = x_0 W_T^H`` (row vectors). J. Goodman, "Semiring parsing",
    *Computational Linguistics* 25 (1999): the inside / Viterbi semirings.
    """

    name = "log"

    @staticmethod
    def init(logx0: Array, T: Array) -> LogPair:
        """The element of the start population ``exp(logx0)`` (``c = log x0`` at ``T = 0``)."""
        return init_log_pair(logx0, T)

    @staticmethod
    def edge(lk: Array, r: Array, T: Array) -> LogPair:
        """The element ``K e^{R/T}`` of a transition: ``(R, log K)``."""
        return LogPair(jnp.where(jnp.isfinite(lk), r, -jnp.inf), lk)

    @staticmethod
    def times(x: LogPair, e: LogPair) -> LogPair:
        """Extend paths by a transition: add both components."""
        return LogPair(x.u + e.u, x.c + e.c)

    @staticmethod
    def plus(x: LogPair, seg: Array, num: int, T: Array):
        """Merge the paths that meet in a state (segment ``(+)_T``); no back-pointers."""
        return segment_reduce_pair(x.u, x.c, seg, num, T), None


class EntropyElement(NamedTuple):
    """A set of paths in the entropy semiring (see the module docstring)."""

    u: Array  #: ``T log`` of the total weight (max-plus value at ``T = 0``)
    c: Array  #: log multiplicity (``T = 0``); 0 at ``T > 0``
    h: Array  #: entropy (nats) of the normalised path distribution in the set
    g: Array  #: expected return ``E[G]``
    k: Array  #: expected log prior weight ``E[log x0 + sum log K]``


class Entropy:
    r"""Entropy / expectation semiring in normalised (chain-rule) form (module docstring).

    Times shifts ``g, k`` by ``R, log K``; plus merges disjoint sets with the chain rule
    ``h = sum_i p_i h_i + H(p)``. Z. Li and J. Eisner, "First- and second-order expectation
    semirings" (EMNLP 2009), in the framework of J. Goodman, "Semiring parsing" (1999).
    """

    name = "entropy"

    @staticmethod
    def init(logx0: Array, T: Array) -> EntropyElement:
        """One path per start state: entropy 0, return 0, prior ``log x0``."""
        base = Log.init(logx0, T)
        z = jnp.zeros_like(logx0)
        return EntropyElement(base.u, base.c, z, z, jnp.where(jnp.isfinite(logx0), logx0, 0.0))

    @staticmethod
    def edge(lk: Array, r: Array, T: Array) -> EntropyElement:
        """A transition: weight ``(R, log K)``, entropy 0, return ``R``, prior ``log K``."""
        live = jnp.isfinite(lk)
        z = jnp.zeros_like(lk)
        return EntropyElement(
            jnp.where(live, r, -jnp.inf), lk, z, jnp.where(live, r, 0.0), jnp.where(live, lk, 0.0)
        )

    @staticmethod
    def times(x: EntropyElement, e: EntropyElement) -> EntropyElement:
        """Extend every path of the set by one transition."""
        return EntropyElement(x.u + e.u, x.c + e.c, x.h + e.h, x.g + e.g, x.k + e.k)

    @staticmethod
    def plus(x: EntropyElement, seg: Array, num: int, T: Array):
        """Merge disjoint sets per segment by the chain rule (weights ``p_i`` normalised)."""
        p, logp, tot = segment_softmax_pair(x.u, x.c, seg, num, T)
        live = p > 0
        plogp = jnp.where(live, p * jnp.where(live, logp, 0.0), 0.0)
        h = _seg_sum(jnp.where(live, p * x.h, 0.0) - plogp, seg, num)
        g = _seg_sum(jnp.where(live, p * x.g, 0.0), seg, num)
        k = _seg_sum(jnp.where(live, p * x.k, 0.0), seg, num)
        return EntropyElement(tot.u, tot.c, h, g, k), None


class KBest:
    """The ``k``-best semiring: keep the ``k`` largest path scores, with back-pointers.

    An element is ``(p, q)``, each ``(..., k)`` sorted best first; ``p = -inf`` is an
    empty slot. :meth:`plus` returns, for every kept slot, the flat index
    ``i * k + j`` of the candidate (entry ``i`` of the segment input, slot ``j``).
    L. Huang and D. Chiang, "Better k-best parsing" (2005); J. Goodman, "Semiring
    parsing" (1999).
    """

    name = "kbest"

    def __init__(self, k: int):
        self.k = int(k)

    def init(self, logx0: Array, T: Array) -> tuple[Array, Array]:
        """One path per start state in slot 0 (score ``log x0``; ``(0, log x0)`` at ``T = 0``)."""
        pos = jnp.isfinite(logx0)
        lx = jnp.where(pos, logx0, 0.0)
        p0 = jnp.where(pos, jnp.where(T > 0, lx, 0.0), -jnp.inf)
        q0 = jnp.where(pos, jnp.where(T > 0, 0.0, lx), -jnp.inf)
        pad = jnp.full((*logx0.shape, self.k - 1), -jnp.inf, dtype=logx0.dtype)
        return (
            jnp.concatenate([p0[..., None], pad], axis=-1),
            jnp.concatenate([q0[..., None], pad], axis=-1),
        )

    def edge(self, lk: Array, r: Array, T: Array) -> tuple[Array, Array]:
        """A transition's score: ``log K + R/T`` at ``T > 0``; ``(R, log K)`` at ``T = 0``."""
        live = jnp.isfinite(lk)
        sT = jnp.where(T > 0, T, 1.0)
        ep = jnp.where(live, jnp.where(T > 0, jnp.where(live, lk, 0.0) + r / sT, r), -jnp.inf)
        eq = jnp.where(live, jnp.where(T > 0, 0.0, lk), -jnp.inf)
        return ep[..., None], eq[..., None]

    @staticmethod
    def times(x, e):
        """Extend every kept path by a transition: add the scores."""
        return x[0] + e[0], x[1] + e[1]

    def plus(self, x, seg: Array, num: int, T: Array):
        """Keep the ``k`` best candidates per segment, with back-pointers (see the class)."""
        p, q = x
        P = p.reshape(-1)
        Q = q.reshape(-1)
        sg = jnp.broadcast_to(seg[:, None], p.shape).reshape(-1)
        dead = jnp.isneginf(P) | jnp.isneginf(Q)
        sg = jnp.where(dead, num, sg)  # empty slots sort into an overflow segment
        nP = -jnp.where(dead, 0.0, P)
        nQ = -jnp.where(dead, 0.0, Q)
        first = jnp.lexsort((nQ, nP, sg))
        # Scores equal up to rounding (TIE_RTOL, chained) form one tie group, ordered by the
        # secondary key: at T = 0 that is the T -> 0+ order of paths with equal return.
        sp, ssg = -nP[first], sg[first]
        prev = jnp.concatenate([sp[:1], sp[:-1]])
        prev_sg = jnp.concatenate([ssg[:1] - 1, ssg[:-1]])
        brk = (ssg != prev_sg) | (prev - sp > TIE_RTOL * (1.0 + jnp.abs(prev)))
        group = jnp.cumsum(brk)
        order = first[jnp.lexsort((nP[first], nQ[first], group))]
        ss = sg[order]
        start = jnp.searchsorted(ss, jnp.arange(num + 1), side="left")
        rank = jnp.arange(P.shape[0]) - start[ss]
        keep = (ss < num) & (rank < self.k)
        row = jnp.where(keep, ss, num)
        col = jnp.where(keep, rank, 0)
        newp = jnp.full((num + 1, self.k), -jnp.inf, P.dtype).at[row, col].set(P[order])
        newq = jnp.full((num + 1, self.k), -jnp.inf, P.dtype).at[row, col].set(Q[order])
        bp = jnp.full((num + 1, self.k), -1, jnp.int64 if P.dtype == jnp.float64 else jnp.int32)
        bp = bp.at[row, col].set(order.astype(bp.dtype))
        return (newp[:num], newq[:num]), bp[:num]


# ------------------------------------------------------------------ the programmes
def forward_scan(
    sr,
    logx0: Array,
    next_state: Array,
    log_kernel: Array,
    reward: Array,
    T: Array,
    horizon: int,
    history: bool = False,
):
    r"""Forward path sum in semiring ``sr`` over ``horizon`` steps (to be traced under ``jit``).

    ``alpha_0(s) = sr.init(log x0)``;
    ``alpha_{t+1}(s') = (+)_{(s,a,b): next_state[s,a,b] = s'} alpha_t(s) (x) edge(s,a,b)``.
    Returns ``(alpha_H, aux)`` with ``aux`` the stacked per-step outputs of ``sr.plus``
    (back-pointers for :class:`KBest`, ``None`` otherwise); with ``history=True``,
    ``(alpha_H, (aux, alphas))`` where ``alphas`` stacks ``alpha_0 .. alpha_H``. Arrays are
    ``(S, A, B)`` successor lists as in :class:`quasispecies.MDP`.
    """
    S = log_kernel.shape[0]
    e = sr.edge(log_kernel.reshape(-1), reward.reshape(-1), T)
    src = jnp.repeat(jnp.arange(S), log_kernel.shape[1] * log_kernel.shape[2])
    dst = next_state.reshape(-1)

    def step(alpha, _):
        gathered = jax.tree_util.tree_map(lambda a: a[src], alpha)
        new, aux = sr.plus(sr.times(gathered, e), dst, S, T)
        return new, ((aux, new) if history else aux)

    alpha0 = sr.init(logx0, T)
    if horizon == 0:
        if history:
            return alpha0, (None, jax.tree_util.tree_map(lambda a: a[None], alpha0))
        return alpha0, None
    final, out = jax.lax.scan(step, alpha0, None, length=horizon)
    if history:
        aux, alphas = out
        alphas = jax.tree_util.tree_map(
            lambda a0, a: jnp.concatenate([a0[None], a]), alpha0, alphas
        )
        return final, (aux, alphas)
    return final, out


def backward_scan(next_state: Array, log_kernel: Array, reward: Array, T: Array, horizon: int):
    r"""Backward messages in the log semiring, with the per-action values.

    ``beta_H = (0, 0)`` (the semiring one);
    ``Q_t(s, a) = (+)_b [R(s,a,b) + beta_{t+1}(next_state)]`` with multiplicity
    ``log K(s,a,b) + d_{t+1}``; ``beta_t(s) = (+)_a Q_t(s, a)``. At ``T > 0`` this is
    ``T log`` of ``z_t = W_T z_{t+1}`` split by action; at ``T = 0`` the optimistic
    (best-path) Bellman recursion. Returns ``(beta, Q)``: ``beta`` a
    :class:`~quasispecies.semiring.core.LogPair` of ``(H + 1, S)`` arrays, ``Q`` of ``(H, S, A)``.
    """
    S = log_kernel.shape[0]
    z = jnp.zeros((S,), reward.dtype)

    def step(beta, _):
        v, d = beta
        U = reward + v[next_state]
        C = log_kernel + d[next_state]
        U = jnp.where(jnp.isfinite(log_kernel), U, -jnp.inf)
        Q = reduce_pair(U, C, T, axis=-1)
        b = reduce_pair(Q.u, Q.c, T, axis=-1)
        return b, (b, Q)

    end = LogPair(z, z)
    if horizon == 0:
        return LogPair(z[None], z[None]), LogPair(
            jnp.zeros((0, S, log_kernel.shape[1])), jnp.zeros((0, S, log_kernel.shape[1]))
        )
    _, (betas, Qs) = jax.lax.scan(step, end, None, length=horizon, reverse=True)
    beta = LogPair(jnp.concatenate([betas.u, z[None]]), jnp.concatenate([betas.c, z[None]]))
    return beta, Qs


def count_paths_table(next_state: np.ndarray, live: np.ndarray, horizon: int) -> np.ndarray:
    r"""Exact path counts ``N[r, s]``: paths of ``r`` steps starting in ``s`` (counting semiring).

    ``N[0, s] = 1``; ``N[r, s] = sum_{(a, b) live} N[r-1, next_state[s, a, b]]``.
    ``int64`` while the counts fit, Python integers (``object`` arrays) beyond.
    """
    S = next_state.shape[0]
    src = np.broadcast_to(np.arange(S)[:, None, None], next_state.shape)[live]
    dst = next_state[live]
    out = [np.ones(S, dtype=np.int64)]
    big = False
    for _ in range(horizon):
        prev = out[-1]
        if not big:
            est = np.zeros(S)
            np.add.at(est, src, prev[dst].astype(np.float64))
            if est.max(initial=0.0) >= 2.0**62:
                big = True
                out = [np.array([int(v) for v in o], dtype=object) for o in out]
                prev = out[-1]
        nxt = np.zeros(S, dtype=object if big else np.int64)
        if big:
            for s_, d_ in zip(src.tolist(), dst.tolist(), strict=True):
                nxt[s_] += prev[d_]
        else:
            np.add.at(nxt, src, prev[dst])
        out.append(nxt)
    return np.stack(out) if not big else np.array(out, dtype=object)
