"""Brute-force references for Eigen's model on sequence space (dense matrices, NumPy; mpmath).

Written independently of :mod:`quasispecies.kernels.kronecker` / :mod:`quasispecies.kernels.hamming`: ``Q`` is
built with ``np.kron`` of the per-site matrices, Hamming distances by ``itertools.product``, and
the Perron pair by ``numpy.linalg.eig``; tail class frequencies by 50-digit ``mpmath`` power
iteration. The reference numbers of ``shared/reference/eigen_single_peak.json`` are copied
below (the tests never read that file).
"""

from __future__ import annotations

import itertools

import numpy as np

# Copied from shared/reference/eigen_single_peak.json (binary alphabet, W = Q diag(f),
# lambda = Perron root = mean fitness at equilibrium, x0 = master frequency).
# key "L1_closed_form": lambda = [(1-mu)(sigma+1) + sqrt((1-mu)^2 (sigma-1)^2 + 4 sigma mu^2)] / 2
REF_L1 = [
    {"sigma": 2, "mu": 0.1, "lambda": 1.8216990566, "population": [0.8216990566, 0.1783009434]},
    {"sigma": 10, "mu": 0.01, "lambda": 9.900112232},
]
# key "L4"
REF_L4 = [{"sigma": 2, "mu": 0.05, "lambda": 1.647498640062}]
# key "L10"
REF_L10 = [
    {"sigma": 2, "mu": 0.01, "lambda": 1.810615228038},
    {"sigma": 2, "mu": 0.05, "lambda": 1.233970361109},
    {"sigma": 2, "mu": 0.1, "lambda": 1.002528016491},
    {"sigma": 10, "mu": 0.01, "lambda": 9.044846701094},
    {
        "sigma": 10,
        "mu": 0.05,
        "lambda": 6.006135109466,
        "class_frequencies_k0_to_k3": [0.556237, 0.326193, 0.094886, 0.019109],
    },
    {"sigma": 10, "mu": 0.1, "lambda": 3.538793353521},
]
# key "L50_sigma10" (note: threshold 1 - sigma^(-1/L) = 0.0450074, ln(sigma)/L = 0.0460517)
REF_L50 = [
    {"mu": 0.01, "lambda": 6.0535026655, "x0": 0.5615},
    {"mu": 0.02, "lambda": 3.6502512574, "x0": 0.29447},
    {"mu": 0.045, "lambda": 1.0138158406, "x0": 0.001535},
]
REF_L50_THRESHOLD, REF_L50_APPROX = 0.0450074, 0.0460517
# key "L20_sigma10_mu0.02_full_space"
REF_L20_LAMBDA = 6.6822945273
# key "cerf_dalmau_limit": sigma = 10, a = L mu = 1
REF_CD_LIMIT = [0.297644, 0.330715, 0.202104, 0.095948, 0.041793]
REF_CD_L300 = [0.297114, 0.331368, 0.202669, 0.096036, 0.041644]
# --------------------------------------------------------------------------------------


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


def hamming_lumped_matrix(L: int, k: int, mu: float) -> np.ndarray:
    """``M[d, e] = sum_{h: d(h) = e} Q[g, h]`` for a representative ``g`` of class ``d``,
    from the dense ``np.kron`` ``Q`` (the Hamming-class mutation matrix, by brute force)."""
    Q = dense_Q([mu] * L, k)
    d = hamming_to_master(L, k)
    reps = [int(np.flatnonzero(d == c)[0]) for c in range(L + 1)]
    return np.stack([np.bincount(d, weights=Q[g], minlength=L + 1) for g in reps])


def dense_class_perron(L: int, k: int, mu: float, f_classes) -> tuple[float, np.ndarray]:
    """Perron root of ``diag(f) Q`` over all genotypes (``f(g) = f_classes[d(g)]``) and its
    left Perron vector summed by Hamming class: the class model by brute force."""
    d = hamming_to_master(L, k)
    f = np.asarray(f_classes)[d]
    rho, x = dense_perron(f[:, None] * dense_Q([mu] * L, k))
    return rho, np.bincount(d, weights=x, minlength=L + 1)


def mp_single_peak_classes(L: int, mu: float, sigma: float, steps: int = 200, dps: int = 50):
    """Single-peak class frequencies by ``steps`` rounds of power iteration in ``dps``-digit
    ``mpmath`` arithmetic on the binary class matrix (built term by term), as floats."""
    import mpmath

    with mpmath.workdps(dps):
        mu_m = mpmath.mpf(mu)
        M = mpmath.matrix(L + 1, L + 1)
        for d in range(L + 1):
            for e in range(L + 1):
                tot = mpmath.mpf(0)
                for i in range(d + 1):
                    j = e - d + i
                    if 0 <= j <= L - d:
                        tot += (
                            mpmath.binomial(d, i)
                            * mu_m**i
                            * (1 - mu_m) ** (d - i)
                            * mpmath.binomial(L - d, j)
                            * mu_m**j
                            * (1 - mu_m) ** (L - d - j)
                        )
                M[d, e] = tot
        f = [mpmath.mpf(sigma)] + [mpmath.mpf(1)] * L
        x = mpmath.matrix([[mpmath.mpf(1) / (L + 1)] * (L + 1)])
        for _ in range(steps):
            x = mpmath.matrix([[f[d] * x[0, d] for d in range(L + 1)]]) * M
            x = x / sum(x[0, e] for e in range(L + 1))
        return np.array([float(x[0, e]) for e in range(L + 1)])


def additive_fitness(s: np.ndarray, base: float, L: int, k: int) -> np.ndarray:
    """``f(g) = base + sum_i s[i, g_i]`` over all genotypes (``itertools`` order)."""
    return base + s[np.arange(L), genotypes(L, k)].sum(axis=1)


def multiplicative_fitness(w: np.ndarray, base: float, L: int, k: int) -> np.ndarray:
    """``f(g) = base prod_i w[i, g_i]`` over all genotypes."""
    return base * w[np.arange(L), genotypes(L, k)].prod(axis=1)


def nk_fitness(L: int, k: int, K: int, seed: int) -> np.ndarray:
    """Kauffman's NK landscape with adjacent neighbourhoods, evaluated genotype by genotype:
    ``f(g) = (1/L) sum_i F_i(g_i, g_{i+1}, ..., g_{i+K})`` (indices mod ``L``), the tables
    ``F_i`` drawn as ``1 - default_rng(seed).random((L, k**(K+1)))``."""
    G = genotypes(L, k)
    tables = 1.0 - np.random.default_rng(seed).random((L, k ** (K + 1)))
    f = np.zeros(k**L)
    for i in range(L):
        key = np.zeros(k**L, dtype=int)
        for m in range(K + 1):
            key = key * k + G[:, (i + m) % L]
        f += tables[i, key]
    return f / L
