r"""Continuous-time quasispecies dynamics, solved exactly by a matrix exponential.

.. math:: \frac{dx}{dt} = x G - (x G \mathbf 1)\, x, \qquad
          x(t) = \frac{x_0 e^{G t}}{x_0 e^{G t} \mathbf 1},

row-vector convention (``x`` a row vector, ``G = W_T`` with
``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s'] / T)`` by default). Reference:
M. Eigen, "Selforganization of matter and the evolution of biological macromolecules",
*Naturwissenschaften* 58 (1971).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.operators import log_weight_matrix
from quasispecies.model.mdp import MDP, check_mdp, initial_population
from quasispecies.model.validate import check_temperature

__all__ = ["evolve_continuous"]


def _dense_W(mdp: MDP, T: float) -> np.ndarray:
    A, C = log_weight_matrix(mdp, T)
    with np.errstate(over="ignore", invalid="ignore"):
        W = np.where(np.isfinite(A), np.exp(A / T + C) if T > 0 else np.nan, 0.0)
    return W


def evolve_continuous(mdp, T: float, times, x0=None, generator=None) -> np.ndarray:
    r"""Continuous-time quasispecies ``dx/dt = x G - (x G 1) x``, solved exactly.

    The equation is linear after the change of variables ``n' = n G``, so
    ``x(t) = x_0 e^{G t} / (x_0 e^{G t} 1)`` — a matrix exponential, no ODE solver.
    ``G = W_T`` of the MDP by default (or pass ``generator``, any ``(S, S)`` matrix with
    non-negative off-diagonal entries). Returns ``(len(times), S)``.

    ``W_T`` is formed explicitly, so ``T`` must be large enough that
    ``exp(max R / T)`` is a float64; a smaller ``T`` raises ``ValueError``.
    """
    mdp = check_mdp(mdp)
    Ts, sweep = check_temperature(T)
    if sweep:
        raise ValueError("T: evolve_continuous takes one temperature")
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if t.ndim != 1 or np.isnan(t).any() or (t < 0).any():
        raise ValueError("times: expected a 1-D array of non-negative times")
    x0 = initial_population(mdp, x0)
    if generator is None:
        if float(Ts) == 0:
            raise ValueError(
                "T: continuous-time dynamics need T > 0 (exp(R/T) at T = 0 is not a rate)"
            )
        G = _dense_W(mdp, float(Ts))
        if not np.isfinite(G).all():
            raise ValueError(
                f"T: exp(R / T) overflows float64 at T = {float(Ts)!r}; use a larger T"
            )
    else:
        G = np.asarray(generator, dtype=np.float64)
        if G.shape != (mdp.num_states, mdp.num_states):
            raise ValueError(f"generator: expected shape {(mdp.num_states,) * 2}, got {G.shape}")
        if not np.isfinite(G).all():
            raise ValueError("generator: must be finite")
    return np.asarray(_expm_flow(jnp.asarray(G), jnp.asarray(x0), jnp.asarray(t)))


@jax.jit
def _expm_flow(G, x0, t):
    def one(ti):
        # Shift by the largest diagonal entry: e^{(G - cI)t} = e^{-ct} e^{Gt}, same x(t).
        c = jnp.max(jnp.diag(G))
        n = x0 @ jax.scipy.linalg.expm((G - c * jnp.eye(G.shape[0])) * ti)
        return n / jnp.sum(n)

    return jax.vmap(one)(t)
