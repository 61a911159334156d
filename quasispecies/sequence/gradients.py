r"""Differentiable growth rates of Eigen's model: ``log lambda_T`` by implicit differentiation.

``lambda_T`` is the Perron root of ``W_T = diag(f^{1/T}) Q`` (row vectors, genotypes in
lexicographic order; or its Hamming-class lumping ``diag(f_d^{1/T}) M``). Perturbation
theory of a simple eigenvalue gives, with left / right Perron vectors ``l`` and ``r``,

.. math::
   d \log\lambda_T = \sum_g \pi_g \, d \log g_g, \qquad
   \pi_g = \frac{l_g r_g}{l \cdot r}, \qquad \log g_g = \frac{\log f_g}{T},

so ``d log lambda / d log f_g = pi_g / T`` and ``d (T log lambda) / d log f_g = pi_g``:
the *selection flux*, a distribution over genotypes. ``Q`` is symmetric, so
``W = G^{1/2} (G^{1/2} Q G^{1/2}) G^{-1/2}`` and both vectors follow from the left one,
the quasispecies ``x``: ``r ∝ g x`` and ``pi ∝ x^2 g`` (for classes, ``n_d M[d, e] =
n_e M[e, d]`` gives ``r ∝ g y / n`` and ``pi ∝ y^2 g / n``, ``n_d`` the class sizes). The
forward solve is the model's own (Lanczos or the class eigensolver) on the host
(``jax.pure_callback``); the backward pass is a product with ``pi`` (a ``jax.custom_vjp``):
no backpropagation through iterations, memory ``O(k^L)`` (``O(L)`` lumped).

Temperature: ``d log lambda / dT = -sum_g pi_g log f_g / T^2`` and
``d (T log lambda) / dT = log theta - sum_g pi_g (log f_g - max log f) / T`` with
``theta = lambda / max f^{1/T} = sum_g x_g g_g / max g`` (rows of ``Q`` sum to 1).
At ``T = 0`` ``T log lambda = max log f``; its gradient is the ``T -> 0+`` flux
(``pi ∝ z^2`` on the fittest genotypes, ``z`` the Perron vector of ``Q`` restricted to
them): a subgradient of the maximum, a convex combination of the fittest genotypes'
indicators. The ``T``-cotangent there is the right derivative ``log theta``.
``log lambda_T`` is ``±inf`` at ``T = 0``; its gradient is set to 0 there.
M. Eigen, *Naturwissenschaften* 58 (1971); T. Kato, *Perturbation Theory for Linear
Operators* (1966), II.2.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.kronecker import log_selection
from quasispecies.model.validate import as_float_array, is_traced, traced_array
from quasispecies.semiring import host
from quasispecies.semiring.core import at_temperature, safe_temperature
from quasispecies.sequence.classes import ClassModel
from quasispecies.sequence.common import log_or_neginf, one_temperature
from quasispecies.sequence.genotype import GenotypeModel

__all__ = ["log_growth", "scaled_log_growth", "selection_flux"]


def _check_model(model):
    if not isinstance(model, GenotypeModel | ClassModel):
        raise ValueError(
            f"model: expected a GenotypeModel or ClassModel, got {type(model).__name__}"
        )
    return model


def _host_growth(model, lf, T):
    """Host: ``(log lambda, T log lambda, log theta, pi)`` of ``model`` with landscape ``lf``."""
    lf = np.asarray(lf, dtype=np.float64)
    T = float(T)
    lumped = isinstance(model, ClassModel)
    cls = ClassModel if lumped else GenotypeModel
    log_n = model.space.log_class_sizes() if lumped else np.zeros_like(lf)
    ss = cls(model.space, lf, model.description).steady_state(T)
    log_x = log_or_neginf(np.asarray(ss.population, dtype=np.float64))
    log_g = np.asarray(log_selection(lf, float(lf.max()), T), dtype=np.float64)
    log_theta = float(host.lse(log_x + log_g))
    pi = np.exp(host.log_normalise(2.0 * log_x + log_g - log_n))
    return (
        np.float64(ss.log_growth),
        np.float64(ss.scaled_log_growth),
        np.float64(log_theta),
        pi.astype(np.float64),
    )


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _growth(model, lf, T):
    return _growth_fwd(model, lf, T)[0]


def _solve(model, lf, T):
    if not is_traced(lf, T):
        # eager jax.grad: call the solver directly. Through pure_callback its JAX matvecs
        # would run inside an XLA callback while the caller dispatches asynchronously,
        # which can exhaust the CPU executor and deadlock.
        return tuple(jnp.asarray(o) for o in _host_growth(model, lf, T))
    scalar = jax.ShapeDtypeStruct((), jnp.float64)
    shapes = (scalar, scalar, scalar, jax.ShapeDtypeStruct(lf.shape, jnp.float64))
    return jax.pure_callback(partial(_host_growth, model), shapes, lf, T, vmap_method="sequential")


def _growth_fwd(model, lf, T):
    lg, sc, log_theta, pi = _solve(model, lf, T)
    return (lg, sc), (lf, T, log_theta, pi)


def _growth_bwd(model, res, cts):
    lf, T, log_theta, pi = res
    c_lg, c_sc = cts
    Ts = safe_temperature(T)
    live = pi > 0
    lf_live = jnp.where(live, lf, 0.0)
    gap = jnp.where(live, lf - jnp.max(lf), 0.0)
    # log lambda: zero gradient at T = 0 (it is +-inf there); T log lambda: the T -> 0+ flux
    d_lf = c_lg * at_temperature(T, pi / Ts, 0.0) + c_sc * pi
    d_T = c_lg * at_temperature(T, -jnp.sum(pi * lf_live) / Ts**2, 0.0) + c_sc * (
        log_theta - at_temperature(T, jnp.sum(pi * gap) / Ts, 0.0)
    )
    return d_lf, d_T


_growth.defvjp(_growth_fwd, _growth_bwd)


def _inputs(model, T, log_fitness):
    model = _check_model(model)
    n = model.num_states
    lf = model.log_fitness if log_fitness is None else log_fitness
    if is_traced(lf):
        lf = traced_array(lf, "log_fitness", ndim=1).astype(jnp.float64)
    else:
        arr = as_float_array(lf, "log_fitness", ndim=1)
        if np.isnan(arr).any() or np.isposinf(arr).any():
            raise ValueError("log_fitness: NaN or +inf entry (log f must be finite or -inf)")
        if not np.isfinite(arr).any():
            raise ValueError("log_fitness: every genotype has fitness 0")
        lf = jnp.asarray(arr)
    if lf.shape != (n,):
        raise ValueError(f"log_fitness: expected shape ({n},), got {lf.shape}")
    if is_traced(T):
        Tj = traced_array(T, "T", ndim=0).astype(jnp.float64)
    else:
        Tj = jnp.asarray(one_temperature(T), dtype=jnp.float64)
    return model, lf, Tj


def log_growth(model, T=1.0, log_fitness=None) -> jax.Array:
    r"""``log lambda_T``, the log Perron root of ``diag(f^{1/T}) Q`` (a JAX scalar).

    The same number as ``model.steady_state(T).log_growth``, differentiable
    (``jax.grad`` / ``jacrev`` / ``jit`` / ``vmap``) with respect to the landscape
    ``log_fitness`` (``log f`` per genotype, or per class for a :class:`ClassModel`;
    default: the model's own) and ``T > 0`` by implicit differentiation
    (module docstring): ``d log lambda / d log f = pi / T`` with the selection flux
    ``pi ∝ x^2 g``. ``±inf`` at ``T = 0`` (its gradient is 0 there; use
    :func:`scaled_log_growth`). Traced inputs are shape-checked only. The Perron root is
    simple for an irreducible ``Q`` (every ``0 < mu < 1``); the forward solve runs on the
    host, once per call (per element under ``vmap``).
    """
    model, lf, Tj = _inputs(model, T, log_fitness)
    return _growth(model, lf, Tj)[0]


def scaled_log_growth(model, T=1.0, log_fitness=None) -> jax.Array:
    r"""``T log lambda_T`` (``max log f`` at ``T = 0``), differentiable as :func:`log_growth`.

    ``d (T log lambda) / d log f = pi`` (the selection flux, sums to 1) and
    ``d / dT = log theta - sum pi (log f - max log f) / T``; at ``T = 0`` the gradient is the
    ``T -> 0+`` flux, a subgradient of ``max log f`` (module docstring).
    """
    model, lf, Tj = _inputs(model, T, log_fitness)
    return _growth(model, lf, Tj)[1]


def selection_flux(model, T=1.0, log_fitness=None) -> jax.Array:
    r"""``pi_g = l_g r_g / (l . r)``: the gradient of ``T log lambda_T`` in ``log f``.

    A distribution over genotypes (classes for a :class:`ClassModel`): where a small
    change of the landscape moves the growth rate. Works under ``jit`` / ``vmap``; it is
    not differentiable itself (``jax.grad`` of it raises: second derivatives are not
    provided).
    """
    model, lf, Tj = _inputs(model, T, log_fitness)
    return _solve(model, lf, Tj)[3]
