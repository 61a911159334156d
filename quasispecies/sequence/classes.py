r"""Eigen's model lumped exactly onto the ``L + 1`` Hamming classes (one error rate).

For a landscape that depends on a genotype only through its Hamming distance ``d`` to the
master (genotype 0), with the same ``mu`` at every site, the class frequencies ``y`` obey
(row vectors)

.. math::

    y_{t+1} \propto y_t\, \mathrm{diag}(f_d^{1/T})\, M, \qquad
    M[d, e] = \Pr(\text{a copy of a class-}d\text{ genotype is in class } e),

the exact lumping of ``W_T = diag(f^(1/T)) Q`` (M. Eigen, *Naturwissenschaften* 58, 465
(1971); Swetina & Schuster 1982). ``M`` is built and used as ``log M``
(:mod:`quasispecies.kernels.hamming`), so ``L = 1000`` is fine.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.hamming import ELIMINATION_MAX, class_perron
from quasispecies.kernels.kronecker import log_selection
from quasispecies.model.mdp import initial_population
from quasispecies.model.results import SteadyState
from quasispecies.model.validate import as_float_array, check_nonneg_int
from quasispecies.semiring import host, log_normalise, lse
from quasispecies.sequence.common import DIAGONAL, log_or_neginf, one_temperature, steady_result
from quasispecies.sequence.genotype import GenotypeModel
from quasispecies.sequence.space import FULL_SPACE_VECTORS, SequenceSpace

__all__ = ["ClassModel"]


@partial(jax.jit, static_argnames=("steps",))
def _evolve_classes(log_fitness, log_M, T, u0, steps: int):
    """Log-domain lumped dynamics: ``u'_e = lse_d (u_d + log g_d + log M[d, e])``, normalised."""

    def step(u, _):
        present = u > -jnp.inf
        lmax = jnp.max(jnp.where(present, log_fitness, -jnp.inf))
        sel = log_selection(log_fitness, lmax, T)
        a = jnp.where(present, u + sel, -jnp.inf)
        u = log_normalise(lse(a[:, None] + log_M, axis=0))
        return u, jnp.exp(u)

    _, xs = jax.lax.scan(step, u0, None, length=steps)
    return xs


class ClassModel:
    r"""Eigen's model lumped onto Hamming classes ``d = 0..L`` (index 0 = master class).

    ``y_{t+1} ∝ y_t diag(f_d^(1/T)) M`` (row vectors; :mod:`quasispecies.kernels.hamming`),
    exact for a landscape of the Hamming distance to genotype 0 alone when every site has
    the same error rate. ``population`` results are class frequencies (summing to 1).
    Eigen (1971); Swetina & Schuster, *Biophys. Chem.* 16 (1982).
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
        """``L + 1`` classes."""
        return self.space.length + 1

    @property
    def fitness(self) -> np.ndarray:
        """``f_d`` for classes ``d = 0..L``."""
        return np.exp(self.log_fitness)

    def __repr__(self) -> str:
        return f"ClassModel({self.description}, {self.space!r})"

    def mean_fitness(self, population) -> float:
        """``sum_d y_d f_d`` (at ``T = 1`` and the steady state, equal to ``lambda``)."""
        return float(np.dot(np.asarray(population), self.fitness))

    def class_frequencies(self, population, master: int = 0) -> np.ndarray:
        """The population itself (it is over classes already; ``master`` must be 0)."""
        if master != 0:
            raise ValueError("master: a class model is lumped around genotype 0")
        return np.asarray(population, dtype=np.float64)

    def to_genotypes(self) -> GenotypeModel:
        """The same landscape over all ``k**L`` genotypes (``f(g) = f_{d(g)}``)."""
        self.space.check_memory(FULL_SPACE_VECTORS, "to_genotypes")
        d = self.space.hamming_distances(0)
        return GenotypeModel(self.space, self.log_fitness[d], self.description)

    def steady_state(self, T: float = 1.0) -> SteadyState:
        r"""Perron pair of ``diag(f_d^(1/T)) M``: ``y diag(f_d^(1/T)) M = lambda_T y``.

        Dense symmetric eigensolve of the similar ``sqrt(g_d g_e M[d,e] M[e,d])``, then
        balanced refinement and (up to ``ELIMINATION_MAX`` classes) log-domain elimination
        for entrywise accuracy (:func:`quasispecies.kernels.hamming.class_perron`; refinement
        needs an irreducible ``Q``). ``population[d]`` are class frequencies;
        ``log_growth = log lambda_T`` as for the full space (the lumped matrix has the same
        Perron root). ``T = 0`` as in :meth:`GenotypeModel.steady_state`.
        """
        T = one_temperature(T)
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
            return steady_result(w / w.sum(), T, lmax, 1.0, method=DIAGONAL)
        log_g = np.asarray(log_selection(lf, lmax, T))
        refine = sp.irreducible
        theta, lx, resid = class_perron(
            sp.log_class_matrix(), log_g, sp.log_class_sizes(), refine=refine
        )
        n = sp.length + 1
        steps = "symmetric eigh"
        if refine:
            steps += " + balanced refinement"
            if n <= ELIMINATION_MAX:
                steps += " + log-domain elimination"
        return steady_result(
            np.exp(lx),
            T,
            lmax,
            theta,
            method=f"Hamming-class model ({n} classes; exact lumping: a landscape of the "
            f"Hamming distance alone, one error rate): {steps}",
            irreducible=sp.irreducible,
            residual=resid,
        )

    def steady_state_at(self, T: float) -> SteadyState:
        """:meth:`steady_state` (the :class:`~quasispecies.model.protocol.ReplicationModel` hook)."""
        return self.steady_state(T)

    def evolve(self, T: float, steps: int, x0=None) -> np.ndarray:
        r"""Class frequencies ``y_0 .. y_steps`` of ``y_{t+1} ∝ y_t diag(f_d^(1/T)) M``.

        Log domain throughout: ``u'_e = lse_d(u_d + log g_d + log M[d, e])``, normalised.
        ``x0``: ``None`` (uniform over genotypes, i.e. ``n_d / k^L``), a class index, or a
        probability vector over classes.
        """
        T = one_temperature(T)
        steps = check_nonneg_int(steps, "steps")
        n = self.num_states
        if x0 is None:
            x0 = np.exp(host.log_normalise(self.space.log_class_sizes()))
        else:
            x0 = initial_population(n, x0)
        u0 = jnp.asarray(log_or_neginf(x0))
        xs = _evolve_classes(
            jnp.asarray(self.log_fitness),
            jnp.asarray(self.space.log_class_matrix()),
            jnp.asarray(T),
            u0,
            steps,
        )
        return np.concatenate([x0[None, :], np.asarray(xs)], axis=0)

    def evolve_at(self, T: float, steps: int, x0) -> np.ndarray:
        """:meth:`evolve` (the :class:`~quasispecies.model.protocol.ReplicationModel` hook)."""
        return self.evolve(T, steps, x0)
