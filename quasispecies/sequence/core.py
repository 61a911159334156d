r"""Sequence spaces, fitness landscapes and Eigen's error threshold.

Eigen's quasispecies (Eigen 1971): genotypes :math:`g \in \{0..k-1\}^L` replicate with
fitness :math:`f(g) > 0`; each copied site is wrong with probability :math:`\mu_i`
(uniform over the other :math:`k-1` letters), so offspring of :math:`g` are distributed as
row :math:`g` of :math:`Q = \bigotimes_i q_i` (:mod:`quasispecies.kernels.kronecker`). At temperature
:math:`T` fitness enters as :math:`f^{1/T}` (``log f`` plays the role of the reward ``R``;
``T = 1`` is Eigen's model). **Row-vector convention**, :math:`x` the population (a row):

.. math::

    x_{t+1} \propto x_t W_T, \qquad W_T = \mathrm{diag}(f^{1/T})\, Q,
    \qquad W_T[g, h] = f(g)^{1/T} Q[g, h],

each genotype replicates at rate :math:`f^{1/T}`, then its copies mutate. The quasispecies is
the left Perron vector, :math:`x W_T = \lambda x`. Written as columns this is the textbook
:math:`\dot x = Q\,\mathrm{diag}(f)\,x - \bar f x` with fixed point :math:`Q F x = \lambda x`
(the ``W = Q diag(f)`` of the reference tables): the same :math:`x` and :math:`\lambda`.
:math:`x` is the distribution of newborn genotypes, and at ``T = 1`` the Perron root is the
mean fitness, :math:`\lambda = \sum_g x_g f_g`. For the single peak (master fitness
:math:`\sigma`, all others 1) this gives the identity :math:`x_0 = (\lambda - 1)/(\sigma - 1)`.

Models (both work with :func:`quasispecies.evolve` and :func:`quasispecies.steady_state`):

* :class:`GenotypeModel` — all :math:`k^L` genotypes; steady state by basis-free Lanczos on
  :math:`G^{1/2} Q G^{1/2}` (:mod:`quasispecies.kernels.lanczos`), three vectors of memory.
* :class:`ClassModel` — the exact lumping onto the :math:`L+1` Hamming classes
  (:mod:`quasispecies.kernels.hamming`) for permutation-symmetric landscapes with one error rate;
  ``population`` is over classes, index 0 the master class. ``L = 1000`` is fine.

Error threshold (Eigen 1971; Swetina & Schuster 1982): for the single peak, the master class
is lost near :math:`\mu_c = 1 - \sigma^{-1/L}` (exact when back-mutation is neglected,
where :math:`x_0 = (\sigma (1-\mu)^L - 1)/(\sigma - 1)`), :math:`\approx \ln\sigma / L`
for large ``L``. In the limit :math:`L \to \infty`, :math:`L\mu \to a` the class frequencies
tend to :math:`(\sigma e^{-a} - 1)\,\frac{a^d}{d!} \sum_{i \ge 1} i^d \sigma^{-i}`
(Cerf & Dalmau).
"""

from __future__ import annotations

import math
import os
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.hamming import (
    class_perron,
    hamming_distances,
    log_class_matrix,
    log_class_sizes,
)
from quasispecies.kernels.kronecker import (
    SymmetrisedOperator,
    log_mutate,
    log_selection,
    log_site_weights,
    site_weights,
)
from quasispecies.kernels.lanczos import top_eigenpair
from quasispecies.model.mdp import initial_population
from quasispecies.model.results import SteadyState, stack_results
from quasispecies.model.validate import as_float_array, check_nonneg_int, check_temperature

__all__ = [
    "ClassModel",
    "GenotypeModel",
    "SequenceSpace",
    "ThresholdCurves",
    "additive",
    "class_landscape",
    "error_threshold",
    "fitness_landscape",
    "multiplicative",
    "nk_landscape",
    "single_peak",
]

#: A full-space steady state counts as converged only when the true relative residual
#: ``||x W - lambda x||_1 / lambda`` of the returned population is at most this (besides the
#: Lanczos estimate meeting ``tol``); otherwise the Ritz vector is recomputed by replaying the
#: recurrence, and if that fails too the result says ``converged=False``.
RESIDUAL_OK = 1e-8

