r"""The transposed replication operator ``W_T^T`` as an MDP, for right Perron vectors.

The right vector of ``W`` (``W r = rho r``) is the left vector of ``W^T``, which every
steady-state solver computes; :func:`transposed_mdp` writes ``W^T`` at one temperature as
a deterministic MDP, so the same solver (pull form, Krylov--Schur) finds it.
"""

from __future__ import annotations

import numpy as np

from quasispecies.semiring import host

__all__ = ["MAX_TRANSPOSED_DEGREE", "transposed_mdp"]

#: Above this many in-edges on one state the transposed operator is not padded into a
#: deterministic MDP (``S x max in-degree`` slots) and the right vector is iterated in JAX.
MAX_TRANSPOSED_DEGREE = 64


_LAYOUTS: dict = {}  # the last transposed operator's support layout (_transposed_layout)


def _transposed_layout(ns, live):
    """The edges of ``W`` sorted by destination, and the padded arrays of ``W^T`` that
    depend on the support only, cached by the support (a gradient loop, ``fit_rewards``
    say, differentiates the same graph again and again). ``None`` for a hub-heavy graph."""
    key = (ns.shape, hash(ns.tobytes()), hash(np.packbits(live).tobytes()))
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    S = ns.shape[0]
    idx = np.flatnonzero(live)
    dst = ns.ravel()[idx].astype(np.int32)
    idx = idx[np.argsort(dst, kind="stable")]
    dst = ns.ravel()[idx]
    deg = np.bincount(dst, minlength=S)
    width = int(deg.max())
    layout = None
    if not (width > MAX_TRANSPOSED_DEGREE and width * S > 4 * dst.size):
        starts = np.concatenate([[0], np.cumsum(deg)[:-1]])
        slot = np.arange(dst.size) - starts[dst]
        nxt = np.tile(np.arange(S, dtype=np.int32)[:, None, None], (1, width, 1))
        nxt[dst, slot, 0] = idx // (live.size // S)
        layout = (idx, dst, starts, slot, width, nxt)
    _LAYOUTS.clear()  # keep one: at S = 1e6 a layout holds ~0.15 GB
    _LAYOUTS[key] = layout
    return layout


def transposed_mdp(ns, lk, r, Te: float):
    """``W_T^T`` at ``T = Te`` as a deterministic MDP: state ``j`` "acts" along each edge
    into it, with ``pi0`` its share of ``j``'s incoming kernel weight and the rest moved
    into the reward, so ``pi0' e^{R'/Te} = K e^{R/Te}`` edge by edge. ``None`` when one
    state has more than :data:`MAX_TRANSPOSED_DEGREE` in-edges (and the padding would
    cost more than four times the edges)."""
    from quasispecies.model.mdp import MDP

    layout = _transposed_layout(ns, np.isfinite(lk))
    if layout is None:
        return None
    idx, dst, starts, slot, width, nxt = layout
    S = lk.shape[0]
    lkl = lk.ravel()[idx]
    L = host.sorted_segment_lse(lkl, starts)
    # The arrays MDP.from_transitions(nxt, R, pi0) would build, without its O(S x width)
    # validation: each row of pi0 sums to 1 (to rounding) by construction, and every
    # padding slot has pi0 = P = 0 and R = -inf.
    pi0 = np.zeros((S, width))
    pi0[dst, slot] = np.exp(lkl - L[dst])
    R = np.full((S, width, 1), -np.inf)
    R[dst, slot, 0] = r.ravel()[idx] + Te * L[dst]
    prob = np.isfinite(R).astype(float)
    return MDP.tree_unflatten((S, width, False, (S, width)), (nxt, prob, R, pi0))
