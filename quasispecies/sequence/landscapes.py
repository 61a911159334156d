r"""Fitness landscapes on sequence space: the builders of Eigen's models.

A landscape ``f(g) > 0`` over genotypes ``g in {0..k-1}^L`` (lexicographic order,
``index = sum_i g_i k^(L-1-i)``) gives the replication operator ``W_T = diag(f^(1/T)) Q``,
``Q = ⊗_i q_i``, ``q_i = (1-mu_i) I + mu_i/(k-1) (J - I)``; row vectors, ``x' ∝ x W_T``
(M. Eigen, *Naturwissenschaften* 58, 465 (1971)). Each builder returns a
:class:`~quasispecies.sequence.GenotypeModel` (all ``k**L`` genotypes), or, when the
landscape depends on the Hamming distance to genotype 0 alone and ``mu`` is the same at
every site, the exact :class:`~quasispecies.sequence.ClassModel` on ``L + 1`` classes.
``lumped=None`` (default) makes that choice from the landscape and the space;
``lumped=True`` / ``False`` forces it (``True`` refuses when lumping is not exact).
"""

from __future__ import annotations

import math

import numpy as np

from quasispecies.model.validate import as_float_array, check_nonneg_int
from quasispecies.sequence.classes import ClassModel
from quasispecies.sequence.genotype import GenotypeModel
from quasispecies.sequence.space import FULL_SPACE_VECTORS, SequenceSpace

__all__ = [
    "additive",
    "class_landscape",
    "fitness_landscape",
    "multiplicative",
    "nk_landscape",
    "positive_scalar",
    "single_peak",
]


def _check_space(space) -> SequenceSpace:
    if not isinstance(space, SequenceSpace):
        raise ValueError(
            f"space: expected a quasispecies.SequenceSpace, got {type(space).__name__}"
        )
    return space


def positive_scalar(x, name: str) -> float:
    """``x`` as a float, refused (``ValueError`` naming ``name``) unless positive and finite."""
    arr = as_float_array(x, name, ndim=0)
    v = float(arr)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: must be a positive finite number, got {v!r}")
    return v


def fitness_landscape(space, f) -> GenotypeModel:
    r"""A model for any landscape: ``f`` of shape ``(alphabet**length,)``, positive, finite.

    Genotypes in lexicographic order (site 0 most significant): ``f[i]`` is the fitness of
    the genotype whose base-``k`` digits are ``i``, ``i = sum_j g_j k^(L-1-j)``. Returns the
    :class:`~quasispecies.sequence.GenotypeModel` of ``W_T = diag(f^(1/T)) Q`` (row vectors,
    ``x' ∝ x W_T``; Eigen 1971). Refused when its vectors exceed the space's memory budget.
    """
    space = _check_space(space)
    space.check_memory(FULL_SPACE_VECTORS, "fitness_landscape")
    arr = as_float_array(f, "f", ndim=1)
    if arr.shape[0] != space.size:
        raise ValueError(
            f"f: expected {space.size} fitness values (alphabet**length = "
            f"{space.alphabet}**{space.length}, lexicographic order), got {arr.shape[0]}"
        )
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"f: fitness must be finite; f[{i}] = {arr[i]!r}")
    if (arr <= 0).any():
        i = int(np.flatnonzero(arr <= 0)[0])
        raise ValueError(f"f: fitness must be positive; f[{i}] = {arr[i]!r}")
    return GenotypeModel(space, np.log(arr), "fitness_landscape")


def class_landscape(space, f_classes, description: str = "class_landscape") -> ClassModel:
    r"""A permutation-symmetric landscape: ``f(g) = f_classes[d(g)]``, ``d`` the Hamming
    distance to genotype 0, ``d = 0..L``.

    Returns the exact :class:`~quasispecies.sequence.ClassModel`,
    ``y' ∝ y diag(f_d^(1/T)) M`` on the ``L + 1`` classes (needs one error rate; any ``L``).
    """
    space = _check_space(space)
    arr = as_float_array(f_classes, "f_classes", ndim=1)
    if arr.shape[0] != space.length + 1:
        raise ValueError(
            f"f_classes: expected {space.length + 1} values (d = 0..L), got {arr.shape[0]}"
        )
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise ValueError("f_classes: fitness must be positive and finite")
    return ClassModel(space, np.log(arr), description)


