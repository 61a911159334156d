r"""Selection by an evaluator: reward tilting, best-of-``n``, and iterative chaining.

Three ways of keeping only part of what a generator ``p`` produces, each of which is a
round of *selection* in the quasispecies sense (survivors replicate, the rest do not):

**Tilting** (the KL-regularised optimum, "RLHF as a Bayesian update").

.. math::  p_\beta(y) = \frac{p_0(y)\, e^{r(y)/\beta}}{Z_\beta},
           \qquad \beta \log Z_\beta = \max_p \; \mathbb{E}_p[r] - \beta\, \mathrm{KL}(p \,\|\, p_0),

the maximiser being ``p_beta`` (Donsker–Varadhan; Korbak, Perez & Buckley 2022, "RL with
KL penalties is better viewed as Bayesian inference"). A survival probability
``h(y) in [0, 1]`` is the case ``r = log h``, ``beta = 1`` (:func:`soft_select`).

**Best of n.** Draw ``n`` i.i.d. samples from ``p`` and keep the one with the largest
reward. With ``F(y) = P(r(Y) <= r(y))`` and ``F(y-) = P(r(Y) < r(y))``,

.. math::  \pi_n(y) = \frac{p(y)}{F(y) - F(y^-)} \bigl(F(y)^n - F(y^-)^n\bigr),

(ties share their group's mass in proportion to ``p``; without ties this is
``F(y)^n - F(y-)^n``). Its divergence and win rate obey

.. math::  \mathrm{KL}(\pi_n \,\|\, p) \le \log n - \frac{n-1}{n}, \qquad
           P(r(Y_n) > r(Y)) + \tfrac12 P(r(Y_n) = r(Y)) \le \frac{n}{n+1},

with equality for a continuous reward distribution (Stiennon et al. 2020 state the KL
value; Beirami et al. 2024, "Theoretical guarantees on the best-of-n alignment policy",
prove it is an upper bound). Both bounds follow from the continuous case: write
``Y = Q(U)`` with ``U`` uniform and ``Q`` the quantile function; best-of-``n`` of ``Y``
is ``Q(max U_i)``, a deterministic function of ``max U_i`` whose law has
``KL = log n - (n-1)/n`` to the uniform, so the data-processing inequality bounds the
discrete KL; within a tie group ``max U_i`` leans to the top of its interval, so its mean
exceeds the group's mid-rank, which bounds the half-credit win rate by ``E[max U_i]``.

**Iterative chaining** (evaluator-filtered self-conditioning). A generator errs with
probability ``eps``; the evaluator passes a right answer with probability ``tpr`` and a
wrong one with ``fpr``. Among the answers that pass, the fraction that is wrong is

.. math::  \varepsilon' = \frac{\varepsilon\, \mathrm{fpr}}
                              {\varepsilon\, \mathrm{fpr} + (1 - \varepsilon)\, \mathrm{tpr}},
           \qquad \frac{\varepsilon'}{1-\varepsilon'} = \frac{\mathrm{fpr}}{\mathrm{tpr}}
                                                      \frac{\varepsilon}{1-\varepsilon}.

If the generator, conditioned on the passing answers, errs at the rate of its context
(the idealised-LM assumption of the seed essay on iterative chaining), this is a
recurrence: the odds of error fall by ``fpr / tpr`` per round (:func:`filter_rounds`).
:func:`simulate_chaining` replaces the expectation by binomial draws into a finite buffer.

Conventions: float64; distributions are 1-D and sum to 1 (within ``1e-8``); rewards may
be ``-inf`` (never selected by a tilt) but not NaN or ``+inf``. Invalid input raises
``ValueError`` naming the argument.
"""

from __future__ import annotations

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

__all__ = [
    "BestOfN",
    "best_of_n",
    "best_of_n_kl_bound",
    "best_of_n_stats",
    "best_of_n_win_rate_bound",
    "filter_rounds",
    "filter_step",
    "kl_divergence",
    "rounds_to_reach",
    "simulate_chaining",
    "soft_select",
    "survival",
    "tilt",
    "tilt_log_partition",
]


