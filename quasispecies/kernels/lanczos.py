r"""Perron pair of a large symmetric operator by Lanczos, in three vectors of memory.

Power iteration on a replication operator converges like :math:`|\lambda_2/\lambda_1|^n`:
near Eigen's error threshold, where :math:`|\lambda_2/\lambda_1| \approx 0.98`, that is more
than a thousand operator applications for ten digits. Lanczos on the symmetric form
:math:`A = G^{1/2} Q G^{1/2}` converges like :math:`\exp(-2n\sqrt{\text{gap}})` instead
(Kaniel–Paige–Saad bound), typically a few dozen applications.

The three-term recurrence (Paige's ordering, the stable one)

.. math::

    \beta_{j+1} v_{j+1} = A v_j - \alpha_j v_j - \beta_j v_{j-1},
    \qquad \alpha_j = v_j^\top (A v_j - \beta_j v_{j-1}),

is run **without reorthogonalisation**, so it needs three vectors (``u, v`` and the
operator's scratch ``w``) and never stores the basis: memory stays at three vectors of
:math:`k^L` float64 however many steps are taken. Loss of orthogonality in finite precision
goes hand in hand with the convergence of a Ritz value (Paige 1971/1980); the top Ritz value
converges as in exact arithmetic, and we stop at the *first* step where its residual estimate
:math:`\beta_{m+1} |s_m| \le \text{tol}\,\theta_1` holds (or at an invariant subspace,
:math:`\beta_{m+1} \approx 0`), before spurious copies ("ghosts") can appear.

The Ritz vector :math:`y = \sum_j s_j v_j` is then formed **without storing the basis**, by
Clenshaw's backward recurrence on the Lanczos polynomials
(:math:`v_j = p_j(A) v_1`):

.. math::

    b_j = s_j v_1 + \frac{(A - \alpha_j) b_{j+1}}{\beta_{j+1}}
          - \frac{\beta_{j+1}}{\beta_{j+2}} b_{j+2}, \qquad y = b_1,

again three vectors (``v_1`` is regenerated on the fly from the landscape). The caller checks
the true residual of the result; if it is not small (which stopping at first convergence
prevents in every case we have tried), :func:`top_eigenpair` can instead *replay* the
recurrence and accumulate ``y`` (a fourth vector).

The operator is any object with the protocol of
:class:`quasispecies.kernels.symmetrised.SymmetrisedOperator`: ``start()``, ``zeros()``,
``step(u, v, w, ...)``, ``axpy``, ``zero``.

References: C. Lanczos (1950); C. C. Paige, *J. Inst. Math. Appl.* 10 (1972) and
*Linear Algebra Appl.* 34 (1980); J. Cullum & R. Willoughby, *Lanczos Algorithms for Large
Symmetric Eigenvalue Computations* (1985), on the two-pass, basis-free Ritz vectors.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

__all__ = ["LanczosResult", "top_eigenpair"]


class LanczosResult(NamedTuple):
    """Top eigenpair of a symmetric operator.

    Attributes
    ----------
    value : float
        Largest eigenvalue ``theta`` (the top Ritz value).
    vector : array
        Ritz vector ``y`` (unit 2-norm, sign arbitrary), in one of the operator's buffers.
    spare : tuple of two arrays
        The other two buffers, free for the caller to reuse.
    steps : int
        Lanczos steps ``m`` (the Krylov dimension).
    matvecs : int
        Operator applications, the Ritz-vector pass included.
    estimate : float
        ``beta_{m+1} |s_m|``, the residual norm of the Ritz pair in exact arithmetic.
    converged : bool
        ``estimate <= tol * theta`` (or an invariant subspace was found).
    ritz : str
        ``"clenshaw"`` or ``"replay"``: how the Ritz vector was formed.
    alphas, betas : ndarray
        The tridiagonal matrix ``T_m`` (diagonal, off-diagonal).
    """

    value: float
    vector: Any
    spare: tuple
    steps: int
    matvecs: int
    estimate: float
    converged: bool
    ritz: str
    alphas: np.ndarray
    betas: np.ndarray


def _top_ritz(alphas: list[float], betas: list[float]) -> tuple[float, np.ndarray]:
    """Largest eigenvalue of the tridiagonal ``T`` and its unit eigenvector."""
    m = len(alphas)
    if m == 1:
        return float(alphas[0]), np.ones(1)
    w, s = scipy.linalg.eigh_tridiagonal(
        np.asarray(alphas), np.asarray(betas[: m - 1]), select="i", select_range=(m - 1, m - 1)
    )
    return float(w[0]), s[:, 0]


def top_eigenpair(
    op, *, tol: float = 1e-12, max_steps: int = 5000, ritz: str = "clenshaw"
) -> LanczosResult:
    r"""Largest eigenvalue and eigenvector of the symmetric operator ``op``: ``A y = theta y``.

    Lanczos (C. Lanczos, *J. Res. Nat. Bur. Standards* 45 (1950)) without
    reorthogonalisation: ``beta_{j+1} v_{j+1} = A v_j - alpha_j v_j - beta_j v_{j-1}``, the
    top Ritz pair of the tridiagonal ``T_m`` at the first step where
    ``beta_{m+1} |s_m| <= tol * theta``; the Ritz vector without a stored basis (see the
    module docstring; Paige 1972, 1980). For sequence space ``A = G^1/2 Q G^1/2``.

    Parameters
    ----------
    op : operator with the protocol of :class:`quasispecies.kernels.symmetrised.SymmetrisedOperator`
    tol : float
        Stop when ``beta_{m+1} |s_m| <= tol * theta`` (relative residual of the Ritz pair).
    max_steps : int
        Give up (``converged=False``) after this many Lanczos steps.
    ritz : {"clenshaw", "replay"}
        How to form the Ritz vector: Clenshaw's recurrence (three buffers) or replaying the
        Lanczos recurrence and accumulating (four buffers).
    """
    if ritz not in ("clenshaw", "replay"):
        raise ValueError(f"ritz: expected 'clenshaw' or 'replay', got {ritz!r}")
    start, nrm2 = op.start()
    start_norm = math.sqrt(float(nrm2))
    if not start_norm > 0:
        raise ValueError(
            "fitness: the start vector g^(1/2) is zero (no genotype has positive weight)"
        )
    v, sv = start, 1.0 / start_norm
    u, su = op.zeros(), 0.0
    w = op.zeros()
    alphas: list[float] = []
    betas: list[float] = []
    beta_prev = 0.0
    anorm = 0.0
    theta, s, est, converged = 0.0, np.ones(1), math.inf, False
    for _ in range(max_steps):
        # u <- A (sv v) - beta_j (su u); alpha_j = <sv v, u>; u <- u - alpha_j sv v
        u, w, st = op.step(u, v, w, sv=sv, su=su, cu=-beta_prev)
        alpha = float(st[0])
        u, nrm2 = op.axpy(u, v, 1.0, sv, alpha)
        beta = math.sqrt(max(nrm2, 0.0))
        alphas.append(alpha)
        theta, s = _top_ritz(alphas, betas)
        est = beta * abs(s[-1])
        anorm = max(anorm, abs(alpha) + beta + beta_prev)
        if beta <= 1e-14 * anorm:  # invariant subspace: theta is exact
            converged, est = True, 0.0
            break
        if est <= tol * abs(theta):
            converged = True
            break
        betas.append(beta)
        # rotate: v_{j+1} = u / beta; the old v becomes "previous"
        u, v, su, sv, beta_prev = v, u, sv, 1.0 / beta, beta
    m = len(alphas)
    a_arr, b_arr = np.asarray(alphas), np.asarray(betas[: m - 1])
    if ritz == "clenshaw":
        y = _clenshaw(op, (u, v, w), a_arr, b_arr, s, start_norm)
    else:
        y = _replay(op, (u, v, w), a_arr, b_arr, s, start_norm)
    vec, spare = y
    return LanczosResult(
        theta, vec, spare, m, op.matvecs, float(est), converged, ritz, a_arr, b_arr
    )


def _clenshaw(op, buffers, alphas, betas, s, start_norm):
    """``y = sum_j s_j v_j`` by Clenshaw's recurrence on the Lanczos polynomials (3 buffers)."""
    m = len(alphas)
    b1, b2, w = buffers  # b1 = b_{j+1}, b2 = b_{j+2}
    b1 = op.zero(b1)
    # b_{m-1} = s_{m-1} v_1 (no operator application)
    b2, w, st = op.step(b2, b1, w, c1=s[m - 1] / start_norm, elementwise=True)
    b1, b2 = b2, b1
    for j in range(m - 2, -1, -1):
        cu = -betas[j] / betas[j + 1] if j + 2 <= m - 1 else 0.0
        b2, w, st = op.step(
            b2, b1, w, cA=1.0 / betas[j], cv=-alphas[j] / betas[j], cu=cu, c1=s[j] / start_norm
        )
        b1, b2 = b2, b1
    nrm = math.sqrt(float(st[1]))  # ||b_0||: stats of the last update
    y, _ = op.axpy(b1, b2, 1.0 / nrm, 0.0, 0.0)
    return y, (b2, w)


def _replay(op, buffers, alphas, betas, s, start_norm):
    """``y = sum_j s_j v_j`` by re-running the recurrence with the stored coefficients."""
    m = len(alphas)
    u, v, w = buffers
    y = op.zeros()
    u = op.zero(u)
    v = op.zero(v)
    v, w, _ = op.step(v, u, w, c1=1.0, elementwise=True)  # v = g^(1/2) (unnormalised start)
    sv, su, beta_prev = 1.0 / start_norm, 0.0, 0.0
    for j in range(m):
        y, _ = op.axpy(y, v, 1.0, sv, -s[j])
        if j == m - 1:
            break
        u, w, _ = op.step(u, v, w, sv=sv, su=su, cu=-beta_prev)
        u, _ = op.axpy(u, v, 1.0, sv, alphas[j])
        beta = betas[j]
        u, v, su, sv, beta_prev = v, u, sv, 1.0 / beta, beta
    y, nrm2 = op.axpy(y, v, 1.0, 0.0, 0.0)
    y, _ = op.axpy(y, v, 1.0 / math.sqrt(nrm2), 0.0, 0.0)
    return y, (v, w)