def _lump(space: SequenceSpace, lumped, symmetric: bool) -> bool:
    if lumped is None:
        return symmetric and space.uniform
    if lumped and not space.uniform:
        raise ValueError(
            "lumped: per-site error rates differ, so Hamming classes do not lump exactly"
        )
    if lumped and not symmetric:
        raise ValueError("lumped: the landscape is not a function of the Hamming distance alone")
    return bool(lumped)


def single_peak(space, sigma, *, lumped: bool | None = None):
    r"""Swetina–Schuster single peak: master (genotype 0) fitness ``sigma``, every other 1.

    ``f(g) = sigma`` if ``g = 0`` else 1, ``W_T = diag(f^(1/T)) Q`` (row vectors). With one
    error rate this is the exact :class:`ClassModel` (``population`` over the ``L + 1``
    classes, index 0 = master class; any ``L``); with per-site rates (or ``lumped=False``) a
    :class:`GenotypeModel`. Swetina & Schuster, *Biophys. Chem.* 16, 329 (1982); Eigen 1971.
    """
    space = _check_space(space)
    s = positive_scalar(sigma, "sigma")
    if _lump(space, lumped, True):
        lf = np.zeros(space.length + 1)
        lf[0] = math.log(s)
        return ClassModel(space, lf, f"single_peak(sigma={s:g})")
    space.check_memory(FULL_SPACE_VECTORS, "single_peak over all genotypes")
    lf = np.zeros(space.size)
    lf[0] = math.log(s)
    return GenotypeModel(space, lf, f"single_peak(sigma={s:g})")


def _site_table(space: SequenceSpace, s, name: str, neutral: float) -> tuple[np.ndarray, bool]:
    """Per-site, per-letter table ``(L, k)`` from a scalar, an ``(L,)`` or an ``(L, k)`` array.

    A scalar or ``(L,)`` value applies to every non-master letter (letter 0 gets ``neutral``).
    Returns the table and whether it is a function of the Hamming distance alone.
    """
    L, k = space.length, space.alphabet
    arr = as_float_array(s, name, ndim=(0, 1, 2))
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: must be finite")
    if arr.ndim == 0:
        table = np.full((L, k), float(arr))
        table[:, 0] = neutral
    elif arr.ndim == 1:
        if arr.shape[0] != L:
            raise ValueError(f"{name}: expected {L} per-site values, got {arr.shape[0]}")
        table = np.repeat(arr[:, None], k, axis=1)
        table[:, 0] = neutral
    else:
        if arr.shape != (L, k):
            raise ValueError(f"{name}: expected shape {(L, k)} (site, letter), got {arr.shape}")
        table = arr.copy()
    symmetric = bool((table[:, 0] == table[0, 0]).all() and (table[:, 1:] == table[0, 1]).all())
    return table, symmetric


def _kron_sum(table: np.ndarray) -> np.ndarray:
    """``out[g] = sum_i table[i, g_i]`` over all genotypes (lexicographic)."""
    out = np.zeros(1)
    for row in table:
        out = (out[:, None] + row[None, :]).ravel()
    return out


def additive(space, s, base: float = 1.0, *, lumped: bool | None = None):
    r"""Additive landscape :math:`f(g) = \text{base} + \sum_i s_i(g_i)`.

    ``s``: a scalar (every non-master letter at every site adds ``s``: ``f = base + s d``),
    an ``(L,)`` array (per site, for any non-master letter) or an ``(L, k)`` table (letter
    ``a`` at site ``i`` adds ``s[i, a]``). Fitness must stay positive. Lumped onto classes
    automatically when it depends on the Hamming distance alone and ``mu`` is uniform.
    """
    space = _check_space(space)
    b = as_float_array(base, "base", ndim=0)
    if not np.isfinite(b):
        raise ValueError("base: must be finite")
    table, sym = _site_table(space, s, "s", 0.0)
    fmin = float(b) + table.min(axis=1).sum()
    if not fmin > 0:
        raise ValueError(
            f"s: additive fitness must stay positive, but the least fit genotype has f = {fmin!r}"
        )
    if _lump(space, lumped, sym):
        d = np.arange(space.length + 1)
        f = float(b) + (space.length - d) * table[0, 0] + d * table[0, 1]
        return ClassModel(space, np.log(f), "additive")
    space.check_memory(FULL_SPACE_VECTORS, "additive over all genotypes")
    return GenotypeModel(space, np.log(float(b) + _kron_sum(table)), "additive")


