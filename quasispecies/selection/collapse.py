r"""Mode collapse, measured: what tilting by a reward does to a distribution's support.

Tilting ``p_beta ∝ p0 exp(r / beta)`` (:func:`quasispecies.selection.tilt`, the fixed point
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
on :func:`quasispecies.paths.enumerate`: the population at temperature ``T`` over paths
*is* the tilt of the exploration measure by the return, ``beta = T``) and for language-model token trees, at the sequence level and at the
token level (:func:`tree_sequence_probs`, :func:`tree_token_probs`, :func:`tree_tilt_logits`,
which live in :mod:`quasispecies.selection.tree` and are re-exported here, so
``qs.collapse`` is the one namespace of the collapse measures).

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

from quasispecies.model.validate import as_float_array, check_distribution, check_nonneg_int
from quasispecies.selection.tilting import log_prob, log_tilt, tilt
from quasispecies.selection.tree import (
    Tree as Tree,
    tree_from_token_tree as tree_from_token_tree,
    tree_sequence_probs as tree_sequence_probs,
    tree_tilt_logits as tree_tilt_logits,
    tree_token_probs as tree_token_probs,
)
from quasispecies.selection.validate import check_beta, check_dist_reward, check_strength
from quasispecies.semiring import log_normalise

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
    logp, _ = log_tilt(logp0, r, lam)
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
    return jax.vmap(_curve_point, in_axes=(None, None, 0))(log_prob(p0), r, lam)


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
    p0, r = check_dist_reward(p0, r, "p0", "r")
    lam, _ = check_strength(strength)
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
        z = jnp.where(p > 0, log_prob(p) * it, -jnp.inf)
        return jnp.exp(log_normalise(z))

    return jax.vmap(one)(inv_tau)


def reheat(p, tau) -> np.ndarray:
    r"""Sampling a distribution at temperature ``tau``: ``p^(1/tau) / sum p^(1/tau)``.

    ``tau > 1`` flattens, ``tau < 1`` sharpens; zero-probability outcomes stay at zero
    (heating cannot restore support that is gone). ``tau`` may be a 1-D sweep.
    """
    p = check_distribution(p, "p")
    t, sweep = check_beta(tau, "tau")
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
    logp0 = log_prob(p0)

    def cell(l, it):
        # p_lambda^(1/tau) ∝ p0^(1/tau) exp(lambda r / tau): one tilt of the heated prior.
        lp, _ = log_tilt(logp0 * it, r, l * it)
        return _entropy(jnp.exp(lp))

    return jax.vmap(lambda l: jax.vmap(lambda it: cell(l, it))(inv_tau))(lam)


def reheating(p0, r, strength, tau) -> ReheatGrid:
    r"""Entropy of the tilted distribution re-sampled at temperature ``tau``.

    Uses :math:`p_\lambda^{1/\tau} \propto p_0^{1/\tau} e^{\lambda r/\tau}` (exact, in the log
    domain, so ``lambda`` up to ``1e3`` and ``tau`` down to ``0.1`` neither over- nor
    underflow). Compare ``entropy[:, k]`` with ``base_entropy[k]``: the untuned model at
    the same temperature.
    """
    p0, r = check_dist_reward(p0, r, "p0", "r")
    lam, _ = check_strength(strength)
    t, _ = check_beta(tau, "tau")
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
    p0, r = check_dist_reward(p0, r, "p0", "r")
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
        lp, _ = log_tilt(log_prob(p), rew, inv_beta)
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
    b, sweep = check_beta(beta)
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
        _, r_np = check_dist_reward(p0, r, "p0", "r")
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
        ``x0 prod K exp(G / T) / Z`` = :func:`quasispecies.selection.tilt` of
        :attr:`base` by the return with ``beta = T``. ``T = 0`` is the :func:`attractor`."""
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

    Enumerates with :func:`quasispecies.paths.enumerate` (``x0``: a probability vector, a
    start state, or None for uniform; ``max_bytes`` as there: too many paths is a
    ``ValueError`` naming ``horizon``).
    """
    from quasispecies.paths import enumerate as enumerate_paths

    p = enumerate_paths(mdp, 1.0, horizon, x0, max_bytes=max_bytes, progress=False)
    return PathDistribution(
        np.asarray(p.states),
        np.asarray(p.actions),
        np.asarray(p.log_prior, dtype=np.float64),
        np.asarray(p.reward, dtype=np.float64),
    )
