r"""A tuned model against its base on one token tree: spread, re-heating, tilt fit, attractors.

Both models score the same tree (state 0 = the prompt, the edge into state ``s`` carries
``ell_b(s) = log p_base(token | prefix)`` and ``ell_t(s)`` for the tuned model). On the
leaves ``y`` (depth-``H`` continuations) each model's sequence distribution, restricted to
the tree, is

.. math:: q_m(y) = \frac{p_m(y)}{\sum_{y'} p_m(y')}, \qquad
          \log p_m(y) = \sum_{s \in \text{path}(y)} \ell_m(s),

and this module measures, for one prompt:

* **spread** (:func:`spread`): entropy :math:`H(q)`, effective support :math:`e^{H}` and
  inverse Simpson :math:`1 / \sum q^2`, and the mass :math:`\sum_y p(y)` the tree holds;
* **temperature response** (:func:`temperature_response`, :func:`reheat_to_entropy`):
  :math:`H(q^{1/\tau} / Z)`; the :math:`\tau` at which the tuned model regains the base's
  entropy, and :math:`\mathrm{KL}(q_b \,\|\, q_t^{1/\tau})` there (re-heating restores the
  *amount* of spread, not necessarily the base's continuations);
* **tilt fit** (:func:`token_tilt_fit`, :func:`sequence_tilt_fit`): the implied reward
  :math:`\ell_t - \ell_b`; if the tuned model were the base tilted token by token by a
  context-free reward, :math:`p_t(v \mid s) = p_b(v \mid s)\, e^{r(v)/\beta} / Z(s)`, then
  :math:`\ell_t(e) - \ell_b(e) = \rho(v_e) - c(\text{parent}(e))` exactly, with
  :math:`\rho = r / \beta` and :math:`c = \log Z`: a two-way least-squares fit recovers
  :math:`\rho` (up to one constant per connected token-node component) and its residual says
  how far the tuned model is from any such tilt; against a known ``r`` the slope is
  :math:`1/\beta`. At the sequence level :math:`\mathrm{KL}(q_t \,\|\, q_b e^{R/\beta}/Z)` is
  convex in :math:`1/\beta` (an exponential family), minimised where the tilted mean of
  ``R`` equals the tuned mean (moment matching, solved by bisection);
* **attractors** (:func:`prefix_mass`): the mass of every prefix (sum over the leaves below
  it) under each model; continuations whose mass grows under the tuned model.

Reductions go through :mod:`quasispecies.semiring.host` (log-sum-exp over leaves and over
siblings, Goodman 1999). Reference for the tilt: Korbak, Perez & Buckley (2022), "RL with KL
penalties is better viewed as Bayesian inference"; Todorov (2009) for the token-level form.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from quasispecies.model.validate import as_float_array
from quasispecies.selection.tree import Tree
from quasispecies.selection.validate import check_beta
from quasispecies.semiring import host

__all__ = [
    "SequenceTiltFit",
    "Spread",
    "TokenTiltFit",
    "kl_leaves",
    "leaf_logp",
    "prefix_mass",
    "reheat_to_entropy",
    "sequence_tilt_fit",
    "spread",
    "temperature_response",
    "token_tilt_fit",
]


def _check_edges(tree: Tree, ell, name: str) -> np.ndarray:
    e = as_float_array(ell, name, ndim=1)
    if e.shape != tree.parent.shape:
        raise ValueError(
            f"{name}: expected one value per state, shape {tree.parent.shape}, got {e.shape}"
        )
    if np.isnan(e[1:]).any() or (e[1:] > 1e-6).any() or np.isposinf(e[1:]).any():
        # 1e-6: float32 backends return log-probs a rounding step above 0
        raise ValueError(f"{name}: token log-probabilities must be <= 0 and not NaN")
    return e


def leaf_logp(tree: Tree, ell) -> np.ndarray:
    """``log p(y)`` of every leaf: the sum of the edge log-probs ``ell`` (S,) from the root."""
    e = _check_edges(tree, ell, "ell")
    return Tree(tree.parent, np.where(tree.parent >= 0, e, 0.0), tree.depth).sequence_logp[
        tree.leaves
    ]


def _logq(logp, tau: float = 1.0) -> np.ndarray:
    z = np.asarray(logp, dtype=np.float64) / tau
    if not np.isfinite(z).any():
        raise ValueError("logp: no leaf has finite log-probability")
    return host.log_normalise(z)


def _entropy_log(logq: np.ndarray) -> float:
    q = np.exp(logq)
    live = q > 0
    return float(-np.sum(q[live] * logq[live]))


class Spread(NamedTuple):
    """Spread of a sequence distribution on the tree's leaves.

    ``entropy`` (nats) of ``q``, ``effective_support = exp(entropy)``,
    ``inverse_simpson = 1 / sum q^2``, ``coverage = sum_y p(y)`` (the model's mass that the
    tree holds, <= 1), ``n_leaves``.
    """

    entropy: float
    effective_support: float
    inverse_simpson: float
    coverage: float
    n_leaves: int


def spread(logp_leaves) -> Spread:
    """:class:`Spread` of the leaf log-probabilities ``log p(y)`` (unnormalised)."""
    lp = as_float_array(logp_leaves, "logp_leaves", ndim=1)
    logq = _logq(lp)
    H = _entropy_log(logq)
    return Spread(
        entropy=H,
        effective_support=float(np.exp(H)),
        inverse_simpson=float(1.0 / np.sum(np.exp(2 * logq))),
        coverage=float(np.exp(host.lse(lp))),
        n_leaves=int(lp.size),
    )


def temperature_response(logp_leaves, taus) -> np.ndarray:
    """``H(q^(1/tau) / Z)`` for each ``tau`` (> 0): the sequence-level re-heating curve."""
    lp = as_float_array(logp_leaves, "logp_leaves", ndim=1)
    t, _ = check_beta(taus, "taus")
    return np.array([_entropy_log(_logq(lp, float(x))) for x in np.atleast_1d(t)])


def kl_leaves(logq_a, logq_b) -> float:
    """``KL(a || b)`` of two normalised leaf log-distributions (``inf`` if ``b`` misses mass)."""
    a, b = np.asarray(logq_a, dtype=np.float64), np.asarray(logq_b, dtype=np.float64)
    live = np.isfinite(a)
    if np.isneginf(b[live]).any():
        return float("inf")
    return float(max(np.sum(np.exp(a[live]) * (a[live] - b[live])), 0.0))


def reheat_to_entropy(logp_leaves, target: float, lo: float = 0.5, hi: float = 3.0):
    """The ``tau`` in ``[lo, hi]`` with ``H(q^(1/tau)/Z) = target`` (entropy is increasing in
    ``tau``), by bisection to ``1e-10`` relative; ``None`` when ``target`` lies outside
    ``[H(lo), H(hi)]``."""
    lp = as_float_array(logp_leaves, "logp_leaves", ndim=1)
    if not (0 < lo < hi and np.isfinite(hi)):
        raise ValueError(f"lo, hi: expected 0 < lo < hi < inf, got {lo!r}, {hi!r}")
    h_lo, h_hi = temperature_response(lp, [lo, hi])
    if not (h_lo <= target <= h_hi):
        return None
    a, b = np.log(lo), np.log(hi)
    while b - a > 1e-10:
        m = 0.5 * (a + b)
        if _entropy_log(_logq(lp, float(np.exp(m)))) < target:
            a = m
        else:
            b = m
    return float(np.exp(0.5 * (a + b)))


class TokenTiltFit(NamedTuple):
    """Two-way fit of the implied reward ``ell_t - ell_b`` on the tree's edges.

    ``tokens`` (M,) the distinct token ids on edges; ``rho`` (M,) their fitted reward
    ``r(v)/beta`` (min-norm: each connected component of the token-node graph centred);
    ``implied`` (S,) the per-edge implied reward ``ell_t - ell_b`` centred over siblings (0 at
    the root); ``residual_rms`` of the fit (0 iff the tuned model is a context-free token tilt
    of the base on this tree); ``r2`` the share of the centred implied reward it explains;
    ``beta`` the fitted ``beta`` against a known reward (``None`` without one; ``inf`` for a
    zero slope) and ``beta_residual_rms`` that fit's residual.
    """

    tokens: np.ndarray
    rho: np.ndarray
    implied: np.ndarray
    residual_rms: float
    r2: float
    beta: float | None
    beta_residual_rms: float | None


def _centre_siblings(tree: Tree, x: np.ndarray, kids: np.ndarray) -> np.ndarray:
    S = len(tree.parent)
    n = np.bincount(tree.parent[kids], minlength=S).astype(np.float64)
    tot = np.bincount(tree.parent[kids], weights=x[kids], minlength=S)
    out = np.zeros(S)
    out[kids] = x[kids] - tot[tree.parent[kids]] / n[tree.parent[kids]]
    return out


def token_tilt_fit(
    tree: Tree, ell_base, ell_tuned, tokens, reward=None, edges=None
) -> TokenTiltFit:
    r"""Fit :math:`\ell_t(e) - \ell_b(e) = \rho(v_e) - c(\text{parent}(e))` over the edges.

    ``tokens`` (S,) is the token id on the edge into each state (ignored at the root);
    ``reward`` (S,) optional, a known reward of each edge's token: then
    :math:`\beta` is fitted from the sibling-centred implied reward
    ``= (1/beta) * (sibling-centred reward)`` by least squares through 0. ``edges`` (S,)
    bool, optional: fit only the edges into these states (centring over the kept siblings;
    ``implied`` is 0 elsewhere).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import lsqr

    lb = _check_edges(tree, ell_base, "ell_base")
    lt = _check_edges(tree, ell_tuned, "ell_tuned")
    tok = np.asarray(tokens, dtype=np.int64)
    if tok.shape != tree.parent.shape:
        raise ValueError(f"tokens: expected shape {tree.parent.shape}, got {tok.shape}")
    keep = tree.parent >= 0
    if edges is not None:
        m = np.asarray(edges, dtype=bool)
        if m.shape != keep.shape:
            raise ValueError(f"edges: expected shape {keep.shape}, got {m.shape}")
        keep &= m
    kids = np.flatnonzero(keep)
    if kids.size == 0:
        raise ValueError("tree: has no edges (to fit)")
    delta = np.zeros(len(tree.parent))
    delta[kids] = lt[kids] - lb[kids]
    implied = _centre_siblings(tree, delta, kids)
    # Sibling-centring removes c(parent); what is left is rho(v) centred over siblings.
    uniq, col = np.unique(tok[kids], return_inverse=True)
    M, E = uniq.size, kids.size
    # Centred design: row e = onehot(v_e) - mean over siblings of onehot(v_sibling).
    par = tree.parent[kids]
    rows = [np.arange(E)]
    cols = [col]
    vals = [np.ones(E)]
    order = np.argsort(par, kind="stable")
    starts = np.flatnonzero(np.r_[True, par[order][1:] != par[order][:-1]])
    bounds = np.r_[starts, E]
    for a, b in itertools.pairwise(bounds):
        grp = order[a:b]
        rr, cc = np.meshgrid(grp, col[grp], indexing="ij")
        rows.append(rr.ravel())
        cols.append(cc.ravel())
        vals.append(np.full(rr.size, -1.0 / len(grp)))
    A = csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(E, M)
    )
    y = implied[kids]
    sol = lsqr(A, y, atol=1e-15, btol=1e-15, iter_lim=20 * (M + E))
    rho = np.asarray(sol[0])
    res = y - A @ rho
    ss = float(np.sum(y**2))
    rms = float(np.sqrt(np.mean(res**2)))
    r2 = 1.0 - float(np.sum(res**2)) / ss if ss > 0 else 1.0
    beta = beta_rms = None
    if reward is not None:
        r = as_float_array(reward, "reward", ndim=1)
        if r.shape != tree.parent.shape or not np.isfinite(r[kids]).all():
            raise ValueError(f"reward: expected {tree.parent.shape} finite values on edges")
        rc = _centre_siblings(tree, np.where(keep, r, 0.0), kids)[kids]
        den = float(np.sum(rc**2))
        if den == 0:
            raise ValueError("reward: equal on all siblings; beta cannot be identified")
        slope = float(np.sum(rc * y)) / den
        beta = float("inf") if slope == 0 else 1.0 / slope
        beta_rms = float(np.sqrt(np.mean((y - slope * rc) ** 2)))
    return TokenTiltFit(uniq, rho, implied, rms, r2, beta, beta_rms)


