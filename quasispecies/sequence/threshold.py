r"""Eigen's error threshold: single-peak quasispecies against the error rate.

Single peak (Swetina & Schuster 1982): master genotype 0 with fitness ``sigma``, every other
genotype 1, one error rate ``mu`` per site; the exact ``L + 1``-class model
(:class:`~quasispecies.sequence.ClassModel`). Neglecting back-mutation the master frequency
is ``x_0 = (sigma (1-mu)^L - 1)/(sigma - 1)``, which vanishes at the error threshold
``mu_c = 1 - sigma^(-1/L) ≈ ln(sigma)/L`` (M. Eigen, *Naturwissenschaften* 58, 465 (1971);
M. Eigen & P. Schuster, *The Hypercycle* (1979)). In the limit ``L -> inf``, ``L mu -> a``
the class frequencies tend to ``(sigma e^-a - 1) a^d/d! sum_{i>=1} i^d sigma^-i``
(Cerf & Dalmau).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from quasispecies.model.validate import as_float_array, check_nonneg_int
from quasispecies.sequence.common import one_temperature
from quasispecies.sequence.landscapes import positive_scalar, single_peak
from quasispecies.sequence.space import SequenceSpace

__all__ = ["ThresholdCurves", "error_threshold"]


class ThresholdCurves(NamedTuple):
    r"""Single-peak quasispecies against the error rate, for several lengths (Eigen &
    Schuster 1979): the result of :func:`error_threshold`.

    Attributes
    ----------
    lengths : (nL,) int
    mu : (M,) error rates
    sigma : float, master fitness (others 1)
    alphabet, temperature
    master_frequency : (nL, M) master-class frequency ``x_0``
    mean_fitness : (nL, M) ``sum_d x_d f_d``, the population's mean fitness (``= lambda`` at ``T = 1``)
    log_growth : (nL, M) ``log lambda_T``
    class_frequencies : tuple of nL arrays (M, L+1)
    threshold : (nL,) ``1 - sigma^(-1/L)`` (exact without back-mutation)
    threshold_approx : (nL,) ``ln(sigma) / L``
    master_frequency_no_back : (nL, M) ``max(0, (sigma (1-mu)^L - 1) / (sigma - 1))``
    residual : (nL, M) relative residual of each steady state
    """

    lengths: np.ndarray
    mu: np.ndarray
    sigma: float
    alphabet: int
    temperature: float
    master_frequency: np.ndarray
    mean_fitness: np.ndarray
    log_growth: np.ndarray
    class_frequencies: tuple
    threshold: np.ndarray
    threshold_approx: np.ndarray
    master_frequency_no_back: np.ndarray
    residual: np.ndarray


def error_threshold(
    length, sigma, mu, *, alphabet: int = 2, T: float = 1.0, progress: bool = False
) -> ThresholdCurves:
    r"""Eigen's error threshold: single-peak steady states over ``mu`` for each length.

    Parameters
    ----------
    length : int or sequence of int
        Sequence length(s) ``L``; each uses the exact ``L + 1``-class model.
    sigma : float > 1
        Master fitness (every other genotype has fitness 1).
    mu : (M,) array of error rates in [0, 1]
    alphabet : int
    T : float
        Temperature (``f -> f^(1/T)``; the single peak at ``T`` is the peak
        ``sigma^(1/T)`` at ``T = 1``).
    progress : bool
        Show a ``tqdm`` progress bar.

    Returns
    -------
    :class:`ThresholdCurves`. Each steady state is the left Perron vector of
    ``diag(f_d^(1/T)) M`` on the ``L + 1`` Hamming classes (:class:`~quasispecies.sequence.ClassModel`).
    The no-back-mutation approximation ``x_0 = (sigma Q - 1)/(sigma - 1)``,
    ``Q = (1 - mu)^L``, vanishes at ``mu_c = 1 - sigma^(-1/L) ≈ ln(sigma)/L``; both
    thresholds are returned. M. Eigen, *Naturwissenschaften* 58, 465 (1971); M. Eigen &
    P. Schuster, *The Hypercycle* (Springer, 1979); Swetina & Schuster (1982).
    """
    lengths = np.atleast_1d(np.asarray(length))
    if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"length: expected an integer or a list of integers, got {length!r}")
    lengths = np.array([check_nonneg_int(int(L_), "length", 1) for L_ in lengths])
    s = positive_scalar(sigma, "sigma")
    if not s > 1:
        raise ValueError(
            f"sigma: the error threshold needs a master fitter than the rest, sigma > 1; got {s!r}"
        )
    mus = as_float_array(mu, "mu", ndim=(0, 1)).ravel()
    if mus.size == 0:
        raise ValueError("mu: no error rates given")
    T = one_temperature(T)
    it = [(i, int(L_), j, float(m)) for i, L_ in enumerate(lengths) for j, m in enumerate(mus)]
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="error threshold", unit="steady state")
    nL, M = lengths.size, mus.size
    x0 = np.zeros((nL, M))
    mf = np.zeros((nL, M))
    lg = np.zeros((nL, M))
    res = np.zeros((nL, M))
    cls = [np.zeros((M, int(L_) + 1)) for L_ in lengths]
    for i, L_, j, m in it:
        model = single_peak(SequenceSpace(L_, m, alphabet), s)
        ss = model.steady_state(T)
        x0[i, j] = ss.population[0]
        mf[i, j] = model.mean_fitness(ss.population)
        lg[i, j] = ss.log_growth
        res[i, j] = ss.residual
        cls[i][j] = ss.population
    Lf = lengths.astype(float)
    thr = 1.0 - s ** (-1.0 / Lf)
    approx = math.log(s) / Lf
    no_back = np.maximum(0.0, (s * (1.0 - mus[None, :]) ** Lf[:, None] - 1.0) / (s - 1.0))
    return ThresholdCurves(
        lengths=lengths,
        mu=mus,
        sigma=s,
        alphabet=int(alphabet),
        temperature=T,
        master_frequency=x0,
        mean_fitness=mf,
        log_growth=lg,
        class_frequencies=tuple(cls),
        threshold=thr,
        threshold_approx=approx,
        master_frequency_no_back=no_back,
        residual=res,
    )
