"""Brute-force references for Eigen's model on sequence space (dense matrices, NumPy only).

Written independently of :mod:`quasispecies.kernels.kronecker` / :mod:`quasispecies.kernels.hamming`: ``Q`` is
built with ``np.kron`` of the per-site matrices, Hamming distances by ``itertools.product``, and
the Perron pair by ``numpy.linalg.eig``.
"""

from __future__ import annotations

import itertools

import numpy as np


def site_matrix(mu: float, k: int) -> np.ndarray:
    """``q = (1 - mu) I + mu/(k-1) (J - I)``: one site's copying matrix."""
    return (1.0 - mu) * np.eye(k) + mu / (k - 1) * (np.ones((k, k)) - np.eye(k))


def dense_Q(mus, k: int) -> np.ndarray:
    """``Q = q_0 ⊗ q_1 ⊗ ... ⊗ q_{L-1}`` (site 0 most significant, lexicographic order)."""
    Q = np.ones((1, 1))
    for mu in mus:
        Q = np.kron(Q, site_matrix(float(mu), k))
    return Q


def genotypes(L: int, k: int) -> np.ndarray:
    """``(k**L, L)`` letters of every genotype in lexicographic order."""
    return np.array(list(itertools.product(range(k), repeat=L)), dtype=int).reshape(k**L, L)


def hamming_to_master(L: int, k: int) -> np.ndarray:
    return (genotypes(L, k) != 0).sum(axis=1)


def dense_perron(W: np.ndarray) -> tuple[float, np.ndarray]:
    """Perron root and left Perron vector (summing to 1) of a non-negative ``W`` by ``eig``."""
    vals, vecs = np.linalg.eig(W.T)
    i = int(np.argmax(vals.real))
    x = vecs[:, i].real
    x = x / x.sum()
    return float(vals[i].real), x


def numpy_kron_matvec(x: np.ndarray, mus, k: int) -> np.ndarray:
    """``x Q`` (= ``Q x``) site by site with reshape + ``tensordot``: ``O(L k^(L+1))``."""
    L = len(mus)
    y = np.asarray(x, dtype=np.float64).reshape((k,) * L)
    for i, mu in enumerate(mus):
        y = np.moveaxis(np.tensordot(site_matrix(float(mu), k), y, axes=([1], [i])), 0, i)
    return y.reshape(-1)
