"""What the two sequence-space models share: the steady-state result and one temperature.

Both models scale the replication operator by its largest selection weight,
``W_T = max f^(1/T) * diag(g_T) Q`` with ``g_T = f^(1/T) / max f^(1/T)`` in ``(0, 1]``, and
find the Perron root ``theta`` of ``diag(g_T) Q`` (or its class lumping); then
``lambda_T = max f^(1/T) * theta``. This module turns that pair into a
:class:`~quasispecies.model.results.SteadyState` without ever forming ``max f^(1/T)``
(which overflows at small ``T``).
"""

from __future__ import annotations

import math

import numpy as np

from quasispecies.model.results import SteadyState
from quasispecies.model.validate import check_temperature

__all__ = ["DIAGONAL", "growth", "log_or_neginf", "one_temperature", "steady_result"]

#: ``.method`` of a steady state with every ``mu = 0``.
DIAGONAL = "mu = 0: W_T is diagonal, lambda = max f^(1/T)"


def growth(T: float, lmax: float, theta: float) -> tuple[float, float]:
    """``(log lambda_T, T log lambda_T)`` from ``lambda_T = max f^(1/T) * theta``.

    ``lmax = max log f``. At ``T = 0``: ``log lambda`` is ``±inf`` by the sign of ``lmax``
    (the finite ``log theta`` when ``lmax = 0``) and ``T log lambda`` is ``lmax``, the
    max-plus eigenvalue.
    """
    if T > 0:
        return lmax / T + math.log(theta), lmax + T * math.log(theta)
    if lmax == 0:
        return math.log(theta), 0.0
    return math.copysign(math.inf, lmax), lmax


def steady_result(
    population,
    T: float,
    lmax: float,
    theta: float,
    *,
    method: str,
    irreducible: bool = False,
    converged: bool = True,
    iterations: int = 0,
    residual: float = 0.0,
) -> SteadyState:
    """The steady state with ``lambda_T = max f^(1/T) * theta`` (see :func:`growth`)."""
    log_growth, scaled = growth(T, lmax, theta)
    return SteadyState(
        population=np.asarray(population),
        log_growth=float(log_growth),
        scaled_log_growth=float(scaled),
        temperature=T,
        irreducible=irreducible,
        converged=converged,
        iterations=iterations,
        residual=residual,
        method=method,
    )


def one_temperature(T) -> float:
    """Validate one scalar ``T >= 0`` (a sweep goes through ``qs.steady_state`` / ``qs.evolve``)."""
    Ts, sweep = check_temperature(T)
    if sweep:
        raise ValueError(
            "T: this method takes one temperature; qs.steady_state / qs.evolve sweep arrays"
        )
    return float(Ts)


def log_or_neginf(x: np.ndarray) -> np.ndarray:
    """``log x`` with ``log 0 = -inf`` and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(x)
