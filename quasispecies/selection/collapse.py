r"""Mode collapse, measured: what tilting by a reward does to a distribution's support.

Tilting ``p_beta ∝ p0 exp(r / beta)`` (:func:`quasispecies.selection.core.tilt`, the fixed point
of KL-regularised RL) is a Bayesian update of the "world prior" ``p0`` by the evidence
``exp(r / beta)``. Three measurements make its side effects visible:

* **Entropy against strength** ``lambda = 1 / beta``. ``H(p_lambda)`` goes from
  ``H(p0)`` at ``lambda = 0`` to the entropy of ``p0`` restricted to ``argmax r``, with
  ``dH/dlambda = -lambda Var(r) - Cov(r, log p0)`` under ``p_lambda``: monotone from a
  uniform prior, and eventually falling from any prior, while ``KL(p_lambda || p0)``
  always grows (``dKL/dlambda = lambda Var(r)``). The effective support size is the
  perplexity ``exp(H)``.
* **Re-heating.** Sampling the tuned model at temperature ``tau`` gives
  ``p_beta^(1/tau) / Z`` and, because

  .. math:: p_\beta^{1/\tau} \propto p_0^{1/\tau}\, e^{r / (\beta \tau)},

  heating flattens the prior and the reward *together*: the reward still acts, at
  strength ``1 / (beta tau)``, on a prior that heating has also flattened. Re-heating by
  ``tau`` only moves the collapse from ``lambda`` to ``lambda / tau``; for ``tau`` in
  ``[0.5, 3]`` little of the lost entropy comes back once ``lambda`` is large against
  the reward gaps, and outcomes tied at the best reward stay a closed club at every
  ``tau``. That is mode collapse surviving temperature (the second seed essay's
  observation that raising the temperature of an RLHF-tuned model hardly widens what it
  says: the tuned model's idea of what is plausible has moved, and heating spreads mass
  only within it).
* **Iterated selection.** Tilting ``k`` times is one tilt at ``beta / k``; the
  population converges to the *attractor* ``p0`` restricted to ``argmax r``, at rate
  ``exp(-k Δ / beta)`` with ``Δ`` the gap to the second-best reward. A reward that
  depends on the population itself (``r = log p``: "prefer what you already say")
  sharpens to the mode of ``p0`` instead.

All three are computed for plain distributions (this module's kernels, ``vmap`` over the
strength or temperature axis), for MDP path distributions (:func:`path_distribution`, built
on :func:`quasispecies.paths.core.enumerate`: the population at temperature ``T`` over paths
*is* the tilt of the exploration measure by the return, ``beta = T``) and for language-model token trees, at the sequence level and at the
token level (:func:`tree_sequence_probs`, :func:`tree_token_probs`, :func:`tree_tilt_logits`).

References: Korbak, Perez & Buckley (2022), "RL with KL penalties is better viewed as
Bayesian inference"; Todorov (2009) for the soft-Bellman messages used on trees.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from quasispecies.model.validate import (
    as_float_array,
    check_distribution,
    check_nonneg_int,
    check_rewards,
)
from quasispecies.selection.core import _check_beta, _check_dist_reward, _log_tilt

__all__ = [
    "PathDistribution",
    "ReheatGrid",
    "TiltCurve",
    "Tree",
    "attractor",
    "entropy",
    "iterate_tilt",
    "path_distribution",
    "perplexity",
    "reheat",
    "reheating",
    "tilt_curve",
    "tree_from_token_tree",
    "tree_sequence_probs",
    "tree_tilt_logits",
    "tree_token_probs",
]


# --------------------------------------------------------------------------- measures
def _entropy(p: jax.Array) -> jax.Array:
    pos = p > 0
    ps = jnp.where(pos, p, 1.0)
    return -jnp.sum(jnp.where(pos, ps * jnp.log(ps), 0.0), axis=-1)


def entropy(p) -> np.ndarray:
    """Shannon entropy ``-sum p log p`` in nats (``0 log 0 = 0``) along the last axis.

    ``p`` is a distribution or a stack of them, each summing to 1.
    """
    arr = as_float_array(p, "p")
    if arr.ndim == 0:
        raise ValueError("p: expected at least a 1-D distribution")
    for i, row in enumerate(arr.reshape(-1, arr.shape[-1])):
        check_distribution(row, "p" if arr.ndim == 1 else f"p[{i}]")
    return np.asarray(_entropy(jnp.asarray(arr)))


def perplexity(p) -> np.ndarray:
    """Effective support size ``exp(H(p))`` (1 for a point mass, ``N`` for uniform)."""
    return np.exp(entropy(p))


def _check_strength(strength, name: str = "strength") -> tuple[np.ndarray, bool]:
    s = as_float_array(strength, name, ndim=(0, 1))
    if s.ndim == 1 and s.size == 0:
        raise ValueError(f"{name}: empty array")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name}: must be finite")
    if (s < 0).any():
        raise ValueError(f"{name}: must be >= 0 (it is 1/beta), got {s[s < 0].ravel()[0]!r}")
    return s, s.ndim == 1


def _check_tau(tau) -> tuple[np.ndarray, bool]:
    return _check_beta(tau, "tau")


def _logp(p: jax.Array) -> jax.Array:
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


# ------------------------------------------------------------------------ tilt curves
class TiltCurve(NamedTuple):
    """Measures of ``p_lambda ∝ p0 exp(lambda r)`` along a sweep of ``lambda = 1/beta``.

    Attributes (leading axis = the sweep)
    ----------
    strength : (B,) ``lambda = 1 / beta`` (0 is ``p0`` itself).
    entropy : (B,) nats.
    perplexity : (B,) ``exp(entropy)``.
    kl : (B,) ``KL(p_lambda || p0)``.
    mean_reward : (B,) ``E_{p_lambda}[r]``.
    probs : (B, N) the tilted distributions.
    """

    strength: np.ndarray
    entropy: np.ndarray
    perplexity: np.ndarray
    kl: np.ndarray
    mean_reward: np.ndarray
    probs: np.ndarray


def _curve_point(logp0: jax.Array, r: jax.Array, lam: jax.Array):
    logp, _ = _log_tilt(logp0, r, lam)
    p = jnp.exp(logp)
    live = p > 0
    H = _entropy(p)
    kl = jnp.sum(
        jnp.where(live, p * (jnp.where(live, logp, 0.0) - jnp.where(live, logp0, 0.0)), 0.0)
    )
    mr = jnp.sum(jnp.where(live, p * jnp.where(live, r, 0.0), 0.0))
    return H, kl, mr, p


@jax.jit
def _curve_kernel(p0: jax.Array, r: jax.Array, lam: jax.Array):
    return jax.vmap(_curve_point, in_axes=(None, None, 0))(_logp(p0), r, lam)


def tilt_curve(p0, r, strength) -> TiltCurve:
    r"""Entropy, perplexity, KL and mean reward of ``p0 exp(lambda r)/Z`` for each ``lambda``.

    .. math:: \frac{dH(p_\lambda)}{d\lambda} = -\lambda\, \mathrm{Var}_{p_\lambda}(r)
              - \mathrm{Cov}_{p_\lambda}(r, \log p_0), \qquad
              \frac{d\,\mathrm{KL}(p_\lambda \| p_0)}{d\lambda} = \lambda\, \mathrm{Var}_{p_\lambda}(r),

    so the KL grows monotonically with the tilt strength ``lambda = 1/beta``, and so
    does the entropy fall from a uniform prior (from any prior once ``lambda`` is large).

    Parameters
    ----------
    p0 : (N,) distribution; r : (N,) rewards (``-inf`` excludes an outcome);
    strength : scalar or (B,) array of ``lambda >= 0``.
    """
    p0, r = _check_dist_reward(p0, r, "p0", "r")
    lam, _ = _check_strength(strength)
    lam1 = np.atleast_1d(lam)
    if not ((p0 > 0) & np.isfinite(r)).any():
        raise ValueError("r: every outcome with positive p0 has reward -inf; nothing survives")
    H, kl, mr, p = (
        np.asarray(x) for x in _curve_kernel(jnp.asarray(p0), jnp.asarray(r), jnp.asarray(lam1))
    )
    return TiltCurve(lam1, H, np.exp(H), kl, mr, p)


# ------------------------------------------------------------------------- re-heating
@jax.jit
def _reheat_kernel(p: jax.Array, inv_tau: jax.Array) -> jax.Array:
    def one(it):
        z = jnp.where(p > 0, _logp(p) * it, -jnp.inf)
        return jnp.exp(z - logsumexp(z))

    return jax.vmap(one)(inv_tau)


def reheat(p, tau) -> np.ndarray:
    r"""Sampling a distribution at temperature ``tau``: ``p^(1/tau) / sum p^(1/tau)``.

    ``tau > 1`` flattens, ``tau < 1`` sharpens; zero-probability outcomes stay at zero
    (heating cannot restore support that is gone). ``tau`` may be a 1-D sweep.
    """
    p = check_distribution(p, "p")
    t, sweep = _check_tau(tau)
    out = np.asarray(_reheat_kernel(jnp.asarray(p), jnp.asarray(1.0 / np.atleast_1d(t))))
    return out if sweep else out[0]


class ReheatGrid(NamedTuple):
    """Entropies of re-heated tilts (see :func:`reheating`).

    Attributes
    ----------
    strength : (B,) tilt strengths ``lambda = 1 / beta``.
    tau : (K,) sampling temperatures.
    entropy : (B, K) ``H(p_lambda^(1/tau) / Z)``.
    tilted_entropy : (B,) ``H(p_lambda)`` (no re-heating).
    base_entropy : (K,) ``H(p0^(1/tau) / Z)``: the untuned model sampled at the same ``tau``.
    deficit : (B, K) ``base_entropy - entropy``: how much narrower the tuned model is than
        the untuned one at the same sampling temperature. Mode collapse that survives
        re-heating is a deficit that stays large as ``tau`` grows.
    """

    strength: np.ndarray
    tau: np.ndarray
    entropy: np.ndarray
    tilted_entropy: np.ndarray
    base_entropy: np.ndarray
    deficit: np.ndarray


@jax.jit
def _reheat_grid_kernel(p0: jax.Array, r: jax.Array, lam: jax.Array, inv_tau: jax.Array):
    logp0 = _logp(p0)

    def cell(l, it):
        # p_lambda^(1/tau) ∝ p0^(1/tau) exp(lambda r / tau): one tilt of the heated prior.
        lp, _ = _log_tilt(logp0 * it, r, l * it)
        return _entropy(jnp.exp(lp))

    return jax.vmap(lambda l: jax.vmap(lambda it: cell(l, it))(inv_tau))(lam)


def reheating(p0, r, strength, tau) -> ReheatGrid:
    r"""Entropy of the tilted distribution re-sampled at temperature ``tau``.

    Uses :math:`p_\lambda^{1/\tau} \propto p_0^{1/\tau} e^{\lambda r/\tau}` (exact, in the log
    domain, so ``lambda`` up to ``1e3`` and ``tau`` down to ``0.1`` neither over- nor
    underflow). Compare ``entropy[:, k]`` with ``base_entropy[k]``: the untuned model at
    the same temperature.
    """
    p0, r = _check_dist_reward(p0, r, "p0", "r")
    lam, _ = _check_strength(strength)
    t, _ = _check_tau(tau)
    lam1, t1 = np.atleast_1d(lam), np.atleast_1d(t)
    if not ((p0 > 0) & np.isfinite(r)).any():
        raise ValueError("r: every outcome with positive p0 has reward -inf; nothing survives")
    H = np.asarray(
        _reheat_grid_kernel(
            jnp.asarray(p0), jnp.asarray(r), jnp.asarray(lam1), jnp.asarray(1.0 / t1)
        )
    )
    H_tilt = np.asarray(_curve_kernel(jnp.asarray(p0), jnp.asarray(r), jnp.asarray(lam1))[0])
    H_base = np.asarray(
        _reheat_grid_kernel(
            jnp.asarray(p0), jnp.zeros_like(jnp.asarray(r)), jnp.zeros(1), jnp.asarray(1.0 / t1)
        )
    )[0]
    return ReheatGrid(lam1, t1, H, H_tilt, H_base, H_base[None, :] - H)


# --------------------------------------------------------------- iterated selection
def attractor(p0, r, rtol: float = 1e-12) -> np.ndarray:
    r"""Limit of repeated tilting: ``p0`` restricted to ``argmax r`` and renormalised.

    .. math:: \lim_{k\to\infty} \frac{p_0\, e^{k r/\beta}}{Z_k} = \frac{p_0\, 1[r = r^*]}{p_0(r = r^*)},
              \quad r^* = \max\{r(y) : p_0(y) > 0\}

    (rewards within ``rtol (1 + |r*|)`` of the best count as tied).
    """
    p0, r = _check_dist_reward(p0, r, "p0", "r")
    live = (p0 > 0) & np.isfinite(r)
    if not live.any():
        raise ValueError("r: every outcome with positive p0 has reward -inf; nothing survives")
    best = r[live].max()
    top = live & (np.abs(r - best) <= rtol * (1.0 + abs(best)))
    out = np.where(top, p0, 0.0)
    return out / out.sum()


@partial(jax.jit, static_argnames=("steps", "reward_fn"))
def _iterate_kernel(p0, r, inv_beta, steps: int, reward_fn):
    def step(p, _):
        rew = r if reward_fn is None else reward_fn(p)
        lp, _ = _log_tilt(_logp(p), rew, inv_beta)
        q = jnp.exp(lp)
        return q, q

    _, traj = jax.lax.scan(step, p0, None, length=steps)
    return jnp.concatenate([p0[None], traj])


def iterate_tilt(p0, r, beta, steps: int) -> np.ndarray:
    r"""Selection applied repeatedly: ``p_{k+1} = p_k exp(r(p_k) / beta) / Z``.

    ``r`` is a fixed (N,) reward (then ``p_k = tilt(p0, r, beta / k)``, converging to
    :func:`attractor`) or a JAX-traceable function ``r(p) -> (N,)`` of the current
    population: ``lambda p: jnp.log(p)`` (self-evaluation by likelihood) gives
    ``p_k ∝ p0^((1 + 1/beta)^k)`` and collapses to the mode of ``p0``.

    Returns the trajectory, ``(steps + 1, N)``, row 0 = ``p0``.
    """
    p0 = check_distribution(p0, "p0")
    b, sweep = _check_beta(beta)
    if sweep:
        raise ValueError(f"beta: expected a scalar, got shape {b.shape}")
    steps = check_nonneg_int(steps, "steps")
    if callable(r):
        fn: Callable | None = r
        r_arr = jnp.zeros_like(jnp.asarray(p0))
        probe = np.asarray(r(jnp.asarray(p0)))
        if probe.shape != p0.shape:
            raise ValueError(
                f"r: the reward function returned shape {probe.shape}, expected {p0.shape}"
            )
    else:
        fn = None
        _, r_np = _check_dist_reward(p0, r, "p0", "r")
        r_arr = jnp.asarray(r_np)
    out = _iterate_kernel(jnp.asarray(p0), r_arr, jnp.asarray(1.0 / float(b)), steps, fn)
    return np.asarray(out)


# ---------------------------------------------------------------- MDP path distributions
class PathDistribution(NamedTuple):
    """Every path of positive weight through an MDP over a horizon (see :func:`path_distribution`).

    Attributes
    ----------
    states : (N, H+1) int; actions : (N, H) int.
    log_base : (N,) ``log x0(s0) + sum_t log K(s_t, a_t, s_{t+1})``: the exploration
        ("mutation") measure of the path; it sums to 1 over paths when every state on the
        way has an allowed action.
    returns : (N,) ``G = sum_t R(s_t, a_t, s_{t+1})``.
    """

    states: np.ndarray
    actions: np.ndarray
    log_base: np.ndarray
    returns: np.ndarray

    @property
    def base(self) -> np.ndarray:
        """The exploration measure of each path, renormalised to a distribution."""
        w = np.exp(self.log_base - self.log_base.max())
        return w / w.sum()

    def probs(self, T) -> np.ndarray:
        r"""Path distribution at temperature ``T`` (> 0, or a 1-D sweep):
        ``x0 prod K exp(G / T) / Z`` = :func:`quasispecies.selection.core.tilt` of
        :attr:`base` by the return with ``beta = T``. ``T = 0`` is the :func:`attractor`."""
        from quasispecies.selection.core import tilt

        T_arr = as_float_array(T, "T", ndim=(0, 1))
        if T_arr.ndim == 0 and T_arr == 0:
            return attractor(self.base, self.returns)
        return np.asarray(tilt(self.base, self.returns, T_arr))


def path_distribution(
    mdp, horizon: int, x0=None, *, max_bytes: int | None = 2**31
) -> PathDistribution:
    r"""All paths ``s0 a0 s1 ... s_H`` of positive kernel weight, with their exploration
    measure and return.

    The path sum (DESIGN §1) weights a path by ``x0(s0) prod K exp(G / T)``; normalised,
    that is the tilt of the exploration measure ``x0 prod K`` by the return ``G`` at
    ``beta = T``. So the collapse of an MDP population as ``T -> 0`` is measured by the
    same :func:`tilt_curve` / :func:`reheating` as for a plain distribution, with
    ``p0 = path.base``, ``r = path.returns``, ``strength = 1 / T``.

    Enumerates with :func:`quasispecies.paths.core.enumerate` (``x0``: a probability vector, a
    start state, or None for uniform; ``max_bytes`` as there: too many paths is a
    ``ValueError`` naming ``horizon``).
    """
    from quasispecies import paths

    p = paths.enumerate(mdp, 1.0, horizon, x0, max_bytes=max_bytes, progress=False)
    return PathDistribution(
        np.asarray(p.states),
        np.asarray(p.actions),
        np.asarray(p.log_prior, dtype=np.float64),
        np.asarray(p.reward, dtype=np.float64),
    )


# ------------------------------------------------------------------------ token trees
class Tree(NamedTuple):
    """A rooted tree of token prefixes (state 0 = the prompt).

    Attributes
    ----------
    parent : (S,) int, ``-1`` for the root.
    logp : (S,) log-probability of the token that leads *into* each state
        (``log p(token | parent prefix)``; 0 at the root).
    depth : (S,) int.
    """

    parent: np.ndarray
    logp: np.ndarray
    depth: np.ndarray

    @property
    def leaves(self) -> np.ndarray:
        """States without children, in state order."""
        has_child = np.zeros(len(self.parent), dtype=bool)
        has_child[self.parent[self.parent >= 0]] = True
        return np.flatnonzero(~has_child)

    @property
    def sequence_logp(self) -> np.ndarray:
        """``log p(continuation | prompt)`` of every state: the sum of ``logp`` from the root."""
        out = np.zeros(len(self.parent))
        for d in range(1, int(self.depth.max()) + 1):
            lvl = np.flatnonzero(self.depth == d)
            out[lvl] = out[self.parent[lvl]] + self.logp[lvl]
        return out


def _segment_lse(vals: np.ndarray, seg: np.ndarray, num: int) -> np.ndarray:
    """``log sum exp`` of ``vals`` grouped by ``seg`` (``-inf`` for an empty group)."""
    m = np.full(num, -np.inf)
    np.maximum.at(m, seg, vals)
    ms = np.where(np.isfinite(m), m, 0.0)
    tot = np.zeros(num)
    np.add.at(tot, seg, np.exp(vals - ms[seg]))
    with np.errstate(divide="ignore"):
        return np.where(tot > 0, ms + np.log(tot), -np.inf)


def _check_tree(parent, logp, depth) -> Tree:
    parent = np.asarray(parent, dtype=np.int64)
    depth = np.asarray(depth, dtype=np.int64)
    logp = as_float_array(logp, "logp", ndim=1)
    S = len(parent)
    if parent.ndim != 1 or S == 0:
        raise ValueError(f"parent: expected a non-empty 1-D array, got shape {parent.shape}")
    if logp.shape != (S,) or depth.shape != (S,):
        raise ValueError(
            f"logp, depth: expected shape {(S,)} to match parent, got {logp.shape}, {depth.shape}"
        )
    if parent[0] != -1 or depth[0] != 0 or (parent[1:] < 0).any() or (parent >= S).any():
        raise ValueError(
            "parent: state 0 must be the only root (parent -1) and parents must be states"
        )
    if (depth[1:] != depth[parent[1:]] + 1).any():
        raise ValueError("depth: must be the parent's depth + 1")
    check_rewards(logp, "logp")
    if (logp[1:] > 1e-9).any() or np.isneginf(logp[1:]).any():  # 1e-9: float32 LM log-probs
        raise ValueError("logp: token log-probabilities must be finite and <= 0")
    return Tree(parent, logp, depth)


def tree_from_token_tree(tt) -> Tree:
    """A :class:`Tree` from :func:`quasispecies.bridge.token_tree`'s result (its ``parent``,
    ``depth`` and path log-probabilities), or from any object with ``.mdp`` (deterministic,
    state 0 the root, children reached by allowed actions) and ``.depth``."""
    depth = np.asarray(tt.depth, dtype=np.int64)
    if hasattr(tt, "parent") and hasattr(tt, "logprob"):
        parent = np.asarray(tt.parent, dtype=np.int64)
        seq = np.asarray(tt.logprob, dtype=np.float64)
        logp = np.where(parent >= 0, seq - seq[np.maximum(parent, 0)], 0.0)
        return _check_tree(parent, logp, depth)
    mdp = tt.mdp
    S = mdp.num_states
    parent = np.full(S, -1, dtype=np.int64)
    logp = np.zeros(S)
    ns, rew, pi0 = mdp.next_state[:, :, 0], mdp.reward[:, :, 0], mdp.pi0
    for s in range(S):
        for a in range(mdp.num_actions):
            c = int(ns[s, a])
            if pi0[s, a] > 0 and c != s and np.isfinite(rew[s, a]):
                parent[c] = s
                logp[c] = rew[s, a]
    return _check_tree(parent, logp, depth)


def _leaf_reward(tree: Tree, reward, name: str = "reward") -> np.ndarray:
    leaves = tree.leaves
    r = as_float_array(reward, name, ndim=1)
    if r.shape != leaves.shape:
        raise ValueError(
            f"{name}: expected one value per leaf, shape {leaves.shape}, got {r.shape}"
        )
    check_rewards(r, name)
    return r


def tree_sequence_probs(tree: Tree, T: float = 1.0, reward=None, beta: float = 1.0) -> np.ndarray:
    r"""Sequence-level distribution over the leaves:

    .. math:: q(y) \propto p(y)^{1/T}\, e^{r(y)/\beta}

    (the tree's population at depth ``H`` under the path sum at temperature ``T``,
    tilted by a leaf reward ``r``). Returns ``(L,)`` over ``tree.leaves``.
    """
    T_arr, _ = _check_beta(T, "T")
    b, _ = _check_beta(beta)
    seq = tree.sequence_logp[tree.leaves]
    r = np.zeros_like(seq) if reward is None else _leaf_reward(tree, reward)
    z = seq / float(T_arr) + r / float(b)
    z = z - z.max()
    w = np.exp(z)
    return w / w.sum()


def tree_tilt_logits(tree: Tree, reward=None, beta: float = 1.0, T: float = 1.0) -> np.ndarray:
    r"""Per-state logits of the token-level policy that realises a sequence-level tilt.

    Backward (soft-Bellman) messages ``log Z(y) = r(y) / beta`` at a leaf and
    ``log Z(s) = logsumexp_c [logp(c) / T + log Z(c)]`` inside; the policy
    ``pi(c | s) ∝ exp(logp(c) / T + log Z(c))`` samples leaves exactly from
    :func:`tree_sequence_probs` (Todorov 2009; this is how a KL-regularised fine-tune
    distributes the sequence-level tilt over tokens). Returns ``(S,)``: the logit of
    the edge into each state (0 at the root).
    """
    T_arr, _ = _check_beta(T, "T")
    b, _ = _check_beta(beta)
    leaves = tree.leaves
    r = np.zeros(len(leaves)) if reward is None else _leaf_reward(tree, reward)
    S = len(tree.parent)
    logZ = np.full(S, -np.inf)
    logZ[leaves] = r / float(b)
    edge = tree.logp / float(T_arr)
    for d in range(int(tree.depth.max()), 0, -1):
        lvl = np.flatnonzero(tree.depth == d)
        inner = _segment_lse(edge[lvl] + logZ[lvl], tree.parent[lvl], S)
        parents = np.unique(tree.parent[lvl])
        logZ[parents] = inner[parents]
    logits = edge + logZ
    logits[0] = 0.0
    return logits


def tree_token_probs(tree: Tree, tau: float = 1.0, logits=None) -> np.ndarray:
    r"""Token-level sampling: draw each token from ``softmax(logits / tau)`` over the children
    of the current prefix, and return the resulting distribution over the leaves,

    .. math:: q_\tau(y) = \prod_{t} \frac{e^{\ell(y_{\le t})/\tau}}{\sum_{c \in
              \mathrm{children}(y_{<t})} e^{\ell(c)/\tau}}.

    With ``logits = None`` the logits are the LM's own token log-probs (ordinary
    temperature sampling restricted to the tree, locally renormalised); with
    :func:`tree_tilt_logits` they are the tuned policy's. This is *not* the sequence-level
    ``p^(1/tau)``: the normaliser is taken per prefix, not over whole sequences.
    """
    t, _ = _check_beta(tau, "tau")
    ell = tree.logp if logits is None else as_float_array(logits, "logits", ndim=1)
    if ell.shape != tree.logp.shape:
        raise ValueError(f"logits: expected shape {tree.logp.shape}, got {ell.shape}")
    S = len(tree.parent)
    z = ell / float(t)
    kids = np.flatnonzero(tree.parent >= 0)
    lognorm = _segment_lse(z[kids], tree.parent[kids], S)  # per-prefix normaliser
    logq = np.zeros(S)
    for d in range(1, int(tree.depth.max()) + 1):
        lvl = np.flatnonzero(tree.depth == d)
        par = tree.parent[lvl]
        logq[lvl] = logq[par] + z[lvl] - lognorm[par]
    q = np.exp(logq[tree.leaves])
    return q / q.sum()
