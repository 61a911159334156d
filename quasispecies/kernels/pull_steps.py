r"""One step of the pull (sliced-ELL, by destination) operator in each of its three forms.

The building blocks of the kernels in :mod:`quasispecies.kernels.pull` (which re-exports
them; see its docstring for the guarded linear / log / pair choice): for every
destination ``s'``, ``n_{t+1}(s') = sum_{j < d(s')} n_t(p_j(s')) K_j(s') e^{R_j(s') / T}``
as ``D`` fused gather-multiply-adds per bucket (linear), or the semiring's log-sum-exp
(log) and ``(u, c)`` pair reduction (pair) over the same predecessors. ``arrs`` is one
part's slice (:func:`local_arrays`) of :meth:`PullOperator.device_arrays
<quasispecies.kernels.pull_layout.PullOperator.device_arrays>`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from quasispecies.semiring.core import reduce_pair, segment_reduce_pair
from quasispecies.semiring.ell import ell_scaled_lse, segment_scaled_lse

__all__ = ["linear_step", "linear_weights", "local_arrays", "log_step", "pair_step"]


def local_arrays(arrs, p: int):
    """Part ``p``'s slice of :meth:`PullOperator.device_arrays` (the ``parts`` axis removed)."""
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


def linear_weights(arrs, T, rmax):
    r"""Edge weights ``w_j = K_j e^{(R_j - R_max)/T}`` of the linear kernel (``T > 0``).

    Returns ``(ws, tw, log min w)``: one ``(D, n)`` table per bucket, the tail's weights,
    and the log of the smallest live weight (for the :data:`GUARD_LOG` guard). Shifting by
    ``R_max`` keeps every weight ``<= 1``; ``T (log n_H + ...) + H R_max`` undoes it.
    With ``T`` of shape ``(c,)`` (a chunk of temperatures), every table gains a trailing
    ``c`` axis (``(D, n, c)``) and the minimum is per column, ``(c,)``.
    """
    T = jnp.asarray(T)
    if T.ndim:  # per column the tables of that temperature alone (the same exp, same bits)
        ws, tw, mins = jax.lax.map(lambda t: linear_weights(arrs, t, rmax), T)
        last = lambda a: jnp.moveaxis(a, 0, -1)  # noqa: E731
        return tuple(last(w) for w in ws), last(tw), mins
    _, rewards, logk, _, _, tr, tl = arrs
    ws = tuple(jnp.exp(lk + (r - rmax) / T) for r, lk in zip(rewards, logk, strict=True))
    tw = jnp.exp(tl + (tr - rmax) / T)
    mins = [
        jnp.min(jnp.where(jnp.isfinite(lk), lk + (r - rmax) / T, jnp.inf), initial=jnp.inf)
        for r, lk in zip((*rewards, tr), (*logk, tl), strict=True)
    ]
    return ws, tw, jnp.min(jnp.stack(mins))


def linear_step(arrs, ws, tw, n, static, scale=None):
    r"""One linear-domain step ``n -> n W`` (row vector), by destination:
    ``(n W)(s') = sum_j n(p_j(s')) w_j(s')`` with ``w`` from :func:`linear_weights`.

    With ``scale`` (a power of two), ``(scale n) W`` with the scaling applied to each
    gathered entry (exact: the same bits as scaling ``n`` first, without a pass over
    ``n`` to do it). Sums run in a fixed order (``j = 0, 1, ...``) per row. ``n`` may be
    ``(m, c)`` with :func:`linear_weights` of a chunk of ``c`` temperatures: one gathered
    row then serves all ``c`` columns (each column's sums are the ones of ``c = 1``).
    """
    n_zero, n_tail, _, _ = static
    preds, _, _, ts, td, _, _ = arrs

    def g(idx):
        return n[idx] if scale is None else n[idx] * scale

    outs = [jnp.zeros((n_zero, *n.shape[1:]), n.dtype)]
    for P, W in zip(preds, ws, strict=True):
        acc = g(P[0]) * W[0]
        for j in range(1, P.shape[0]):
            acc = acc + g(P[j]) * W[j]
        outs.append(acc)
    if n_tail:
        outs.append(jax.ops.segment_sum(g(ts) * tw, td, num_segments=n_tail))
    return jnp.concatenate(outs)


def log_step(arrs, u, T, static):
    r"""One log-domain step at ``T > 0``, by destination:
    ``u'(s') = T log sum_j exp((u(p_j) + R_j) / T + log K_j)`` (``u = T log n``).

    The reductions are :func:`quasispecies.semiring.ell.ell_scaled_lse` per bucket and
    :func:`~quasispecies.semiring.ell.segment_scaled_lse` for the tail.
    """
    n_zero, n_tail, _, _ = static
    preds, rewards, logk, ts, td, tr, tl = arrs
    outs = [jnp.full(n_zero, -jnp.inf, u.dtype)]
    for P, R, L in zip(preds, rewards, logk, strict=True):
        # one (D, n) gather and a reduction over D: the same speed as D unrolled gathers
        # here (exp dominates), and far less for XLA to compile
        outs.append(ell_scaled_lse(u[P] + R, L, T))
    if n_tail:
        outs.append(segment_scaled_lse(u[ts] + tr, tl, td, n_tail, T))
    return jnp.concatenate(outs)


def pair_step(arrs, u, c, T, static):
    r"""One ``(u, c)`` semiring step at any ``T`` (max-plus with tie multiplicities at 0):
    :func:`quasispecies.kernels.operators.forward`, by destination.

    ``(u', c')(s') = (+)_j (u(p_j) + R_j, c(p_j) + log K_j)`` with
    :func:`quasispecies.semiring.core.reduce_pair` over each bucket's ``D`` predecessors
    and :func:`~quasispecies.semiring.core.segment_reduce_pair` for the tail.
    """
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