# ----------------------------------------------------------------------- validation
def _check_dist_reward(p, r, p_name: str, r_name: str) -> tuple[np.ndarray, np.ndarray]:
    p = check_distribution(p, p_name)
    r = as_float_array(r, r_name, ndim=1)
    if r.shape != p.shape:
        raise ValueError(f"{r_name}: expected shape {p.shape} to match {p_name}, got {r.shape}")
    check_rewards(r, r_name)
    return p, r


def _check_beta(beta, name: str = "beta") -> tuple[np.ndarray, bool]:
    b = as_float_array(beta, name, ndim=(0, 1))
    if b.ndim == 1 and b.size == 0:
        raise ValueError(f"{name}: empty array")
    if np.isnan(b).any():
        raise ValueError(f"{name}: contains NaN")
    if (b <= 0).any():
        raise ValueError(f"{name}: must be > 0, got {b[b <= 0].ravel()[0]!r}")
    if np.isinf(b).any():
        raise ValueError(f"{name}: must be finite, got {b[np.isinf(b)].ravel()[0]!r}")
    return b, b.ndim == 1


def _check_rate(x, name: str) -> np.ndarray:
    a = as_float_array(x, name)
    if np.isnan(a).any():
        raise ValueError(f"{name}: contains NaN")
    if ((a < 0) | (a > 1)).any():
        raise ValueError(f"{name}: must lie in [0, 1], got {a[(a < 0) | (a > 1)].ravel()[0]!r}")
    return a


def _check_n(n) -> tuple[np.ndarray, bool]:
    arr = np.asarray(n)
    if arr.ndim > 1:
        raise ValueError(
            f"n: expected an integer or a 1-D array of integers, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError("n: empty array")
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"n: expected integers, got {n!r}")
    if np.issubdtype(arr.dtype, np.floating) and (
        not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))
    ):
        raise ValueError(f"n: expected integers, got {n!r}")
    if (arr < 1).any():
        raise ValueError(f"n: must be >= 1, got {arr[arr < 1].ravel()[0]!r}")
    return arr.astype(np.float64), arr.ndim == 1


