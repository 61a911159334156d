r"""Sparse replication operators in *pull* form, and the finite-horizon kernels built on them.

The successor lists of an :class:`~quasispecies.model.mdp.MDP` describe a *push*:
``n_{t+1}(s') += n_t(s) K(s,a,b) e^{R(s,a,b)/T}`` over edges ``s -> s' = next_state[s,a,b]``.
On a CPU (and on a GPU) a push is a scatter, which XLA does not fuse and runs serially.
Here the same operator is stored by *destination* (the transpose, CSC-like):

.. math:: n_{t+1}(s') = \sum_{j < d(s')} n_t(p_j(s'))\, w_j(s'),
          \qquad w_j(s') = K_j(s') \, e^{R_j(s') / T},

where ``p_j(s')`` is the ``j``-th predecessor edge of ``s'``. States are grouped by in-degree
into *buckets* of a fixed width ``D`` (sliced ELLPACK): a bucket is a ``(D, n)`` table of
predecessors, rewards and log-kernel weights, padded with the semiring zero
(``log K = -inf``). One step is then ``D`` fused gather-multiply-adds per bucket, with no
scatter; the rare destinations of in-degree above :data:`MAX_WIDTH` (a sink fed by
``10^5`` states, say) keep a segment reduction ("tail"). States are renumbered internally so
that each bucket is a contiguous range; inputs and outputs are in the caller's numbering.

Three kernels share the operator, chosen per temperature on the host:

* **linear** (``T > 0``): ``n`` itself, renormalised by its maximum each step, with
  ``w = K e^{(R - R_max)/T}``. A guard checks every step that no product ``n w`` leaves
  the normal float64 range (smallest positive ``n`` times smallest ``w`` above ``1e-300``,
  see :data:`GUARD_LOG`); then every operation is exactly rounded and the result equals
  the log-domain one to float64 rounding. If the guard trips, the temperature is redone by
* **log** (``T > 0``): ``u = T log n`` with a log-sum-exp per destination, exactly the
  recursion of :func:`quasispecies.kernels.operators.forward` (no underflow at any ``T``);
* **pair** (any ``T``, used at ``T = 0``): the ``(u, c)`` pair of
  :func:`quasispecies.semiring.core.reduce_pair`, i.e. max-plus with tie multiplicities.

Every reduction across states is a ``max`` (order independent), so the result does not
depend on how rows are split over devices (see :mod:`quasispecies.kernels.sharding`).

Reference for the layout: M. Kreutzer et al., "A unified sparse matrix data format for
efficient general sparse matrix-vector multiplication on modern processors with wide
SIMD units", SIAM J. Sci. Comput. 36 (2014) (SELL-C-sigma).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.semiring.core import reduce_pair, segment_reduce_pair, softmax_pair

__all__ = [
    "GUARD_LOG",
    "MAX_WIDTH",
    "PullOperator",
    "build",
    "horizon",
    "pull_operator",
]

#: Bucket widths (in-degrees are padded up to the next one). Destinations with a larger
#: in-degree go to the segment-reduction tail.
WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32)
MAX_WIDTH = WIDTHS[-1]

#: The linear kernel is trusted while ``log(min positive n) + log(min w) >= GUARD_LOG``:
#: every product ``n w`` is then a normal float64 (``> 2.2e-308``) with room to spare, so no
#: term of any sum is flushed or loses relative precision.
GUARD_LOG = float(np.log(1e-300))


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
        return self.n_zero + sum(int(p.shape[2]) for p in self.preds) + self.n_tail

    @property
    def size(self) -> int:
        return self.parts * self.local_size

    @property
    def num_states(self) -> int:
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


# ------------------------------------------------------------------- local steps
# Each step maps the full internal vector (all parts) to this part's rows. `arrs` is one
# part's slice of `PullOperator.device_arrays()` (leading parts axis removed).


def _local(arrs, p):
    preds, rewards, logk, ts, td, tr, tl = arrs
    return (
        tuple(a[p] for a in preds),
        tuple(a[p] for a in rewards),
        tuple(a[p] for a in logk),
        ts[p],
        td[p],
        tr[p],
        tl[p],
    )


def _linear_weights(arrs, T, rmax):
    """``w = K e^{(R - R_max)/T}`` per padded edge, and ``log min w`` over live edges."""
    _, rewards, logk, _, _, tr, tl = arrs
    ws = tuple(jnp.exp(lk + (r - rmax) / T) for r, lk in zip(rewards, logk, strict=True))
    tw = jnp.exp(tl + (tr - rmax) / T)
    mins = [
        jnp.min(jnp.where(jnp.isfinite(lk), lk + (r - rmax) / T, jnp.inf), initial=jnp.inf)
        for r, lk in zip((*rewards, tr), (*logk, tl), strict=True)
    ]
    return ws, tw, jnp.min(jnp.stack(mins))


def _linear_step(arrs, ws, tw, n, static, scale=None):
    """``n W`` in pull form; with ``scale`` (a power of two), ``(scale n) W`` with the
    scaling applied to each gathered entry (exact: the same bits as scaling ``n`` first,
    without a pass over ``n`` to do it)."""
    n_zero, n_tail, _, _ = static
    preds, _, _, ts, td, _, _ = arrs

    def g(idx):
        return n[idx] if scale is None else n[idx] * scale

    outs = [jnp.zeros(n_zero, n.dtype)]
    for P, W in zip(preds, ws, strict=True):
        acc = g(P[0]) * W[0]
        for j in range(1, P.shape[0]):
            acc = acc + g(P[j]) * W[j]
        outs.append(acc)
    if n_tail:
        outs.append(jax.ops.segment_sum(g(ts) * tw, td, num_segments=n_tail))
    return jnp.concatenate(outs)


def _lse_rows(z):
    """``logsumexp`` over axis 0 of a ``(D, n)`` array, ``-inf`` where every entry is."""
    m = jnp.max(z, axis=0)
    ms = jnp.where(jnp.isfinite(m), m, 0.0)
    s = jnp.sum(jnp.exp(z - ms[None, :]), axis=0)
    return jnp.where(s > 0, ms + jnp.log(jnp.where(s > 0, s, 1.0)), -jnp.inf)


def _log_step(arrs, u, T, static):
    """``T logsumexp`` over predecessors: ``u'(s') = T log sum_j e^{(u(p_j) + R_j)/T + log K_j}``."""
    n_zero, n_tail, _, _ = static
    preds, rewards, logk, ts, td, tr, tl = arrs
    outs = [jnp.full(n_zero, -jnp.inf, u.dtype)]
    for P, R, L in zip(preds, rewards, logk, strict=True):
        # one (D, n) gather and a reduction over D: the same speed as D unrolled gathers
        # here (exp dominates), and far less for XLA to compile
        outs.append(T * _lse_rows((u[P] + R) / T + L))
    if n_tail:
        z = (u[ts] + tr) / T + tl
        zmax = jax.ops.segment_max(z, td, num_segments=n_tail)
        zms = jnp.where(jnp.isfinite(zmax), zmax, 0.0)
        s = jax.ops.segment_sum(jnp.exp(z - zms[td]), td, num_segments=n_tail)
        outs.append(T * jnp.where(s > 0, zms + jnp.log(jnp.where(s > 0, s, 1.0)), -jnp.inf))
    return jnp.concatenate(outs)


def _pair_step(arrs, u, c, T, static):
    """The ``(u, c)`` semiring step of :func:`quasispecies.kernels.operators.forward`, by destination."""
    n_zero, n_tail, _, _ = static
    preds, rewards, logk, ts, td, tr, tl = arrs
    us = [jnp.full(n_zero, -jnp.inf, u.dtype)]
    cs = [jnp.full(n_zero, -jnp.inf, u.dtype)]
    for P, R, L in zip(preds, rewards, logk, strict=True):
        U = jnp.stack([u[P[j]] + R[j] for j in range(P.shape[0])])
        C = jnp.stack([c[P[j]] + L[j] for j in range(P.shape[0])])
        out = reduce_pair(U, C, T, axis=0)
        us.append(out.u)
        cs.append(out.c)
    if n_tail:
        out = segment_reduce_pair(u[ts] + tr, c[ts] + tl, td, n_tail, T)
        us.append(out.u)
        cs.append(out.c)
    return jnp.concatenate(us), jnp.concatenate(cs)


# --------------------------------------------------------------- one temperature
# `gather` turns this part's rows into the full vector (identity on one device,
# all_gather under shard_map); `gmax` is the max over all parts.


def _max(v, gmax):
    return gmax(jnp.max(v, initial=-jnp.inf))


def _pow2_scale(m):
    """``(2^-e, e)`` with ``m = f 2^e``, ``f in [0.5, 1)`` (``m > 0``): exact rescaling."""
    _, e = jnp.frexp(m)
    return jnp.ldexp(jnp.ones((), m.dtype), -e), e


def _run_linear(arrs, T, n0, steps, static, rmax, history, gather, gmax):
    """Guarded linear-domain run. Returns (history or None, log n_final, log_total, ok).

    ``n`` is rescaled each step by the power of two nearest below its maximum, so the
    rescaling is exact and ``log_total = (sum of exponents) log 2``: no transcendental
    function inside the loop, and bitwise the same result for any split over devices.
    The guard compares binary exponents (integers) too.

    The loop carries the unscaled ``r = n_{t-1} W`` and its scale ``2^-e``
    (``n_t = r 2^-e``); the scaling is applied to each gathered entry of the next step,
    and the maximum (for ``e``) and the smallest positive entry (for the guard) come
    from one pass over ``r``: per step, one sweep over the edges and one over the states.
    """
    ws, tw, logwmin = _linear_weights(arrs, T, rmax)
    logwmin = -gmax(-logwmin)  # min over all parts
    guard_exp = int(np.floor(GUARD_LOG / np.log(2.0)))
    wexp = jnp.floor(logwmin / np.log(2.0))

    def rescale(r):
        """``(scale, e, alive, guard_ok)`` for ``n = r * scale``."""
        m = _max(r, gmax)
        mn = -gmax(jnp.max(jnp.where(r > 0, -r, -jnp.inf), initial=-jnp.inf))
        alive = m > 0
        scale, e = _pow2_scale(jnp.where(alive, m, 1.0))
        _, emin = jnp.frexp(jnp.where(jnp.isfinite(mn), mn, 1.0))
        # exponent of min positive n = exponent of min positive r - e (exact scaling)
        ok = (emin - e - 1 + wexp >= guard_exp) & jnp.isfinite(mn)
        return scale, e, alive, ok

    def step(carry, _):
        r, scale, e_total, ok = carry
        r = _linear_step(arrs, ws, tw, gather(r), static, scale)
        scale, e, alive, good = rescale(r)
        ok = ok & alive & good
        return (r, scale, e_total + e, ok), (r * scale if history else None)

    scale, e0, _, ok0 = rescale(n0)
    init = (n0, scale, e0, ok0)
    (r, scale, e_total, ok), ns = jax.lax.scan(step, init, None, length=steps)
    n = r * scale
    logn = jnp.log(jnp.where(n > 0, n, 1.0))
    logn = jnp.where(n > 0, logn, -jnp.inf)
    return ns, logn, e_total.astype(n.dtype) * np.log(2.0), ok


def _run_log(arrs, T, u0, steps, static, history, gather, gmax):
    def step(carry, _):
        u, log_total = carry
        v = _log_step(arrs, gather(u), T, static)
        m = _max(v, gmax)
        ms = jnp.where(jnp.isfinite(m), m, 0.0)
        return (v - ms, log_total + ms), (v - ms if history else None)

    (u, log_total), us = jax.lax.scan(step, (u0, jnp.zeros((), u0.dtype)), None, length=steps)
    return us, u, log_total


def _run_pair(arrs, T, u0, c0, steps, static, history, gather, gmax):
    def step(carry, _):
        u, c, log_total = carry
        v, d = _pair_step(arrs, gather(u), gather(c), T, static)
        m = _max(v, gmax)
        ms = jnp.where(jnp.isfinite(m), m, 0.0)
        cm = _max(jnp.where(jnp.isfinite(v), d, -jnp.inf), gmax)
        cms = jnp.where(jnp.isfinite(cm), cm, 0.0)
        return (v - ms, d - cms, log_total + ms), ((v - ms, d - cms) if history else None)

    init = (u0, c0, jnp.zeros((), u0.dtype))
    (u, c, log_total), hist = jax.lax.scan(step, init, None, length=steps)
    return hist, u, c, log_total


# ------------------------------------------------------------ single-device entry
def _identity(v):
    return v


def _linear_batch(arrs, Ts, x0, rmax, steps, static, history, gather=_identity, gmax=_identity):
    """Linear kernel for each of ``Ts`` in turn (``lax.map``); ``arrs`` has the parts axis."""
    arrs = _local(arrs, 0)

    def one(T):
        ns, logn, log_total, ok = _run_linear(
            arrs, T, x0, steps, static, rmax, history, gather, gmax
        )
        u = jnp.where(jnp.isfinite(logn), T * (logn + log_total) + steps * rmax, -jnp.inf)
        xs = ns / jnp.sum(ns, axis=-1, keepdims=True) if history else None
        x = n_to_x(logn)
        return xs, u, x, ok

    return jax.lax.map(one, Ts)


def n_to_x(logn):
    """Normalised population from ``log n`` (``-inf`` = zero)."""
    m = jnp.max(logn, initial=-jnp.inf)
    e = jnp.exp(logn - jnp.where(jnp.isfinite(m), m, 0.0))
    s = jnp.sum(e)
    return e / jnp.where(s > 0, s, 1.0)


def _x_from_u(u, T):
    z = jnp.where(jnp.isfinite(u), u / T, -jnp.inf)
    return n_to_x(z)


def _log_batch(arrs, Ts, x0, steps, static, history, gather=_identity, gmax=_identity):
    arrs = _local(arrs, 0)

    def one(T):
        u0 = jnp.where(x0 > 0, T * jnp.log(jnp.where(x0 > 0, x0, 1.0)), -jnp.inf)
        us, u, log_total = _run_log(arrs, T, u0, steps, static, history, gather, gmax)
        xs = jax.vmap(lambda v: _x_from_u(v, T))(us) if history else None
        return xs, jnp.where(jnp.isfinite(u), u + log_total, -jnp.inf), _x_from_u(u, T)

    return jax.lax.map(one, Ts)


def _pair_batch(arrs, Ts, x0, steps, static, history, gather=_identity, gmax=_identity):
    arrs = _local(arrs, 0)

    def one(T):
        pos = x0 > 0
        logx = jnp.log(jnp.where(pos, x0, 1.0))
        u0 = jnp.where(pos, T * logx, -jnp.inf)
        c0 = jnp.where(pos, jnp.where(T > 0, 0.0, logx), -jnp.inf)
        hist, u, c, log_total = _run_pair(arrs, T, u0, c0, steps, static, history, gather, gmax)
        xs = jax.vmap(lambda a, b: softmax_pair(a, b, T, axis=0))(*hist) if history else None
        u_out = jnp.where(jnp.isfinite(u), u + log_total, -jnp.inf)
        return xs, u_out, softmax_pair(u, c, T, axis=0), c

    return jax.lax.map(one, Ts)


_STATIC = ("steps", "static", "history")
_linear_all = jax.jit(_linear_batch, static_argnames=_STATIC)
_log_all = jax.jit(_log_batch, static_argnames=_STATIC)
_pair_all = jax.jit(_pair_batch, static_argnames=_STATIC)


class HorizonResult(NamedTuple):
    """Finite-horizon path sums for a batch of temperatures (original state order).

    ``history`` (K, steps + 1, S) or None; ``u`` (K, S) ``= T log n_steps``;
    ``x`` (K, S) the normalised ``n_steps``; ``kernel`` (K,) which kernel produced each row
    (``"linear"``, ``"log"`` or ``"pair"``).
    """

    history: np.ndarray | None
    u: np.ndarray
    x: np.ndarray
    kernel: np.ndarray


def to_internal(op: PullOperator, v: np.ndarray, fill=0.0) -> np.ndarray:
    """Reorder a (..., S) array into the internal (..., parts * local_size) order."""
    out = np.full((*v.shape[:-1], op.size), fill, dtype=np.result_type(v, type(fill)))
    out[..., op.inv] = v
    return out


def to_original(op: PullOperator, v) -> np.ndarray:
    """Inverse of :func:`to_internal` (drops padding rows)."""
    return np.asarray(v)[..., op.inv]


def horizon(
    mdp,
    temperatures,
    steps: int,
    x0: np.ndarray,
    *,
    history: bool = False,
    kernel: str = "auto",
    op: PullOperator | None = None,
) -> HorizonResult:
    """``u_steps = T log n_steps`` and ``x_steps`` for each temperature (1-D array).

    ``x0`` is a probability vector over the original states. ``kernel="auto"`` runs the
    guarded linear kernel for ``T > 0`` and redoes on the log kernel every temperature
    whose guard tripped; ``T = 0`` runs on the pair kernel. ``"log"`` / ``"pair"`` force
    one kernel (for tests). Temperatures run one after another, one jitted call each: each
    run streams the whole operator, so batching them would only add memory traffic (and a
    compile per batch shape).
    """
    if kernel not in ("auto", "log", "pair"):
        raise ValueError(f"kernel: expected 'auto', 'log' or 'pair', got {kernel!r}")
    op = op if op is not None else pull_operator(mdp)
    Ts = np.asarray(temperatures, dtype=np.float64).reshape(-1)
    K, S = len(Ts), mdp.num_states
    x0i = jnp.asarray(to_internal(op, np.asarray(x0, dtype=np.float64)))
    arrs, static = op.device_arrays(), op.static()
    u = np.empty((K, S))
    x = np.empty((K, S))
    hist = np.empty((K, steps + 1, S)) if history else None
    which = np.empty(K, dtype=object)
    zero = Ts == 0
    todo_log = np.flatnonzero(~zero) if kernel == "log" else np.array([], dtype=int)
    todo_pair = np.flatnonzero(zero) if kernel != "pair" else np.arange(K)

    def put(idx, xs, uu, xx, name, keep=None):
        keep = np.ones(len(idx), dtype=bool) if keep is None else keep
        u[idx[keep]] = to_original(op, uu)[keep]
        x[idx[keep]] = to_original(op, xx)[keep]
        if hist is not None:
            hist[idx[keep], 1:] = to_original(op, xs)[keep]
        which[idx[keep]] = name

    def each(fn, idx, *args):
        # one jitted call per temperature (a batch of one): every kernel compiles once per
        # operator, whatever the number of temperatures or of guard fallbacks
        outs = [fn(arrs, jnp.asarray(Ts[i : i + 1]), x0i, *args) for i in idx]
        return [None if o[0] is None else np.concatenate(o) for o in zip(*outs, strict=True)]

    if kernel == "auto" and (~zero).any():
        idx = np.flatnonzero(~zero)
        xs, uu, xx, ok = each(_linear_all, idx, op.reward_max, steps, static, history)
        put(idx, xs, uu, xx, "linear", ok)
        todo_log = idx[~ok]
    if len(todo_log):
        xs, uu, xx = each(_log_all, todo_log, steps, static, history)
        put(todo_log, xs, uu, xx, "log")
    if len(todo_pair):
        xs, uu, xx, _ = each(_pair_all, todo_pair, steps, static, history)
        put(todo_pair, xs, uu, xx, "pair")
    if hist is not None:
        hist[:, 0] = np.asarray(x0, dtype=np.float64)
    return HorizonResult(hist, u, x, which)


__all__ += ["HorizonResult", "n_to_x", "to_internal", "to_original"]
