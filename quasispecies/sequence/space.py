r"""The genotype space ``{0..k-1}^L`` with per-site copying errors, and its memory budget.

Genotypes are indexed lexicographically, ``index(g) = sum_i g_i k^(L-1-i)`` (site 0 most
significant; genotype 0, all letters 0, is the master sequence). A copy of site ``i`` is
wrong with probability ``mu_i``, the wrong letter uniform over the other ``k - 1``, so the
offspring of ``g`` are distributed as row ``g`` of

.. math::

    Q = \bigotimes_{i=0}^{L-1} q_i, \qquad q_i = (1-\mu_i)\, I + \frac{\mu_i}{k-1}\,(J - I)

(M. Eigen, *Naturwissenschaften* 58, 465 (1971)). ``Q`` is never formed: it is applied
through its Kronecker structure (:mod:`quasispecies.kernels.kronecker`) or lumped onto the
``L + 1`` Hamming classes (:mod:`quasispecies.kernels.hamming`).

Memory. A full-space model holds vectors of ``k**L`` float64. Whether they fit is decided
by an explicit budget: ``SequenceSpace(..., memory_limit=BYTES)``, or, by default
(``memory_limit=None``), what the operating system reports as available
(``MemAvailable`` in ``/proc/meminfo``, else physical memory), read at each check. The
budget refuses what does not fit (a ``ValueError`` naming ``memory_limit``) and decides
whether the full-space steady state may take a fourth working vector for its fallback
(see :meth:`quasispecies.sequence.GenotypeModel.steady_state`); nothing else depends on it.
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.hamming import hamming_distances, log_class_matrix, log_class_sizes
from quasispecies.kernels.kronecker import site_weights
from quasispecies.model.validate import as_float_array, check_nonneg_int

__all__ = ["FULL_SPACE_VECTORS", "SequenceSpace", "available_bytes", "human_bytes"]

#: Float64 vectors of length ``k**L`` a full-space steady state holds at once: the landscape
#: (``log f``) and the three Lanczos buffers (the returned population is one of them;
#: ``g^(1/2)`` is formed block by block inside the kernel, never stored). The rare fallback
#: that replays the recurrence for the Ritz vector needs one more.
FULL_SPACE_VECTORS = 4


def available_bytes() -> int:
    """Memory the OS says is available (``MemAvailable`` in ``/proc/meminfo``), else physical
    memory, else 16 GiB: the default budget of a :class:`SequenceSpace`."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 34


