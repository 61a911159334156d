r"""Dense Perron vectors of ``W = exp(A / T + C)`` at any ``T > 0``, balanced by max-plus.

``A`` holds ``T log`` weights that may be of order ``1 / T`` apart, so ``W`` itself
overflows at small ``T``. A max-plus subeigenvector ``phi`` of ``A`` (eigenvalue ``mu``,
Howard's policy iteration) balances it:

.. math:: B = e^{-\mu/T} D W D^{-1}, \qquad D = \mathrm{diag}(e^{\phi/T}),

whose entries are at most ``max exp(C)`` and ``O(1)`` on critical edges
(``phi_s + A_{ss'} <= mu + phi_{s'}``). Then ``rho(W) = e^{mu/T} rho(B)``, the left
vector is ``l = y D`` and the right vector ``r = D^{-1} q`` for the Perron vectors
``y B = rho_B y``, ``B q = rho_B q``. References: R. A. Cuninghame-Green, *Minimax
Algebra* (1979); J. Cochet-Terrasson et al., IFAC (1998).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from quasispecies.kernels.maxplus import howard, subeigenvector

__all__ = ["balance", "perron_vector"]


def balance(A: np.ndarray, C: np.ndarray, T: float) -> tuple[float, np.ndarray, np.ndarray]:
    """``(mu, phi, B)``: the max-plus eigenvalue and subeigenvector of ``A`` and the
    balanced matrix ``B`` (see the module docstring); ``A`` irreducible, ``T > 0``."""
    eta, _, _ = howard(A)
    mu = float(eta.max())
    phi = subeigenvector(A, mu)
    with np.errstate(invalid="ignore", over="ignore"):
        B = np.where(np.isfinite(A), np.exp((phi[:, None] + A - mu - phi[None, :]) / T + C), 0.0)
    return mu, phi, B


def perron_vector(B: np.ndarray, side: str = "left") -> tuple[float, np.ndarray, float]:
    """``(rho, v, residual)``: Perron root and vector (``v >= 0``, ``sum v = 1``) of an
    irreducible non-negative ``B``; ``side="left"`` solves ``v B = rho v``, ``"right"``
    ``B v = rho v``. ``residual`` is ``|v B - rho v|_1 / rho`` (or its right form)."""
    M = B.T if side == "left" else B
    w, V = scipy.linalg.eig(M)
    k = int(np.argmax(w.real))
    rho = float(w[k].real)
    v = np.abs(V[:, k].real)
    # LAPACK's geev balances internally and can return the vector of a badly scaled B
    # with a 1e-4 residual; polish it by inverse iteration on (M - sigma I), which is
    # backward stable (LU) and converges like |rho - sigma| / gap per step.
    sigma = rho * (1.0 + 1e-10)
    lu = scipy.linalg.lu_factor(M - sigma * np.eye(M.shape[0]))
    for _ in range(3):
        v = np.abs(scipy.linalg.lu_solve(lu, v / np.abs(v).sum()))
    v /= v.sum()
    Mv = M @ v
    rho = float(Mv.sum())
    return rho, v, float(np.abs(Mv - rho * v).sum() / rho)