def multiplicative(space, w, base: float = 1.0, *, lumped: bool | None = None):
    r"""Multiplicative landscape :math:`f(g) = \text{base} \prod_i w_i(g_i)`.

    ``w``: a scalar (each non-master letter multiplies fitness by ``w``: ``f = base w^d``),
    an ``(L,)`` array (per site) or an ``(L, k)`` table; all positive. Computed as
    ``log f = log base + sum_i log w_i(g_i)``. Lumped as :func:`additive`.
    """
    space = _check_space(space)
    b = positive_scalar(base, "base")
    table, sym = _site_table(space, w, "w", 1.0)
    if (table <= 0).any():
        raise ValueError("w: multiplicative factors must be positive")
    lt = np.log(table)
    if _lump(space, lumped, sym):
        d = np.arange(space.length + 1)
        return ClassModel(
            space, math.log(b) + (space.length - d) * lt[0, 0] + d * lt[0, 1], "multiplicative"
        )
    space.check_memory(FULL_SPACE_VECTORS, "multiplicative over all genotypes")
    return GenotypeModel(space, math.log(b) + _kron_sum(lt), "multiplicative")


def nk_landscape(space, K: int, *, seed: int = 0, neighbourhood: str = "adjacent") -> GenotypeModel:
    r"""Kauffman's NK landscape: :math:`f(g) = \frac1L \sum_i F_i(g_i, g_{n_{i1}}, \dots, g_{n_{iK}})`.

    Each site's contribution depends on itself and ``K`` other sites (``"adjacent"``: the
    next ``K`` sites, cyclically; ``"random"``: ``K`` distinct random sites); the tables
    :math:`F_i` hold i.i.d. uniform values in ``(0, 1]`` drawn from ``numpy`` with ``seed``.
    ``K = 0`` is additive, ``K = L - 1`` fully random. Kauffman & Weinberger,
    *J. Theor. Biol.* 141 (1989).
    """
    space = _check_space(space)
    L, k = space.length, space.alphabet
    K = check_nonneg_int(K, "K", 0)
    if K > L - 1:
        raise ValueError(f"K: must be <= length - 1 = {L - 1}, got {K}")
    if neighbourhood not in ("adjacent", "random"):
        raise ValueError(f"neighbourhood: expected 'adjacent' or 'random', got {neighbourhood!r}")
    space.check_memory(FULL_SPACE_VECTORS, "nk_landscape")
    rng = np.random.default_rng(seed)
    if neighbourhood == "adjacent":
        nb = np.array([[(i + m) % L for m in range(K + 1)] for i in range(L)])
    else:
        nb = np.array(
            [
                [i, *rng.choice([j for j in range(L) if j != i], size=K, replace=False)]
                for i in range(L)
            ]
        )
    tables = 1.0 - rng.random((L, k ** (K + 1)))  # (0, 1]
    N = space.size
    f = np.zeros(N)
    chunk = 1 << 18
    powers = k ** np.arange(L - 1, -1, -1, dtype=np.int64)
    for s in range(0, N, chunk):
        idx = np.arange(s, min(N, s + chunk), dtype=np.int64)
        digits = (idx[:, None] // powers[None, :]) % k
        acc = np.zeros(idx.size)
        for i in range(L):
            key = np.zeros(idx.size, dtype=np.int64)
            for m in range(K + 1):
                key = key * k + digits[:, nb[i, m]]
            acc += tables[i, key]
        f[s : s + idx.size] = acc / L
    return GenotypeModel(space, np.log(f), f"nk_landscape(K={K}, seed={seed}, {neighbourhood})")
