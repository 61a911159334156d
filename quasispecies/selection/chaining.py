r"""Iterative chaining: evaluator-filtered self-conditioning, in expectation and in a finite buffer.

A generator errs with probability ``eps``; the evaluator passes a right answer with
probability ``tpr`` and a wrong one with ``fpr``. Among the answers that pass, the
fraction that is wrong is (Bayes' rule)

.. math::  \varepsilon' = \frac{\varepsilon\, \mathrm{fpr}}
                              {\varepsilon\, \mathrm{fpr} + (1 - \varepsilon)\, \mathrm{tpr}},
           \qquad \frac{\varepsilon'}{1-\varepsilon'} = \frac{\mathrm{fpr}}{\mathrm{tpr}}
                                                      \frac{\varepsilon}{1-\varepsilon}.

If the generator, conditioned on the passing answers, errs at the rate of its context
(the idealised-LM assumption of the seed essay on iterative chaining), this is a
recurrence: the odds of error fall by ``fpr / tpr`` per round (:func:`filter_rounds`).
:func:`simulate_chaining` replaces the expectation by binomial draws into a finite buffer.
It is :func:`quasispecies.selection.soft_select` on the two outcomes
``(right, wrong)`` with survival ``(tpr, fpr)``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.model.validate import check_nonneg_int
from quasispecies.selection.validate import check_chain_rates, check_rate

__all__ = [
    "ChainSimulation",
    "filter_rounds",
    "filter_step",
    "rounds_to_reach",
    "simulate_chaining",
]


def _filter_step(e, t, f):
    num = e * f
    return num / (num + (1.0 - e) * t)


def filter_step(eps, tpr, fpr) -> np.ndarray:
    r"""One round of filtering: the error rate among answers that pass the evaluator,

    .. math::  \varepsilon' = \varepsilon b / (\varepsilon b + (1 - \varepsilon) a),
               \quad a = \mathrm{tpr},\ b = \mathrm{fpr}

    (Bayes' rule). Broadcasts over arrays."""
    eps, tpr, fpr = check_chain_rates(eps, tpr, fpr)
    return np.asarray(_filter_step(jnp.asarray(eps), jnp.asarray(tpr), jnp.asarray(fpr)))


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
    e, t, f = check_chain_rates(eps0, tpr, fpr)
    if rounds == 0:
        return e.astype(np.float64)[..., None]
    out = _filter_rounds_kernel(jnp.asarray(e), jnp.asarray(t), jnp.asarray(f), rounds)
    return np.moveaxis(np.asarray(out), 0, -1)


def rounds_to_reach(eps0: float, tpr: float, fpr: float, target: float) -> float:
    r"""Smallest number of rounds ``k`` with ``filter_rounds(...)[k] <= target``:

    .. math:: k = \Bigl\lceil \log\frac{\mathrm{odds}(\mathrm{target})}{\mathrm{odds}(\varepsilon_0)}
              \Big/ \log\frac{\mathrm{fpr}}{\mathrm{tpr}} \Bigr\rceil

    (``inf`` if never: ``fpr >= tpr``, ``tpr = 0`` or ``target = 0``)."""
    e, t, f = (float(x) for x in check_chain_rates(eps0, tpr, fpr))
    target = float(check_rate(target, "target"))
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
    e, t, f = (np.asarray(x, dtype=np.float64) for x in check_chain_rates(eps0, tpr, fpr))
    if e.ndim:
        raise ValueError(f"eps0: expected a scalar, got shape {e.shape}")
    if isinstance(key, int | np.integer):
        key = jax.random.key(int(key))
    keys = jax.random.split(key, replicates)
    return _simulate(
        keys, jnp.asarray(e), jnp.asarray(t), jnp.asarray(f), jnp.asarray(float(buffer)), rounds
    )