class SequenceTiltFit(NamedTuple):
    """Best sequence-level tilt ``q_b exp(R / beta) / Z`` of the base towards the tuned model.

    ``beta`` (``inf``: no tilt; negative: the tuned model moved against ``R``), ``kl`` =
    ``KL(q_t || tilt)`` at the fit, ``kl_base`` = ``KL(q_t || q_b)`` (no tilt), ``at_bound``
    (the optimum lies at ``|1/beta| = max_strength``: ``R`` cannot reach the tuned mean).
    """

    beta: float
    kl: float
    kl_base: float
    at_bound: bool


def sequence_tilt_fit(logp_base, logp_tuned, reward, max_strength: float = 1e3) -> SequenceTiltFit:
    r"""Minimise :math:`\mathrm{KL}(q_t \,\|\, q_b e^{\lambda R} / Z_\lambda)` over
    :math:`\lambda = 1/\beta \in [-\text{max\_strength}, \text{max\_strength}]`.

    The objective is :math:`\log Z_\lambda - \lambda\, \mathbb{E}_{q_t}[R] + \text{const}`,
    convex with derivative :math:`\mathbb{E}_{\lambda}[R] - \mathbb{E}_{q_t}[R]`
    (increasing), so the optimum is found by bisection on that derivative.
    """
    lb = as_float_array(logp_base, "logp_base", ndim=1)
    lt = as_float_array(logp_tuned, "logp_tuned", ndim=1)
    R = as_float_array(reward, "reward", ndim=1)
    if not (lb.shape == lt.shape == R.shape):
        raise ValueError(
            f"logp_base, logp_tuned, reward: shapes differ {lb.shape}, {lt.shape}, {R.shape}"
        )
    if not np.isfinite(R).all():
        raise ValueError("reward: must be finite on every leaf")
    qb, qt = _logq(lb), _logq(lt)
    target = float(np.sum(np.exp(qt) * R))

    def tilted(lam: float) -> np.ndarray:
        return host.log_normalise(qb + lam * R)

    def grad(lam: float) -> float:
        return float(np.sum(np.exp(tilted(lam)) * R)) - target

    a, b = -float(max_strength), float(max_strength)
    at_bound = False
    if grad(a) >= 0:
        lam, at_bound = a, True
    elif grad(b) <= 0:
        lam, at_bound = b, True
    else:
        for _ in range(200):
            m = 0.5 * (a + b)
            if grad(m) < 0:
                a = m
            else:
                b = m
            if b - a <= 1e-12 * max(1.0, abs(m)):
                break
        lam = 0.5 * (a + b)
    beta = float("inf") if lam == 0 else 1.0 / lam
    return SequenceTiltFit(beta, kl_leaves(qt, tilted(lam)), kl_leaves(qt, qb), at_bound)


def prefix_mass(tree: Tree, logp_leaves) -> np.ndarray:
    """``(S,)`` mass of every prefix under ``q`` (normalised on the leaves): the sum of ``q``
    over the leaves below it (1 at the root)."""
    lp = as_float_array(logp_leaves, "logp_leaves", ndim=1)
    leaves = tree.leaves
    if lp.shape != leaves.shape:
        raise ValueError(f"logp_leaves: expected shape {leaves.shape}, got {lp.shape}")
    S = len(tree.parent)
    mass = np.zeros(S)
    mass[leaves] = np.exp(_logq(lp))
    for d in range(int(tree.depth.max()), 0, -1):
        lvl = np.flatnonzero(tree.depth == d)
        np.add.at(mass, tree.parent[lvl], mass[lvl])
    return mass