#: Float64 vectors of length ``k**L`` a full-space steady state holds at once: the landscape
#: (``log f``) and the three Lanczos buffers (the returned population is one of them;
#: ``g^(1/2)`` is formed block by block inside the kernel, never stored). The rare fallback
#: that replays the recurrence for the Ritz vector needs one more.
FULL_SPACE_VECTORS = 4


def _available_bytes() -> int:
    """Memory the OS says is available (``MemAvailable``), or physical memory."""
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


def _human(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if nbytes < 1000 or unit == "EB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    raise AssertionError  # unreachable


# ========================================================================= the space
class SequenceSpace:
    r"""Genotypes ``{0..alphabet-1}^length`` with per-site copying error ``mu``.

    Parameters
    ----------
    length : int >= 1
        ``L``, the number of sites.
    mu : float or (L,) array in [0, 1]
        Per-site error rate: a copy of a site is wrong with probability ``mu_i``, the wrong
        letter uniform over the other ``k - 1``.
    alphabet : int >= 2
        ``k``. Genotypes are indexed lexicographically, site 0 most significant; genotype 0
        (all letters 0) is the master sequence of :func:`single_peak`.

    Nothing of size ``k**L`` is allocated here: a space with ``L = 1000`` is fine for the
    class models; full-space models check that their vectors fit in memory.
    """

    def __init__(self, length: int, mu, alphabet: int = 2):
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
        r"""``x Q`` through the Kronecker structure (``x`` over all ``k**L`` genotypes)."""
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
        r"""``log M``, the exact ``(L+1) x (L+1)`` Hamming-class mutation matrix (cached)."""
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

    def full_space_bytes(self, vectors: int = FULL_SPACE_VECTORS) -> int:
        """Bytes of ``vectors`` float64 vectors over all ``k**L`` genotypes."""
        return 8 * vectors * self.size

    def check_memory(self, vectors: int = FULL_SPACE_VECTORS, what: str = "a full-space model"):
        """Refuse (``ValueError``) when ``vectors`` genotype vectors will not fit in memory."""
        need = self.full_space_bytes(vectors)
        have = _available_bytes()
        if need > have:
            raise ValueError(
                f"length: {what} on {self.alphabet}^{self.length} = {self.size:.4g} genotypes needs "
                f"{_human(need)} ({vectors} float64 vectors of {_human(8 * self.size)}), more than "
                f"the {_human(have)} available; use a permutation-symmetric landscape with one "
                "error rate (Hamming-class model) or a shorter length"
            )


# ================================================================ shared helpers
_DIAGONAL = "mu = 0: W_T is diagonal, lambda = max f^(1/T)"


def _result(
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
    """The steady state with ``lambda_T = max f^(1/T) * theta`` (see :func:`_growth`)."""
    log_growth, scaled = _growth(T, lmax, theta)
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


def _growth(T: float, lmax: float, theta: float) -> tuple[float, float]:
    """``(log lambda_T, T log lambda_T)`` from ``lambda_T = max f^(1/T) * theta``."""
    if T > 0:
        return lmax / T + math.log(theta), lmax + T * math.log(theta)
    if lmax == 0:
        return math.log(theta), 0.0
    return math.copysign(math.inf, lmax), lmax


def _check_T(T) -> float:
    Ts, sweep = check_temperature(T)
    if sweep:
        raise ValueError(
            "T: this method takes one temperature; qs.steady_state / qs.evolve sweep arrays"
        )
    return float(Ts)


@partial(jax.jit, static_argnames=("steps", "alphabet"))
def _evolve_log(log_fitness, log_weights, T, u0, steps: int, alphabet: int):
    """Log-domain dynamics over genotypes: ``u <- log_mutate(u + log g_T(present))``."""

    def select(u):
        present = u > -jnp.inf
        lmax = jnp.max(jnp.where(present, log_fitness, -jnp.inf))
        sel = log_selection(log_fitness, lmax, T)
        return jnp.where(present, u + sel, -jnp.inf)

    def step(u, _):
        u = log_mutate(select(u), log_weights, alphabet)
        u = u - jax.nn.logsumexp(u)
        return u, jnp.exp(u)

    _, xs = jax.lax.scan(step, u0, None, length=steps)
    return xs


@partial(jax.jit, static_argnames=("steps",))
def _evolve_classes(log_fitness, log_M, T, u0, steps: int):
    """Log-domain lumped dynamics: ``u'_e = logsumexp_d (u_d + log g_d + log M[d, e])``."""

    def step(u, _):
        present = u > -jnp.inf
        lmax = jnp.max(jnp.where(present, log_fitness, -jnp.inf))
        sel = log_selection(log_fitness, lmax, T)
        a = jnp.where(present, u + sel, -jnp.inf)
        u = jax.nn.logsumexp(a[:, None] + log_M, axis=0)
        u = u - jax.nn.logsumexp(u)
        return u, jnp.exp(u)

    _, xs = jax.lax.scan(step, u0, None, length=steps)
    return xs


def _log_or_neginf(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


# ==================================================================== full space
class GenotypeModel:
    r"""Eigen's model over all ``k**L`` genotypes: ``W_T = diag(f^(1/T)) Q`` (row vectors).

    Build it with :func:`fitness_landscape`, :func:`additive`, :func:`multiplicative`,
    :func:`nk_landscape` (or :func:`single_peak` with per-site rates). ``log_fitness`` is
    stored (a JAX float64 array, lexicographic order); ``Q`` never is.
    """

    lumped = False

    def __init__(self, space: SequenceSpace, log_fitness, description: str = "landscape"):
        self.space = space
        self.log_fitness = jnp.asarray(log_fitness, dtype=jnp.float64)
        self.description = description

    @property
    def num_states(self) -> int:
        return self.space.size

    @property
    def fitness(self) -> np.ndarray:
        """``f`` over genotypes (lexicographic order)."""
        return np.exp(np.asarray(self.log_fitness))

    def __repr__(self) -> str:
        return f"GenotypeModel({self.description}, {self.space!r})"

    # ---------------------------------------------------------------- analysis
    def mean_fitness(self, population) -> float:
        r"""``sum_g x_g f_g`` (at ``T = 1`` and the steady state, equal to ``lambda``)."""
        return float(np.dot(np.asarray(population), self.fitness))

    def class_frequencies(self, population, master: int = 0) -> np.ndarray:
        """Population summed over Hamming distance to ``master`` (``(L+1,)``, index 0 = master)."""
        d = self.space.hamming_distances(master)
        return np.bincount(
            d, weights=np.asarray(population, dtype=np.float64), minlength=self.space.length + 1
        )

    def operator(
        self, T: float = 1.0, block: int | None = None, *, store_sqrt_g: bool = False
    ) -> SymmetrisedOperator:
        """The symmetric :math:`G^{1/2} Q G^{1/2}` at temperature ``T`` (see :mod:`~quasispecies.kernels.kronecker`).

        ``store_sqrt_g``: precompute :math:`g^{1/2}` (one more ``k**L`` vector, ~5 % faster)
        instead of forming it from ``log f`` inside the kernel.
        """
        kw = {} if block is None else {"block": block}
        return SymmetrisedOperator(
            self.log_fitness,
            self.space.site_weights(),
            self.space.length,
            self.space.alphabet,
            T,
            **kw,
            store_sqrt_g=store_sqrt_g,
        )

    # ------------------------------------------------------------ steady state
    def steady_state(
        self,
        T: float = 1.0,
        *,
        tol: float = 1e-12,
        max_steps: int = 5000,
        ritz: str = "clenshaw",
        block: int | None = None,
        store_sqrt_g: bool = False,
    ) -> SteadyState:
        r"""The quasispecies: left Perron vector of ``W_T`` and ``log lambda_T``.

        Lanczos on :math:`A = G^{1/2} Q G^{1/2}`, :math:`g = f^{1/T}/\max f^{1/T}`, stopped
        when the Ritz residual is below ``tol * theta``; the Ritz vector ``y`` by Clenshaw's
        recurrence (no stored basis: three ``k**L`` vectors besides the landscape); then
        :math:`x = (g^{1/2} \circ y) Q / \theta`, normalised to sum 1, and
        :math:`\lambda_T = \theta \max f^{1/T}`.

        ``iterations`` counts operator applications (Lanczos + Ritz vector + the two for
        ``x`` and its residual); ``residual`` is ``||x W_T - lambda x||_1 / lambda``, and
        ``converged`` requires it to be at most ``RESIDUAL_OK`` (if the Clenshaw Ritz vector
        misses that, it is recomputed once by replaying the recurrence).

        Memory: the landscape plus three ``k**L`` float64 vectors; ``store_sqrt_g=True``
        keeps :math:`g^{1/2}` as a fourth (about 5 % faster than forming it in the kernel).

        Accuracy: ``lambda`` to ``~tol`` relative; the population normwise (``~tol`` per
        entry in absolute terms), so genotype frequencies far below ``tol`` are not accurate
        relative to themselves; the Hamming-class model (:class:`ClassModel`) is, entrywise.

        At ``T = 0``: :math:`g` is the indicator of the fittest genotypes ``F`` (log-fitness
        equal to the maximum), the population is the ``T -> 0+`` limit
        :math:`x \propto z Q` with :math:`z` the Perron vector of :math:`Q_{FF}`,
        ``scaled_log_growth = max log f`` (the max-plus eigenvalue; every genotype has a
        self-loop since ``mu < 1``) and ``log_growth = ±inf`` by its sign (the finite
        :math:`\log \rho(Q_{FF})` when ``max f = 1``).

        With ``mu = 0`` everywhere ``W_T`` is diagonal: ``lambda = max f^(1/T)`` and the
        population is uniform over the fittest genotypes (the limit of the dynamics from a
        uniform start; the unique Perron vector when the fittest genotype is unique).
        """
        T = _check_T(T)
        sp = self.space
        if T == 0 and (sp.mu >= 1).any():
            raise ValueError(
                "T: the T = 0 limit needs every mu < 1 (a genotype must be able to "
                "copy itself exactly)"
            )
        lmax = float(jnp.max(self.log_fitness))
        if (sp.mu == 0).all():
            return self._diagonal_steady_state(T, lmax)
        op = self.operator(T, block, store_sqrt_g=store_sqrt_g)
        for how in (ritz, "replay"):
            res = top_eigenpair(op, tol=tol, max_steps=max_steps, ritz=how)
            theta, ybuf = res.value, res.vector
            xbuf, wbuf = res.spare
            # x = (g^(1/2) y) Q / theta, then |x| / sum |x|
            xbuf, wbuf, st = op.step(xbuf, ybuf, wbuf, cA=1.0 / theta, pre=0.5, post=0.0)
            x = op.normalise_abs(xbuf, float(st[2]))
            # residual of x for W_g = diag(g) Q: x W_g - theta x = (g x) Q - theta x (y is free)
            _, _, st = op.step(ybuf, x, wbuf, cA=1.0, cv=-theta, pre=1.0, post=0.0)
            resid = float(st[2]) / theta
            del ybuf, xbuf, wbuf
            if resid <= RESIDUAL_OK or how == "replay":
                break
        converged = bool(res.converged) and resid <= RESIDUAL_OK
        method = (
            f"Lanczos on G^1/2 Q G^1/2 (no reorthogonalisation, {res.steps} steps), "
            f"Ritz vector by {res.ritz}"
        )
        return _result(
            x,
            T,
            lmax,
            theta,
            method=method,
            irreducible=sp.irreducible,
            converged=converged,
            iterations=int(op.matvecs),
            residual=resid,
        )

    def _diagonal_steady_state(self, T: float, lmax: float) -> SteadyState:
        lf = np.asarray(self.log_fitness)
        top = lf >= lmax
        return _result(top / top.sum(), T, lmax, 1.0, method=_DIAGONAL)

    def steady_state_at(self, T: float) -> SteadyState:
        return self.steady_state(T)

    # ---------------------------------------------------------------- dynamics
    def evolve(self, T: float, steps: int, x0=None) -> np.ndarray:
        r"""Populations ``x_0 .. x_steps`` of ``x_{t+1} ∝ x_t diag(f^(1/T)) Q`` (log domain).

        ``x0``: ``None`` (uniform), a genotype index, or a probability vector. At ``T = 0``
        each step keeps only the fittest genotypes present (the ``T -> 0+`` limit of
        selection), then mutates. Returns ``(steps + 1, k**L)``.
        """
        T = _check_T(T)
        steps = check_nonneg_int(steps, "steps")
        N = self.space.size
        if 8 * (steps + 1) * N > _available_bytes():
            raise ValueError(
                f"steps: {steps + 1} populations of {N} genotypes need "
                f"{_human(8 * (steps + 1) * N)}, more than is available"
            )
        x0 = initial_population(N, x0)
        u0 = jnp.asarray(_log_or_neginf(x0))
        lw = jnp.asarray(log_site_weights(self.space.mu, self.space.alphabet))
        xs = _evolve_log(self.log_fitness, lw, jnp.asarray(T), u0, steps, self.space.alphabet)
        return np.concatenate([x0[None, :], np.asarray(xs)], axis=0)

    def evolve_at(self, T: float, steps: int, x0) -> np.ndarray:
        return self.evolve(T, steps, x0)


# ==================================================================== classes
class ClassModel:
    r"""Eigen's model lumped onto Hamming classes ``d = 0..L`` (index 0 = master class).

    Exact for a landscape that depends only on the distance ``d`` to the master (genotype 0)
    when every site has the same error rate: ``y_{t+1} ∝ y_t diag(f_d^(1/T)) M``
    (:mod:`quasispecies.kernels.hamming`). ``populations`` are class frequencies (summing to 1).
    """

    lumped = True

    def __init__(self, space: SequenceSpace, log_fitness_classes, description: str = "classes"):
        if not space.uniform:
            raise ValueError(
                "mu: Hamming classes lump exactly only when every site has the same rate"
            )
        self.space = space
        lf = as_float_array(log_fitness_classes, "fitness", ndim=1)
        if lf.shape[0] != space.length + 1:
            raise ValueError(
                f"fitness: expected {space.length + 1} class fitnesses, got {lf.shape[0]}"
            )
        self.log_fitness = lf
        self.description = description

    @property
    def num_states(self) -> int:
        return self.space.length + 1

    @property
    def fitness(self) -> np.ndarray:
        """``f_d`` for classes ``d = 0..L``."""
        return np.exp(self.log_fitness)

    def __repr__(self) -> str:
        return f"ClassModel({self.description}, {self.space!r})"

    def mean_fitness(self, population) -> float:
        return float(np.dot(np.asarray(population), self.fitness))

    def class_frequencies(self, population, master: int = 0) -> np.ndarray:
        if master != 0:
            raise ValueError("master: a class model is lumped around genotype 0")
        return np.asarray(population, dtype=np.float64)

    def to_genotypes(self) -> GenotypeModel:
        """The same landscape over all ``k**L`` genotypes (``f(g) = f_{d(g)}``)."""
        self.space.check_memory(FULL_SPACE_VECTORS, "to_genotypes")
        d = self.space.hamming_distances(0)
        return GenotypeModel(self.space, self.log_fitness[d], self.description)

    def steady_state(self, T: float = 1.0) -> SteadyState:
        r"""Perron pair of ``diag(f_d^(1/T)) M``: symmetric dense solve + balanced refinement.

        ``population[d]`` are class frequencies (entrywise accurate, see
        :func:`quasispecies.kernels.hamming.class_perron`); ``log_growth = log lambda_T`` as for the
        full space (the lumped matrix has the same Perron root). ``T = 0`` as in
        :meth:`GenotypeModel.steady_state`.
        """
        T = _check_T(T)
        sp = self.space
        mu = float(sp.mu[0])
        if T == 0 and mu >= 1:
            raise ValueError(
                "T: the T = 0 limit needs mu < 1 (a genotype must be able to copy itself)"
            )
        lf = self.log_fitness
        lmax = float(lf.max())
        if mu == 0:
            top = lf >= lmax
            logn = sp.log_class_sizes()
            w = np.where(top, np.exp(logn - logn[top].max()), 0.0)
            return _result(w / w.sum(), T, lmax, 1.0, method=_DIAGONAL)
        if T > 0:
            log_g = (lf - lmax) / T
        else:
            log_g = np.where(lf >= lmax, 0.0, -np.inf)
        theta, lx, resid = class_perron(
            sp.log_class_matrix(), log_g, sp.log_class_sizes(), refine=sp.irreducible
        )
        return _result(
            np.exp(lx),
            T,
            lmax,
            theta,
            method=f"Hamming-class model ({sp.length + 1} classes): symmetric eigh "
            "+ balanced refinement",
            irreducible=sp.irreducible,
            residual=resid,
        )

    def steady_state_at(self, T: float) -> SteadyState:
        return self.steady_state(T)

    def evolve(self, T: float, steps: int, x0=None) -> np.ndarray:
        r"""Class frequencies ``y_0 .. y_steps`` of ``y_{t+1} ∝ y_t diag(f_d^(1/T)) M``.

        ``x0``: ``None`` (uniform over genotypes, i.e. ``n_d / k^L``), a class index, or a
        probability vector over classes. Log domain throughout.
        """
        T = _check_T(T)
        steps = check_nonneg_int(steps, "steps")
        n = self.num_states
        if x0 is None:
            logn = self.space.log_class_sizes()
            x0 = np.exp(logn - np.logaddexp.reduce(logn))
        else:
            x0 = initial_population(n, x0)
        u0 = jnp.asarray(_log_or_neginf(x0))
        xs = _evolve_classes(
            jnp.asarray(self.log_fitness),
            jnp.asarray(self.space.log_class_matrix()),
            jnp.asarray(T),
            u0,
            steps,
        )
        return np.concatenate([x0[None, :], np.asarray(xs)], axis=0)

    def evolve_at(self, T: float, steps: int, x0) -> np.ndarray:
        return self.evolve(T, steps, x0)


# ================================================================== landscapes
def _check_space(space) -> SequenceSpace:
    if not isinstance(space, SequenceSpace):
        raise ValueError(
            f"space: expected a quasispecies.SequenceSpace, got {type(space).__name__}"
        )
    return space


def _positive_scalar(x, name: str) -> float:
    arr = as_float_array(x, name, ndim=0)
    v = float(arr)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: must be a positive finite number, got {v!r}")
    return v


def fitness_landscape(space, f) -> GenotypeModel:
    r"""A model for any landscape: ``f`` of shape ``(alphabet**length,)``, positive, finite.

    Genotypes in lexicographic order (site 0 most significant): ``f[i]`` is the fitness of
    the genotype whose base-``k`` digits are ``i``.
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
    r"""A permutation-symmetric landscape given by fitness per Hamming distance ``d = 0..L``."""
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

    With one error rate this is the exact :class:`ClassModel` (``population`` over the
    ``L + 1`` classes, index 0 = master class; any ``L``); with per-site rates (or
    ``lumped=False``) a :class:`GenotypeModel`.
    """
    space = _check_space(space)
    s = _positive_scalar(sigma, "sigma")
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
    b = _positive_scalar(base, "base")
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


# ============================================================== error threshold
class ThresholdCurves(NamedTuple):
    r"""Single-peak quasispecies against the error rate, for several lengths.

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
    :class:`ThresholdCurves`. The no-back-mutation approximation (Eigen 1971; Swetina &
    Schuster 1982) ``x_0 = (sigma Q - 1)/(sigma - 1)``, ``Q = (1 - mu)^L``, vanishes at
    ``mu_c = 1 - sigma^(-1/L) ≈ ln(sigma)/L``; both thresholds are returned.
    """
    lengths = np.atleast_1d(np.asarray(length))
    if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"length: expected an integer or a list of integers, got {length!r}")
    lengths = np.array([check_nonneg_int(int(L_), "length", 1) for L_ in lengths])
    s = _positive_scalar(sigma, "sigma")
    if not s > 1:
        raise ValueError(
            f"sigma: the error threshold needs a master fitter than the rest, sigma > 1; got {s!r}"
        )
    mus = as_float_array(mu, "mu", ndim=(0, 1)).ravel()
    if mus.size == 0:
        raise ValueError("mu: no error rates given")
    T = _check_T(T)
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


def stack(results: list[SteadyState]) -> SteadyState:
    """Stack steady states along a new leading axis (as a temperature sweep does)."""
    return stack_results(results)