def human_bytes(nbytes: float) -> str:
    """``nbytes`` in decimal units with three significant digits (``"36.9 EB"``)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if nbytes < 1000 or unit == "EB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    raise AssertionError  # unreachable


class SequenceSpace:
    r"""Genotypes ``{0..alphabet-1}^length`` with per-site copying error ``mu`` (Eigen 1971).

    Parameters
    ----------
    length : int >= 1
        ``L``, the number of sites.
    mu : float or (L,) array in [0, 1]
        Per-site error rate: a copy of a site is wrong with probability ``mu_i``, the wrong
        letter uniform over the other ``k - 1``:
        ``Q = ⊗_i q_i``, ``q_i = (1 - mu_i) I + mu_i/(k-1) (J - I)``.
    alphabet : int >= 2
        ``k``. Genotypes are indexed lexicographically, ``index = sum_i g_i k^(L-1-i)``
        (site 0 most significant); genotype 0 (all letters 0) is the master sequence of
        :func:`~quasispecies.sequence.single_peak`.
    memory_limit : int or None
        Bytes that full-space (``k**L``) vectors may occupy. ``None`` (default): what the OS
        reports available (``MemAvailable``), read at each check (:func:`available_bytes`).

    Nothing of size ``k**L`` is allocated here: a space with ``L = 1000`` is fine for the
    class models; full-space models check their vectors against :meth:`memory_budget`.
    """

    def __init__(self, length: int, mu, alphabet: int = 2, *, memory_limit: int | None = None):
        self.length = check_nonneg_int(length, "length", 1)
        self.alphabet = check_nonneg_int(alphabet, "alphabet", 2)
        m = as_float_array(mu, "mu", ndim=(0, 1))
        if m.ndim == 1 and m.shape[0] != self.length:
            raise ValueError(
                f"mu: expected a scalar or {self.length} per-site rates, got {m.shape[0]}"
            )
        if not np.isfinite(m).all():
            raise ValueError("mu: error rates must be finite")
        if (m < 0).any() or (m > 1).any():
            bad = float(m[(m < 0) | (m > 1)].ravel()[0])
            raise ValueError(f"mu: error rates must lie in [0, 1], got {bad!r}")
        self.mu = np.broadcast_to(m, (self.length,)).astype(np.float64)
        self.mu.setflags(write=False)
        if memory_limit is not None:
            memory_limit = check_nonneg_int(memory_limit, "memory_limit", 0)
        self.memory_limit = memory_limit
        self._log_M: np.ndarray | None = None

    # ---------------------------------------------------------------- properties
    @property
    def size(self) -> int:
        """``k**L``, the number of genotypes (a Python int: exact for any ``L``)."""
        return self.alphabet**self.length

    @property
    def uniform(self) -> bool:
        """Whether every site has the same error rate (needed for Hamming-class lumping)."""
        return bool((self.mu == self.mu[0]).all())

    @property
    def irreducible(self) -> bool:
        """``Q`` (hence ``W_T``) is irreducible: every ``mu_i > 0``, and ``mu_i < 1`` when ``k = 2``."""
        ok = (self.mu > 0).all()
        if self.alphabet == 2:
            ok = ok and (self.mu < 1).all()
        return bool(ok)

    def __repr__(self) -> str:
        mu = f"{self.mu[0]:g}" if self.uniform else f"array of {self.length}"
        return f"SequenceSpace(length={self.length}, mu={mu}, alphabet={self.alphabet})"

    # ------------------------------------------------------------------ operators
    def site_weights(self) -> np.ndarray:
        """``(L, 2)``: ``[1 - mu_i, mu_i/(k-1)]``, see :func:`quasispecies.kernels.kronecker.site_weights`."""
        return site_weights(self.mu, self.alphabet)

    def mutate(self, x) -> np.ndarray:
        r"""``x Q`` (row vector ``x`` over all ``k**L`` genotypes, lexicographic order) through
        the Kronecker structure, ``O(L k^(L+1))``: :func:`quasispecies.kernels.kronecker.mutate`."""
        from quasispecies.kernels.kronecker import mutate

        x = as_float_array(x, "x", ndim=1)
        if x.shape[0] != self.size:
            raise ValueError(f"x: expected length {self.size}, got {x.shape[0]}")
        return np.asarray(mutate(jnp.asarray(x), jnp.asarray(self.site_weights()), self.alphabet))

    def mutation_spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Eigenvalues of ``Q`` and their multiplicities (one error rate).

        ``q`` has eigenvalue 1 (the all-ones vector) and ``1 - mu k/(k-1)`` (``k - 1`` times),
        so ``Q`` has :math:`e_d = (1 - \mu k/(k-1))^d` with multiplicity
        :math:`\binom{L}{d}(k-1)^d`, ``d = 0..L`` (for ``k = 2``: :math:`(1-2\mu)^d`, the
        Walsh functions of order ``d``). Returns ``(e, multiplicity)`` (multiplicities as
        float64, exact up to ``2**53``).
        """
        if not self.uniform:
            raise ValueError("mu: mutation_spectrum needs one error rate for every site")
        k, L, mu = self.alphabet, self.length, float(self.mu[0])
        d = np.arange(L + 1)
        e = (1.0 - mu * k / (k - 1)) ** d
        return e, np.exp(log_class_sizes(L, k))

    def log_class_matrix(self) -> np.ndarray:
        r"""``log M``, the exact ``(L+1) x (L+1)`` Hamming-class mutation matrix (cached):
        ``M[d, e]`` is the probability that a copy at distance ``d`` from the master is at
        distance ``e`` (:func:`quasispecies.kernels.hamming.log_class_matrix`)."""
        if not self.uniform:
            raise ValueError(
                "mu: Hamming classes lump exactly only when every site has the same rate"
            )
        if self._log_M is None:
            self._log_M = log_class_matrix(self.length, float(self.mu[0]), self.alphabet)
            self._log_M.setflags(write=False)
        return self._log_M

    def log_class_sizes(self) -> np.ndarray:
        r"""``log n_d``: ``n_d = C(L, d) (k-1)^d`` genotypes at Hamming distance ``d``."""
        return log_class_sizes(self.length, self.alphabet)

    def hamming_distances(self, master: int = 0) -> np.ndarray:
        """Distance of every genotype (lexicographic order) to ``master``."""
        self.check_memory(1, "hamming_distances")
        return hamming_distances(self.length, self.alphabet, master)

    # -------------------------------------------------------------------- memory
    def full_space_bytes(self, vectors: int = FULL_SPACE_VECTORS) -> int:
        """Bytes of ``vectors`` float64 vectors over all ``k**L`` genotypes."""
        return 8 * vectors * self.size

    def memory_budget(self) -> tuple[int, str]:
        """``(bytes, where the figure comes from)``: ``memory_limit`` if set, else the probe."""
        if self.memory_limit is not None:
            return self.memory_limit, f"memory_limit={self.memory_limit}"
        return available_bytes(), "available per /proc/meminfo; set memory_limit= to override"

    def fits(self, vectors: int = FULL_SPACE_VECTORS) -> bool:
        """Whether ``vectors`` genotype vectors fit in :meth:`memory_budget`."""
        return self.full_space_bytes(vectors) <= self.memory_budget()[0]

    def check_memory(self, vectors: int = FULL_SPACE_VECTORS, what: str = "a full-space model"):
        """Refuse (``ValueError``) when ``vectors`` genotype vectors exceed :meth:`memory_budget`."""
        need = self.full_space_bytes(vectors)
        have, source = self.memory_budget()
        if need > have:
            raise ValueError(
                f"length: {what} on {self.alphabet}^{self.length} = {self.size:.4g} genotypes needs "
                f"{human_bytes(need)} ({vectors} float64 vectors of {human_bytes(8 * self.size)}), "
                f"more than the {human_bytes(have)} budget ({source}); use a "
                "permutation-symmetric landscape with one error rate (Hamming-class model, "
                "lumped=True), a shorter length, or SequenceSpace(..., memory_limit=BYTES)"
            )
