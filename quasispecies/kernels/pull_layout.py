r"""The pull (sliced-ELL, by destination) storage of a sparse replication operator.

The successor lists of an :class:`~quasispecies.model.mdp.MDP` describe a *push*:
``n_{t+1}(s') += n_t(s) K(s,a,b) e^{R(s,a,b)/T}`` over edges ``s -> s' = next_state[s,a,b]``
(row vectors: ``n_{t+1} = n_t W_T``). On a CPU (and on a GPU) a push is a scatter, which
XLA does not fuse and runs serially. Here the same operator is stored by *destination*
(the transpose, CSC-like):

.. math:: n_{t+1}(s') = \sum_{j < d(s')} n_t(p_j(s'))\, w_j(s'),
          \qquad w_j(s') = K_j(s') \, e^{R_j(s') / T},

where ``p_j(s')`` is the ``j``-th predecessor edge of ``s'``. States are grouped by in-degree
into *buckets* of a fixed width ``D`` (sliced ELLPACK): a bucket is a ``(D, n)`` table of
predecessors, rewards and log-kernel weights, padded with the semiring zero
(``log K = -inf``). The rare destinations of in-degree above :data:`MAX_WIDTH` (a sink fed
by ``10^5`` states, say) keep a segment reduction ("tail"). States are renumbered
internally so that each bucket is a contiguous range; :func:`to_internal` and
:func:`to_original` convert. The kernels on this layout are in
:mod:`quasispecies.kernels.pull`.

Reference: M. Kreutzer et al., "A unified sparse matrix data format for efficient general
sparse matrix-vector multiplication on modern processors with wide SIMD units",
SIAM J. Sci. Comput. 36 (2014) (SELL-C-sigma).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MAX_WIDTH",
    "WIDTHS",
    "PullOperator",
    "build",
    "is_cached",
    "pull_operator",
    "to_internal",
    "to_original",
]

#: Bucket widths (in-degrees are padded up to the next one). Destinations with a larger
#: in-degree go to the segment-reduction tail.
WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32)
MAX_WIDTH = WIDTHS[-1]


class PullOperator(NamedTuple):
    """The replication operator stored by destination (see the module docstring).

    Arrays carry a leading ``parts`` axis (one slice per device when sharded; ``parts = 1``
    otherwise). Internal state ``q = p * local_size + i`` is row ``i`` of part ``p``; within
    a part, rows are ``[in-degree 0 | bucket 0 | bucket 1 | ... | tail]``.

    Attributes
    ----------
    preds, rewards, logk : tuple of (parts, D_b, n_b) arrays
        Predecessor (internal index), reward and ``log K`` of each bucket's padded edges.
    tail_src, tail_dst, tail_reward, tail_logk : (parts, E_t) arrays
        Edges into high in-degree rows: source (internal), destination (local tail row).
    perm : (parts * local_size,) int numpy array
        Original state of each internal row (``-1`` for padding rows).
    inv : (S,) int numpy array
        Internal row of each original state.
    """

    preds: tuple
    rewards: tuple
    logk: tuple
    tail_src: jax.Array
    tail_dst: jax.Array
    tail_reward: jax.Array
    tail_logk: jax.Array
    perm: np.ndarray
    inv: np.ndarray
    n_zero: int
    n_tail: int
    parts: int
    reward_max: float

    @property
    def local_size(self) -> int:
        """Rows per part (in-degree 0, buckets, tail)."""
        return self.n_zero + sum(int(p.shape[2]) for p in self.preds) + self.n_tail

    @property
    def size(self) -> int:
        """Internal vector length, ``parts * local_size`` (padding rows included)."""
        return self.parts * self.local_size

    @property
    def num_states(self) -> int:
        """``S``, the number of states of the MDP."""
        return int(self.inv.shape[0])

    def device_arrays(self):
        """The array part, a pytree that jitted kernels take as an argument."""
        return (
            self.preds,
            self.rewards,
            self.logk,
            self.tail_src,
            self.tail_dst,
            self.tail_reward,
            self.tail_logk,
        )

    def static(self):
        """The hashable shape data that jitted kernels take as a static argument."""
        return (self.n_zero, self.n_tail, self.parts, tuple(int(p.shape[2]) for p in self.preds))


def _edges(mdp):
    """Live edges ``(src, dst, reward, log K)`` of an MDP, in ``(s, a, b)`` order."""
    lk = mdp.log_kernel
    live = np.isfinite(lk)
    S = lk.shape[0]
    src = np.broadcast_to(np.arange(S)[:, None, None], lk.shape)[live]
    dst = mdp.next_state[live]
    return src.astype(np.int64), dst.astype(np.int64), mdp.reward[live], lk[live]


def build(mdp, parts: int = 1) -> PullOperator:
    """Pull-form operator of ``mdp`` whose rows split evenly over ``parts`` devices.

    ``O(E log E)`` host work for ``E`` live edges; no ``S x S`` array.
    """
    S = mdp.num_states
    src, dst, rew, lk = _edges(mdp)
    return _build(S, src, dst, rew, lk, parts)


def _build(S, src, dst, rew, lk, parts: int) -> PullOperator:
    indeg = np.bincount(dst, minlength=S)
    widths = np.asarray(WIDTHS)
    # bucket code: 0 = in-degree 0, 1..len(WIDTHS) = bucket, len(WIDTHS)+1 = tail
    code = np.where(indeg == 0, 0, np.searchsorted(widths, indeg) + 1)
    ncode = len(WIDTHS) + 2
    used = [k for k in range(ncode) if k in (0, ncode - 1) or (code == k).any()]
    members = {k: np.flatnonzero(code == k) for k in used}
    # rows per part (padded so every part has the same shape)
    per_part = {k: -(-len(members[k]) // parts) for k in used}
    local_sizes = [per_part[k] for k in used]
    local_size = int(sum(local_sizes))
    offsets = dict(
        zip(used, np.concatenate([[0], np.cumsum(local_sizes)[:-1]]).tolist(), strict=True)
    )
    perm = np.full(parts * local_size, -1, dtype=np.int64)
    inv = np.empty(S, dtype=np.int64)
    part_of = np.empty(S, dtype=np.int64)
    local_row = np.empty(S, dtype=np.int64)
    for k in used:
        m = members[k]
        i = np.arange(len(m))
        p, r = np.divmod(i, max(per_part[k], 1))
        q = p * local_size + offsets[k] + r
        perm[q] = m
        inv[m] = q
        part_of[m] = p
        local_row[m] = r
    # sort edges by destination (stable: keeps the (s, a, b) order within a row)
    order = np.argsort(dst, kind="stable")
    src, dst, rew, lk = src[order], dst[order], rew[order], lk[order]
    start = np.concatenate([[0], np.cumsum(indeg)[:-1]])
    rank = np.arange(len(dst)) - start[dst]
    isrc = inv[src]
    preds, rewards, logks = [], [], []
    for k in used:
        if k in (0, ncode - 1):
            continue
        D, n = int(WIDTHS[k - 1]), per_part[k]
        P = np.zeros((parts, D, n), dtype=np.int32)
        Rw = np.zeros((parts, D, n))
        L = np.full((parts, D, n), -np.inf)
        sel = code[dst] == k
        d = dst[sel]
        P[part_of[d], rank[sel], local_row[d]] = isrc[sel]
        Rw[part_of[d], rank[sel], local_row[d]] = rew[sel]
        L[part_of[d], rank[sel], local_row[d]] = lk[sel]
        preds.append(jnp.asarray(P))
        rewards.append(jnp.asarray(Rw))
        logks.append(jnp.asarray(L))
    tcode = ncode - 1
    sel = code[dst] == tcode
    d = dst[sel]
    counts = np.bincount(part_of[d], minlength=parts) if sel.any() else np.zeros(parts, int)
    Et = int(max(1, counts.max()))
    ts = np.zeros((parts, Et), dtype=np.int32)
    td = np.zeros((parts, Et), dtype=np.int32)
    tr = np.zeros((parts, Et))
    tl = np.full((parts, Et), -np.inf)
    if sel.any():
        pp = part_of[d]
        o = np.argsort(pp, kind="stable")
        pos = np.arange(len(d)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[pp[o]]
        ts[pp[o], pos] = isrc[sel][o]
        td[pp[o], pos] = local_row[d][o]
        tr[pp[o], pos] = rew[sel][o]
        tl[pp[o], pos] = lk[sel][o]
    rmax = float(np.max(rew)) if len(rew) else 0.0
    return PullOperator(
        tuple(preds),
        tuple(rewards),
        tuple(logks),
        jnp.asarray(ts),
        jnp.asarray(td),
        jnp.asarray(tr),
        jnp.asarray(tl),
        perm,
        inv,
        per_part[0],
        per_part[tcode],
        parts,
        rmax,
    )


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pull_operator(mdp, parts: int = 1) -> PullOperator:
    """:func:`build`, cached per MDP object (MDPs are treated as immutable)."""
    per = _CACHE.setdefault(mdp, {})
    if parts not in per:
        per[parts] = build(mdp, parts)
    return per[parts]


def is_cached(mdp, parts: int = 1) -> bool:
    """Whether :func:`pull_operator` has built (and holds) the operator of ``mdp``."""
    return parts in _CACHE.get(mdp, {})


def to_internal(op: PullOperator, v: np.ndarray, fill=0.0) -> np.ndarray:
    """Reorder a (..., S) array into the internal (..., parts * local_size) order."""
    out = np.full((*v.shape[:-1], op.size), fill, dtype=np.result_type(v, type(fill)))
    out[..., op.inv] = v
    return out


def to_original(op: PullOperator, v) -> np.ndarray:
    """Inverse of :func:`to_internal`: a (..., size) internal array in the caller's (..., S)
    state order (padding rows dropped)."""
    return np.asarray(v)[..., op.inv]
