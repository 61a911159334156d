r"""Eigen's model over all ``k**L`` genotypes: Lanczos steady state and log-domain dynamics.

Row-vector convention: a population ``x`` over genotypes in lexicographic order
(``index = sum_i g_i k^(L-1-i)``) evolves as

.. math::

    x_{t+1} \propto x_t W_T, \qquad W_T = \mathrm{diag}(f^{1/T})\, Q, \qquad
    Q = \bigotimes_i q_i, \quad q_i = (1-\mu_i) I + \tfrac{\mu_i}{k-1} (J - I),

each genotype replicates at rate ``f^(1/T)``, then its copies mutate (M. Eigen,
*Naturwissenschaften* 58, 465 (1971); ``T = 1`` is Eigen's model). The quasispecies is the
left Perron vector ``x W_T = lambda x``, found by basis-free Lanczos (C. Lanczos, 1950) on
the symmetric :math:`G^{1/2} Q G^{1/2}` (:mod:`quasispecies.kernels.symmetrised`,
:mod:`quasispecies.kernels.lanczos`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.kronecker import log_mutate, log_selection, log_site_weights
from quasispecies.kernels.lanczos import top_eigenpair
from quasispecies.kernels.symmetrised import SymmetrisedOperator
from quasispecies.model.mdp import initial_population
from quasispecies.model.results import SteadyState
from quasispecies.model.validate import check_nonneg_int
from quasispecies.semiring import log_normalise
from quasispecies.sequence.common import DIAGONAL, log_or_neginf, one_temperature, steady_result
from quasispecies.sequence.space import FULL_SPACE_VECTORS, SequenceSpace, human_bytes

__all__ = ["RESIDUAL_OK", "RITZ", "GenotypeModel"]

#: A full-space steady state counts as converged only when the true relative residual
#: ``||x W - lambda x||_1 / lambda`` of the returned population is at most this (besides the
#: Lanczos estimate meeting ``tol``).
RESIDUAL_OK = 1e-8

#: The choices of ``GenotypeModel.steady_state(ritz=...)``.
RITZ = ("auto", "clenshaw", "replay")


@partial(jax.jit, static_argnames=("steps", "alphabet"))
def _evolve_log(log_fitness, log_weights, T, u0, steps: int, alphabet: int):
    """Log-domain dynamics over genotypes: ``u <- log_normalise(log_mutate(u + log g_T))``,
    ``log g_T`` taken relative to the fittest genotype present."""

    def select(u):
        present = u > -jnp.inf
        lmax = jnp.max(jnp.where(present, log_fitness, -jnp.inf))
        sel = log_selection(log_fitness, lmax, T)
        return jnp.where(present, u + sel, -jnp.inf)

    def step(u, _):
        u = log_normalise(log_mutate(select(u), log_weights, alphabet))
        return u, jnp.exp(u)

    _, xs = jax.lax.scan(step, u0, None, length=steps)
    return xs


class GenotypeModel:
    r"""Eigen's model over all ``k**L`` genotypes: ``W_T = diag(f^(1/T)) Q`` (row vectors).

    ``W_T[g, h] = f(g)^{1/T} Q[g, h]``, genotypes in lexicographic order. Build it with
    :func:`~quasispecies.sequence.fitness_landscape`, :func:`~quasispecies.sequence.additive`,
    :func:`~quasispecies.sequence.multiplicative`, :func:`~quasispecies.sequence.nk_landscape`
    (or :func:`~quasispecies.sequence.single_peak` with per-site rates). ``log_fitness`` is
    stored (a JAX float64 array); ``Q`` never is. M. Eigen, *Naturwissenschaften* 58 (1971).
    """

    lumped = False

    def __init__(self, space: SequenceSpace, log_fitness, description: str = "landscape"):
        self.space = space
        self.log_fitness = jnp.asarray(log_fitness, dtype=jnp.float64)
        self.description = description

    @property
    def num_states(self) -> int:
        """``k**L``."""
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
        r"""The symmetric :math:`G^{1/2} Q G^{1/2}`, :math:`g = f^{1/T}/\max f^{1/T}`, at ``T``.

        See :class:`quasispecies.kernels.symmetrised.SymmetrisedOperator`.
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
        ritz: str = "auto",
        block: int | None = None,
        store_sqrt_g: bool = False,
    ) -> SteadyState:
        r"""The quasispecies: left Perron vector of ``W_T``, ``x W_T = lambda_T x``, and ``log lambda_T``.

        Lanczos (C. Lanczos 1950) on :math:`A = G^{1/2} Q G^{1/2}`,
        :math:`g = f^{1/T}/\max f^{1/T}`, stopped when the Ritz residual is below
        ``tol * theta``; then :math:`x = (g^{1/2} \circ y)\, Q / \theta` for the Ritz vector
        ``y``, normalised to sum 1, and :math:`\lambda_T = \theta \max f^{1/T}`.

        ``ritz`` chooses how ``y`` is formed without storing the Lanczos basis:

        * ``"clenshaw"``: Clenshaw's recurrence, three ``k**L`` working vectors;
        * ``"replay"``: replay the recurrence and accumulate ``y``, four working vectors
          (refused, naming ``memory_limit``, when they do not fit the space's budget);
        * ``"auto"`` (default): Clenshaw, and if the true residual of ``x`` exceeds
          ``RESIDUAL_OK`` (rare), replay, provided the fourth vector fits the budget of
          :meth:`SequenceSpace.memory_budget <quasispecies.sequence.SequenceSpace.memory_budget>`.

        ``.method`` names the solver, how ``y`` was formed and why. ``iterations`` counts
        operator applications (Lanczos + Ritz vector + the two for ``x`` and its residual);
        ``residual`` is ``||x W_T - lambda x||_1 / lambda``, and ``converged`` requires it to
        be at most ``RESIDUAL_OK``. ``store_sqrt_g=True`` keeps :math:`g^{1/2}` as one more
        vector (about 5 % faster than forming it in the kernel).

        Accuracy: ``lambda`` to ``~tol`` relative; the population normwise (``~tol`` per
        entry in absolute terms), so genotype frequencies far below ``tol`` are not accurate
        relative to themselves; the Hamming-class model (:class:`~quasispecies.sequence.ClassModel`)
        is, entrywise.

        At ``T = 0``: :math:`g` is the indicator of the fittest genotypes ``F``, the
        population is the ``T -> 0+`` limit :math:`x \propto z Q` with :math:`z` the Perron
        vector of :math:`Q_{FF}`, ``scaled_log_growth = max log f`` (the max-plus
        eigenvalue; every genotype has a self-loop since ``mu < 1``) and
        ``log_growth = ±inf`` by its sign (the finite :math:`\log \rho(Q_{FF})` when
        ``max f = 1``). With ``mu = 0`` everywhere ``W_T`` is diagonal: ``lambda = max
        f^(1/T)`` and the population is uniform over the fittest genotypes.
        """
        T = one_temperature(T)
        if ritz not in RITZ:
            raise ValueError(f"ritz: expected one of {RITZ}, got {ritz!r}")
        sp = self.space
        if T == 0 and (sp.mu >= 1).any():
            raise ValueError(
                "T: the T = 0 limit needs every mu < 1 (a genotype must be able to "
                "copy itself exactly)"
            )
        lmax = float(jnp.max(self.log_fitness))
        if (sp.mu == 0).all():
            lf = np.asarray(self.log_fitness)
            top = lf >= lmax
            return steady_result(top / top.sum(), T, lmax, 1.0, method=DIAGONAL)
        extra = FULL_SPACE_VECTORS + 1 + int(store_sqrt_g)  # replay: one more vector
        if ritz == "replay":
            sp.check_memory(extra, "ritz='replay'")
        op = self.operator(T, block, store_sqrt_g=store_sqrt_g)
        hows = ("clenshaw", "replay") if ritz == "auto" else (ritz,)
        why = f"ritz={ritz!r}"
        for how in hows:
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
            if resid <= RESIDUAL_OK or how == hows[-1]:
                break
            if not sp.fits(extra):
                have, source = sp.memory_budget()
                why = (
                    f"ritz='auto': residual {resid:.2g} > {RESIDUAL_OK:g}, replay skipped: its "
                    f"{extra} vectors ({human_bytes(sp.full_space_bytes(extra))}) exceed the "
                    f"{human_bytes(have)} budget ({source})"
                )
                break
            why = f"ritz='auto': Clenshaw residual {resid:.2g} > {RESIDUAL_OK:g}, replayed"
        converged = bool(res.converged) and resid <= RESIDUAL_OK
        method = (
            f"Lanczos on G^1/2 Q G^1/2 (no reorthogonalisation, {res.steps} steps), "
            f"Ritz vector by {res.ritz} ({why})"
        )
        return steady_result(
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

    def steady_state_at(self, T: float) -> SteadyState:
        """:meth:`steady_state` with its defaults (the :class:`~quasispecies.model.protocol.ReplicationModel` hook)."""
        return self.steady_state(T)

    # ---------------------------------------------------------------- dynamics
    def evolve(self, T: float, steps: int, x0=None) -> np.ndarray:
        r"""Populations ``x_0 .. x_steps`` of ``x_{t+1} ∝ x_t diag(f^(1/T)) Q`` (log domain).

        ``u_{t+1} = log_normalise(log_mutate(u_t + log g_T))``, exact for frequencies far
        below float64's range. ``x0``: ``None`` (uniform), a genotype index, or a probability
        vector. At ``T = 0`` each step keeps only the fittest genotypes present (the
        ``T -> 0+`` limit of selection), then mutates. Returns ``(steps + 1, k**L)``; the
        history must fit the space's memory budget.
        """
        T = one_temperature(T)
        steps = check_nonneg_int(steps, "steps")
        N = self.space.size
        need = 8 * (steps + 1) * N
        have, source = self.space.memory_budget()
        if need > have:
            raise ValueError(
                f"steps: {steps + 1} populations of {N} genotypes need {human_bytes(need)}, "
                f"more than the {human_bytes(have)} budget ({source})"
            )
        x0 = initial_population(N, x0)
        u0 = jnp.asarray(log_or_neginf(x0))
        lw = jnp.asarray(log_site_weights(self.space.mu, self.space.alphabet))
        xs = _evolve_log(self.log_fitness, lw, jnp.asarray(T), u0, steps, self.space.alphabet)
        return np.concatenate([x0[None, :], np.asarray(xs)], axis=0)

    def evolve_at(self, T: float, steps: int, x0) -> np.ndarray:
        """:meth:`evolve` (the :class:`~quasispecies.model.protocol.ReplicationModel` hook)."""
        return self.evolve(T, steps, x0)
