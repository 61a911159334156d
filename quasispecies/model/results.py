"""Result types shared by the dynamics of MDPs and of sequence spaces."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class SteadyState(NamedTuple):
    """The quasispecies: left Perron vector of the replication operator ``W_T``.

    Attributes
    ----------
    population : (S,) array, sums to 1
        Left Perron vector (at ``T = 0`` the ``T -> 0+`` limit). Over genotypes, or
        over Hamming classes (index 0 = master class) for a lumped sequence space.
    log_growth : float
        ``log rho(W_T)``. At ``T = 0`` it is ``+inf``/``-inf`` by the sign of the
        max-plus eigenvalue (and the finite limit when that eigenvalue is 0).
    scaled_log_growth : float
        ``T log rho(W_T)``; at ``T = 0`` the max-plus eigenvalue (maximum cycle mean).
    temperature : float
    irreducible : bool
        False when ``W_T`` is reducible: the Perron vector is then not unique and
        ``population`` is the limit of the dynamics started from ``x0``.
    converged : bool
        Whether the solver met its tolerance.
    iterations : int
        Operator applications used (0 for a direct dense eigensolve).
    residual : float
        ``|| x W - rho x ||_1 / rho`` of the returned vector (relative).
    method : str
        Which solver produced the result.
    """

    population: np.ndarray
    log_growth: float
    scaled_log_growth: float
    temperature: float
    irreducible: bool
    converged: bool
    iterations: int
    residual: float
    method: str


def stack_results(results: list[SteadyState]) -> SteadyState:
    """Stack per-temperature results along a new leading axis (a sweep)."""
    fields: dict[str, Any] = {}
    for name in SteadyState._fields:
        vals = [getattr(r, name) for r in results]
        fields[name] = np.asarray(vals) if name != "method" else np.asarray(vals, dtype=object)
    return SteadyState(**fields)