# --------------------------------------------------------------------------- tilting
def _log_tilt(logp0: jax.Array, r: jax.Array, inv_beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Log of the tilted distribution and ``log Z`` for one strength ``1/beta``.

    ``-inf`` in ``logp0`` (zero prior mass) or in ``r`` (excluded outcome) stays ``-inf``.
    """
    dead = jnp.isneginf(logp0) | jnp.isneginf(r)
    z = jnp.where(dead, -jnp.inf, jnp.where(dead, 0.0, logp0) + jnp.where(dead, 0.0, r) * inv_beta)
    logZ = logsumexp(z)
    return z - logZ, logZ


@jax.jit
def _tilt_kernel(p0: jax.Array, r: jax.Array, inv_beta: jax.Array) -> tuple[jax.Array, jax.Array]:
    logp0 = jnp.where(p0 > 0, jnp.log(jnp.where(p0 > 0, p0, 1.0)), -jnp.inf)
    logp, logZ = jax.vmap(_log_tilt, in_axes=(None, None, 0))(logp0, r, inv_beta)
    return jnp.exp(logp), logZ


def _tilt_checked(p0, r, beta, p_name="p0", r_name="r"):
    p0, r = _check_dist_reward(p0, r, p_name, r_name)
    b, sweep = _check_beta(beta)
    live = (p0 > 0) & np.isfinite(r)
    if not live.any():
        raise ValueError(
            f"{r_name}: every outcome with positive {p_name} has reward -inf; nothing survives"
        )
    p, logZ = _tilt_kernel(jnp.asarray(p0), jnp.asarray(r), jnp.asarray(1.0 / np.atleast_1d(b)))
    return (p, logZ, b) if sweep else (p[0], logZ[0], b)


def tilt(p0, r, beta) -> jax.Array:
    r"""The reward-tilted distribution ``p0 exp(r / beta) / Z`` (computed in the log domain).

    .. math::  p_\beta(y) = p_0(y)\, e^{r(y)/\beta} \Big/ \sum_{y'} p_0(y')\, e^{r(y')/\beta}

    is the unique maximiser of ``E_p[r] - beta KL(p || p0)`` (Korbak et al. 2022): the
    policy that KL-regularised RL (RLHF with a KL penalty ``beta``) converges to. As
    ``beta -> 0`` it tends to ``p0`` restricted to ``argmax r``
    (:func:`quasispecies.selection.collapse.attractor`); ``beta -> inf`` gives back ``p0``.

    Parameters
    ----------
    p0 : (N,) array
        Base distribution (non-negative, sums to 1).
    r : (N,) array
        Rewards; ``-inf`` removes an outcome.
    beta : float > 0, or (B,) array
        KL coefficient ("temperature" of the tilt). An array is a sweep and adds a
        leading axis to the result.

    Returns
    -------
    (N,) or (B, N) float64 array summing to 1 along the last axis.
    """
    return _tilt_checked(p0, r, beta)[0]


def tilt_log_partition(p0, r, beta) -> jax.Array:
    r"""``beta log Z_beta = beta log sum p0 exp(r / beta)``: the optimal value of
    ``E_p[r] - beta KL(p || p0)`` (Donsker–Varadhan). Scalar, or ``(B,)`` for a sweep."""
    _, logZ, b = _tilt_checked(p0, r, beta)
    return jnp.asarray(b) * logZ


def kl_divergence(p, q) -> float:
    r"""``KL(p || q) = sum_y p(y) log(p(y) / q(y))`` in nats (``0 log 0 = 0``).

    ``+inf`` when ``p`` puts mass where ``q`` has none.
    """
    p = check_distribution(p, "p")
    q = check_distribution(q, "q", size=p.shape[0])
    return float(_kl(jnp.asarray(p), jnp.asarray(q)))


@jax.jit
def _kl(p: jax.Array, q: jax.Array) -> jax.Array:
    pos = p > 0
    ps = jnp.where(pos, p, 1.0)
    qs = jnp.where(pos & (q > 0), q, 1.0)
    term = jnp.where(pos, ps * (jnp.log(ps) - jnp.log(qs)), 0.0)
    bad = pos & (q <= 0)
    return jnp.where(bad.any(), jnp.inf, term.sum())


def soft_select(p, h) -> jax.Array:
    r"""Selection by a survival probability: ``p'(y) = p(y) h(y) / sum_y' p(y') h(y')``.

    Each individual ``y`` survives (is cherry-picked, replicates) with probability
    ``h(y)``; the survivors are distributed as ``p h`` renormalised. This is
    :func:`tilt` with ``r = log h`` and ``beta = 1``, and one round of
    :func:`filter_rounds` is the two-outcome case ``p = (1 - eps, eps)``,
    ``h = (tpr, fpr)``. Applied ``k`` times it is ``p h^k``: the population converges
    to ``p`` restricted to ``argmax h``.

    Parameters
    ----------
    p : (N,) or (Q, N) array
        A distribution, or one conditional distribution ``p(a | q)`` per row.
    h : same shape as ``p``
        Survival probabilities in ``[0, 1]`` (``h(q, a)`` for conditional tables).
    """
    p_arr = as_float_array(p, "p", ndim=(1, 2))
    h_arr = _check_rate(h, "h")
    if h_arr.shape != p_arr.shape:
        raise ValueError(f"h: expected shape {p_arr.shape} to match p, got {h_arr.shape}")
    rows_p = p_arr[None] if p_arr.ndim == 1 else p_arr
    rows_h = h_arr[None] if h_arr.ndim == 1 else h_arr
    for i, row in enumerate(rows_p):
        check_distribution(row, "p" if p_arr.ndim == 1 else f"p[{i}]")
    surv = (rows_p * rows_h).sum(axis=1)
    if (surv <= 0).any():
        i = int(np.argmax(surv <= 0))
        where = "" if p_arr.ndim == 1 else f" in row {i}"
        raise ValueError(
            f"h: zero survival probability wherever p has mass{where}; nothing survives"
        )
    out = jax.vmap(_soft_select_row)(jnp.asarray(rows_p), jnp.asarray(rows_h))
    return out[0] if p_arr.ndim == 1 else out


@jax.jit
def _soft_select_row(p: jax.Array, h: jax.Array) -> jax.Array:
    w = p * h
    return w / w.sum()


def survival(p, h) -> jax.Array:
    """Fraction of the population that survives soft selection: ``sum_y p(y) h(y)``
    (per row for a conditional table). Same arguments as :func:`soft_select`."""
    p_arr = as_float_array(p, "p", ndim=(1, 2))
    h_arr = _check_rate(h, "h")
    if h_arr.shape != p_arr.shape:
        raise ValueError(f"h: expected shape {p_arr.shape} to match p, got {h_arr.shape}")
    rows = p_arr[None] if p_arr.ndim == 1 else p_arr
    for i, row in enumerate(rows):
        check_distribution(row, "p" if p_arr.ndim == 1 else f"p[{i}]")
    s = jnp.sum(jnp.asarray(p_arr) * jnp.asarray(h_arr), axis=-1)
    return s


# ------------------------------------------------------------------------ best of n
class BestOfN(NamedTuple):
    """Summary of best-of-``n`` selection (each field gains a leading axis for an ``n`` sweep).

    Attributes
    ----------
    probs : (N,) the exact best-of-``n`` distribution ``pi_n``.
    kl : ``KL(pi_n || p)`` in nats.
    kl_bound : ``log n - (n - 1) / n``.
    win_rate : ``P(r(Y_n) > r(Y)) + P(r(Y_n) = r(Y)) / 2`` with ``Y ~ p`` independent.
    win_rate_bound : ``n / (n + 1)``.
    expected_reward : ``E_{pi_n}[r]`` (``-inf`` only if every draw can be ``-inf``).
    n : the number of draws.
    """

    probs: jax.Array
    kl: jax.Array
    kl_bound: jax.Array
    win_rate: jax.Array
    win_rate_bound: jax.Array
    expected_reward: jax.Array
    n: jax.Array


def _tie_masses(p: jax.Array, r: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per outcome: mass strictly above its reward, mass at or above it, and its tie group.

    Upper tails (not ``F``) are accumulated so that ``F`` close to 1 keeps its precision:
    ``log F = log1p(-tail)``.
    """
    order = jnp.argsort(r)
    rs, ps = r[order], p[order]
    # suffix[i] = sum_{j >= i} ps[j]; suffix[N] = 0.
    suffix = jnp.concatenate([jnp.cumsum(ps[::-1])[::-1], jnp.zeros((1,), p.dtype)])
    lo = jnp.searchsorted(rs, r, side="left")
    hi = jnp.searchsorted(rs, r, side="right")
    above = suffix[hi]  # P(r(Y) > r(y)) = 1 - F(y)
    at_or_above = suffix[lo]  # P(r(Y) >= r(y)) = 1 - F(y-)
    # The group's mass summed from its own entries (a difference of cumulative sums
    # would cancel catastrophically for a rare group next to a heavy one).
    g = jax.ops.segment_sum(p, lo, num_segments=p.shape[0])[lo]
    return above, at_or_above, g


def _best_of_n_one(p: jax.Array, r: jax.Array, n: jax.Array) -> BestOfN:
    above, at_or_above, g = _tie_masses(p, r)
    logF = jnp.log1p(-jnp.minimum(above, 1.0))
    logFm = jnp.log1p(-jnp.minimum(at_or_above, 1.0))
    # log(F^n - F-^n) = n log F + log(-expm1(n (log F- - log F))), -inf when F- = F.
    diff = n * (logFm - logF)
    gap = -jnp.expm1(jnp.where(jnp.isfinite(diff), diff, -jnp.inf))
    log_mass = jnp.where(gap > 0, n * logF + jnp.log(jnp.where(gap > 0, gap, 1.0)), -jnp.inf)
    gpos = g > 0
    log_ratio = jnp.where(gpos, log_mass - jnp.log(jnp.where(gpos, g, 1.0)), -jnp.inf)  # pi_n / p
    pos = p > 0
    probs = jnp.where(pos, p * jnp.exp(jnp.where(pos, log_ratio, 0.0)), 0.0)
    kl = jnp.sum(jnp.where(pos & (probs > 0), probs * jnp.where(pos, log_ratio, 0.0), 0.0))
    below = 1.0 - at_or_above  # F(y-)
    win = jnp.sum(probs * (below + 0.5 * g))
    rsafe = jnp.where(probs > 0, r, 0.0)
    er = jnp.sum(probs * rsafe)
    return BestOfN(
        probs=probs,
        kl=kl,
        kl_bound=jnp.log(n) - (n - 1.0) / n,
        win_rate=win,
        win_rate_bound=n / (n + 1.0),
        expected_reward=er,
        n=n,
    )


@jax.jit
def _best_of_n_kernel(p: jax.Array, r: jax.Array, n: jax.Array) -> BestOfN:
    return jax.vmap(_best_of_n_one, in_axes=(None, None, 0))(p, r, n)


def best_of_n_stats(p, r, n) -> BestOfN:
    r"""Exact best-of-``n`` distribution with its KL, win rate and the two bounds.

    See the module docstring for the formulas. ``n`` may be a 1-D array of integers
    (a sweep, leading axis). Ties in ``r`` (exact equality) share their group's mass in
    proportion to ``p``: that is what picking uniformly among tied draws gives.
    """
    p, r = _check_dist_reward(p, r, "p", "r")
    n_arr, sweep = _check_n(n)
    res = _best_of_n_kernel(jnp.asarray(p), jnp.asarray(r), jnp.asarray(np.atleast_1d(n_arr)))
    if sweep:
        return res
    return BestOfN(*(x[0] for x in res))


def best_of_n(p, r, n) -> jax.Array:
    r"""Exact distribution of the best of ``n`` i.i.d. draws from ``p`` ranked by ``r``.

    .. math::  \pi_n(y) = p(y)\, \frac{F(y)^n - F(y^-)^n}{F(y) - F(y^-)},\quad
               F(y) = \sum_{r(y') \le r(y)} p(y'),\ F(y^-) = \sum_{r(y') < r(y)} p(y')

    (``F(y)^n - F(y-)^n`` when rewards are distinct; ties share the group's mass in
    proportion to ``p``). Computed from upper tails in the log domain, so rare
    outcomes keep their relative precision. Reference: Beirami et al. (2024).

    Parameters
    ----------
    p : (N,) distribution; r : (N,) rewards (``-inf`` ranks lowest); n : int >= 1, or a
        1-D array of them (adds a leading axis).
    """
    return best_of_n_stats(p, r, n).probs


def best_of_n_kl_bound(n) -> np.ndarray:
    """``log n - (n - 1) / n``: the KL of best-of-``n`` for a continuous reward, an upper
    bound for any reward distribution (Beirami et al. 2024)."""
    n_arr, sweep = _check_n(n)
    out = np.log(n_arr) - (n_arr - 1.0) / n_arr
    return out if sweep else out[()]


def best_of_n_win_rate_bound(n) -> np.ndarray:
    """``n / (n + 1)``: the win rate of best-of-``n`` against a fresh draw for a continuous
    reward (``E[max of n uniforms]``); an upper bound when ties count one half."""
    n_arr, sweep = _check_n(n)
    out = n_arr / (n_arr + 1.0)
    return out if sweep else out[()]


# -------------------------------------------------------------------- iterative chaining
def filter_step(eps, tpr, fpr) -> np.ndarray:
    r"""One round of filtering: the error rate among answers that pass the evaluator,
    ``eps fpr / (eps fpr + (1 - eps) tpr)`` (Bayes' rule). Broadcasts over arrays."""
    eps, tpr, fpr = _check_chain_rates(eps, tpr, fpr)
    return np.asarray(_filter_step(jnp.asarray(eps), jnp.asarray(tpr), jnp.asarray(fpr)))


def _filter_step(e, t, f):
    num = e * f
    return num / (num + (1.0 - e) * t)


def _check_chain_rates(eps0, tpr, fpr, eps_name: str = "eps0"):
    e = _check_rate(eps0, eps_name)
    t = _check_rate(tpr, "tpr")
    f = _check_rate(fpr, "fpr")
    try:
        e, t, f = np.broadcast_arrays(e, t, f)
    except ValueError:
        raise ValueError(
            f"{eps_name}, tpr, fpr: shapes {np.shape(eps0)}, {np.shape(tpr)}, {np.shape(fpr)} do not broadcast"
        ) from None
    none_pass = e * f + (1.0 - e) * t == 0
    if none_pass.any():
        i = np.unravel_index(int(np.argmax(none_pass)), none_pass.shape) if none_pass.ndim else ()
        raise ValueError(
            f"tpr, fpr: nothing ever passes the evaluator ({eps_name}={float(e[i])!r}, "
            f"tpr={float(t[i])!r}, fpr={float(f[i])!r}); the error rate of the survivors is undefined"
        )
    return e, t, f


@partial(jax.jit, static_argnames=("rounds",))
def _filter_rounds_kernel(e0: jax.Array, t: jax.Array, f: jax.Array, rounds: int) -> jax.Array:
    def step(e, _):
        e2 = _filter_step(e, t, f)
        return e2, e2

    _, rest = jax.lax.scan(step, e0, None, length=rounds)
    return jnp.concatenate([e0[None], rest], axis=0)


def filter_rounds(eps0, tpr, fpr, rounds: int) -> np.ndarray:
    r"""Error rates ``eps_0 .. eps_rounds`` of evaluator-filtered iterative chaining.

    .. math::  \varepsilon_{k+1} = \frac{\varepsilon_k\, \mathrm{fpr}}
               {\varepsilon_k\, \mathrm{fpr} + (1 - \varepsilon_k)\, \mathrm{tpr}},
               \qquad \mathrm{odds}(\varepsilon_k) = \mathrm{odds}(\varepsilon_0)
               \,(\mathrm{fpr}/\mathrm{tpr})^k .

    The step is Bayes' rule for the answers that pass; it becomes a recurrence under the
    idealised-LM assumption that a generator conditioned on the passing answers errs at
    their rate (the seed essay's iterative-chaining argument). Error falls iff
    ``fpr < tpr``; ``eps = 0`` and ``eps = 1`` are fixed points.

    Parameters
    ----------
    eps0, tpr, fpr : floats in [0, 1] (or broadcastable arrays; the result then has their
        broadcast shape followed by the round axis).
    rounds : int >= 0

    Returns
    -------
    (rounds + 1,) float64 array (``(*batch, rounds + 1)`` for array inputs).

    Raises ``ValueError`` when nothing can pass (``tpr = fpr = 0``, or ``tpr = 0`` with
    ``eps0 = 0``, or ``fpr = 0`` with ``eps0 = 1``): the survivors' error rate is undefined.
    """
    rounds = check_nonneg_int(rounds, "rounds")
    e, t, f = _check_chain_rates(eps0, tpr, fpr)
    if rounds == 0:
        return e.astype(np.float64)[..., None]
    out = _filter_rounds_kernel(jnp.asarray(e), jnp.asarray(t), jnp.asarray(f), rounds)
    return np.moveaxis(np.asarray(out), 0, -1)


def rounds_to_reach(eps0: float, tpr: float, fpr: float, target: float) -> float:
    r"""Smallest number of rounds ``k`` with ``filter_rounds(...)[k] <= target``:
    ``ceil(log(odds(target) / odds(eps0)) / log(fpr / tpr))`` (``inf`` if never)."""
    e, t, f = (float(x) for x in _check_chain_rates(eps0, tpr, fpr))
    target = float(_check_rate(target, "target"))
    if e <= target:
        return 0.0
    if f == 0:
        return 1.0
    if t == 0 or f >= t or target == 0:
        return float("inf")
    k = np.log((target / (1 - target)) / (e / (1 - e))) / np.log(f / t)
    k_int = float(np.ceil(k - 1e-12))  # 1e-12: do not round an exact integer up
    return max(k_int, 1.0)


class ChainSimulation(NamedTuple):
    """Finite-buffer chaining runs (see :func:`simulate_chaining`).

    Attributes
    ----------
    error : (replicates, rounds + 1) fraction of wrong answers in the context per round
        (round 0: ``eps0``).
    candidates : (replicates, rounds) answers generated to fill each round's buffer.
    """

    error: jax.Array
    candidates: jax.Array


@partial(jax.jit, static_argnames=("rounds",))
def _simulate(keys, e0, t, f, B, rounds: int) -> ChainSimulation:
    return jax.vmap(_simulate_one, in_axes=(0, None, None, None, None, None))(
        keys, e0, t, f, B, rounds
    )


def _simulate_one(key, e0, t, f, B, rounds: int) -> ChainSimulation:

    def step(e, k):
        k_wrong, k_gamma, k_pois = jax.random.split(k, 3)
        pass_rate = e * f + (1.0 - e) * t
        q = _filter_step(e, t, f)
        wrong = jax.random.binomial(k_wrong, B, q, dtype=e0.dtype)
        # Failures before the B-th pass: negative binomial = Poisson(Gamma(B) (1-pi)/pi).
        lam = jax.random.gamma(k_gamma, B, dtype=e0.dtype) * (1.0 - pass_rate) / pass_rate
        fails = jax.random.poisson(k_pois, lam, dtype=jnp.int64).astype(e0.dtype)
        e2 = wrong / B
        return e2, (e2, B + fails)

    keys = jax.random.split(key, rounds)
    _, (errs, cost) = jax.lax.scan(step, e0, keys)
    return ChainSimulation(jnp.concatenate([e0[None], errs]), cost)


def simulate_chaining(
    key, eps0: float, tpr: float, fpr: float, rounds: int, buffer: int, replicates: int = 1000
) -> ChainSimulation:
    r"""Stochastic iterative chaining with a finite context buffer.

    Each round the generator errs at the rate of its current context (round 0:
    ``eps0``) and answers are drawn until ``buffer`` of them pass the evaluator. The
    number of wrong answers among those ``B = buffer`` is exactly

    .. math::  W_{k+1} \sim \mathrm{Binomial}\bigl(B,\ \varepsilon_k \mathrm{fpr} /
               (\varepsilon_k \mathrm{fpr} + (1-\varepsilon_k) \mathrm{tpr})\bigr),
               \qquad \varepsilon_{k+1} = W_{k+1} / B,

    and the candidates spent are ``B`` plus a negative-binomial number of rejections
    (pass probability ``eps fpr + (1 - eps) tpr``). As ``B -> inf`` the runs follow
    :func:`filter_rounds`; for finite ``B`` the step map is convex when ``fpr < tpr``, so
    the mean lies above the recurrence (Jensen) and ``eps = 0`` and ``eps = 1`` are
    absorbing: a small buffer that happens to fill with wrong answers never recovers.

    ``replicates`` independent runs are a ``vmap`` over PRNG keys (JAX threefry).
    """
    rounds = check_nonneg_int(rounds, "rounds")
    buffer = check_nonneg_int(buffer, "buffer", minimum=1)
    replicates = check_nonneg_int(replicates, "replicates", minimum=1)
    e, t, f = (np.asarray(x, dtype=np.float64) for x in _check_chain_rates(eps0, tpr, fpr))
    if e.ndim:
        raise ValueError(f"eps0: expected a scalar, got shape {e.shape}")
    if isinstance(key, int | np.integer):
        key = jax.random.key(int(key))
    keys = jax.random.split(key, replicates)
    return _simulate(
        keys, jnp.asarray(e), jnp.asarray(t), jnp.asarray(f), jnp.asarray(float(buffer)), rounds
    )
