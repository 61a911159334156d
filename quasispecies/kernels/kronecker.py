r"""Eigen's mutation operator on sequence space, applied through its Kronecker structure.

Genotypes are words :math:`g = (g_0, \dots, g_{L-1})` over the alphabet
:math:`\{0, \dots, k-1\}`, indexed lexicographically,
:math:`\mathrm{index}(g) = \sum_i g_i k^{L-1-i}` (site 0 is the most significant digit,
genotype 0 is :math:`00\cdots0`). A copy of site :math:`i` is wrong with probability
:math:`\mu_i`, the wrong letter uniform over the other :math:`k-1`:

.. math::

    q_i = (1-\mu_i)\,I + \frac{\mu_i}{k-1}\,(J - I), \qquad
    Q = q_0 \otimes q_1 \otimes \cdots \otimes q_{L-1},

so :math:`Q[g, h]` is the probability that a copy of :math:`g` is :math:`h` (rows sum to 1;
every :math:`q_i`, hence :math:`Q`, is symmetric). Row-vector convention: a population
:math:`x` goes to :math:`x Q`. Applying :math:`Q` site by site costs
:math:`O(L k^{L+1})` and never forms the :math:`k^L \times k^L` matrix (Eigen 1971;
Swetina & Schuster 1982).

Every kernel here is *subtraction-free*: the output at a letter is
:math:`(1-\mu_i) x_a + \frac{\mu_i}{k-1} \sum_{b \ne a} x_b` with the sum over the other
letters formed from exclusive prefix and suffix sums, so all terms are non-negative and tiny
frequencies keep their relative accuracy (no cancellation, for any :math:`\mu_i \in [0,1]`).

* :func:`mutate` — ``x -> x Q`` (linear domain), a plain site-by-site reference kernel;
* :func:`log_mutate` — the same in the log domain, ``log x -> log(x Q)``, for populations
  whose entries under- or overflow float64;
* :func:`log_selection` — ``log g_T``, the selection weights relative to the fittest, with
  the ``T -> 0`` rule of :func:`quasispecies.semiring.boltzmann_exponent`;
* :class:`SymmetrisedOperator` (defined in :mod:`quasispecies.kernels.symmetrised`,
  re-exported here) — the cache-blocked, in-place kernel behind the eigensolver:
  :math:`v \mapsto G^{1/2} Q G^{1/2} v` with :math:`G = \mathrm{diag}(g)`, fused with the
  Lanczos three-term update, using three length-:math:`k^L` buffers besides the landscape's
  :math:`\log f` (:math:`g^{1/2}` is formed block by block inside the kernel).

The log-domain kernels add in the log semiring (:func:`quasispecies.semiring.plus`;
Goodman 1999).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.symmetrised import (
    BLOCK as BLOCK,
    SymmetrisedOperator as SymmetrisedOperator,
    make_plan as make_plan,
)
from quasispecies.semiring import boltzmann_exponent, plus

__all__ = [
    "BLOCK",
    "SymmetrisedOperator",
    "log_mutate",
    "log_selection",
    "log_site_weights",
    "make_plan",
    "mutate",
    "site_weights",
]


# ------------------------------------------------------------------- per-site weights
def site_weights(mu: np.ndarray, alphabet: int) -> np.ndarray:
    r"""``(L, 2)`` array of ``[1 - mu_i, mu_i / (k - 1)]``: diagonal and off-diagonal of
    ``q_i = (1 - mu_i) I + mu_i/(k-1) (J - I)``, the copying matrix of site ``i`` (Eigen 1971)."""
    mu = np.asarray(mu, dtype=np.float64)
    return np.stack([1.0 - mu, mu / (alphabet - 1)], axis=-1)


def log_site_weights(mu: np.ndarray, alphabet: int) -> np.ndarray:
    r"""``(L, 2)`` array of ``[log(1 - mu_i), log(mu_i / (k - 1))]`` (``-inf`` where zero)."""
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.stack([np.log1p(-mu), np.log(mu) - np.log(alphabet - 1)], axis=-1)


# ------------------------------------------------------------ one site, any semiring
def _others(y, k: int, add, zero) -> list:
    """``[(+)_{b != a} y[:, b, :] for a in range(k)]`` from exclusive prefix/suffix sums.

    Built from slices and returned as a list (the caller stacks): a formulation with a
    reversed axis lets XLA fuse all ``L`` site passes into one loop that recomputes
    ``2^L`` terms per element.
    """
    cols = [y[:, a, :] for a in range(k)]
    if k == 2:
        return [cols[1], cols[0]]
    prefix = [None] * k
    suffix = [None] * k
    for a in range(1, k):
        prefix[a] = cols[0] if a == 1 else add(prefix[a - 1], cols[a - 1])
    for a in range(k - 2, -1, -1):
        suffix[a] = cols[k - 1] if a == k - 2 else add(suffix[a + 1], cols[a + 1])
    out = []
    for a in range(k):
        parts = [p for p in (prefix[a], suffix[a]) if p is not None]
        out.append(parts[0] if len(parts) == 1 else add(parts[0], parts[1]))
    return out


def _site(x, pre: int, k: int, post: int, d, o):
    """Apply ``q`` (diagonal ``d``, off-diagonal ``o``) to the middle axis of ``(pre, k, post)``."""
    y = x.reshape(pre, k, post)
    oth = _others(y, k, jnp.add, 0.0)
    return jnp.stack([d * y[:, a, :] + o * oth[a] for a in range(k)], axis=1)


def _log_site(u, pre: int, k: int, post: int, ld, lo):
    """Log-domain :func:`_site`: ``(ld + u_a) (+) (lo + (+)_{b != a} u_b)`` in the log
    semiring, ``(+)`` = :func:`quasispecies.semiring.plus`."""
    y = u.reshape(pre, k, post)
    oth = _others(y, k, plus, -jnp.inf)
    return jnp.stack([plus(ld + y[:, a, :], lo + oth[a]) for a in range(k)], axis=1)


def _sites(x, lead: int, k: int, sites: range, nsites: int, trail: int, weights):
    """Apply ``q_i`` for ``i`` in ``sites`` to ``x`` viewed as ``(lead, k, ..., k, trail)``.

    ``x`` holds ``nsites`` site axes between a leading block of size ``lead`` and a trailing
    block of size ``trail``; ``sites`` are global site indices, the first of which is the
    first site axis.
    """
    first = sites.start
    for i in sites:
        j = i - first
        x = _site(x, lead * k**j, k, k ** (nsites - j - 1) * trail, weights[i, 0], weights[i, 1])
    return x


@partial(jax.jit, static_argnames=("alphabet",))
def mutate(x, weights, alphabet: int):
    r"""``x Q``: one round of copying errors, site by site, in :math:`O(L k^{L+1})`.

    Parameters
    ----------
    x : (k**L,) array
        Population (or any vector) over genotypes in lexicographic order.
    weights : (L, 2) array
        :func:`site_weights` of the per-site error rates.
    alphabet : int
        ``k``.

    Returns
    -------
    (k**L,) array ``y`` with ``y[h] = sum_g x[g] Q[g, h]``, ``Q = ⊗_i q_i`` (``Q`` is
    symmetric, so this is also ``Q x``). M. Eigen, *Naturwissenschaften* 58, 465 (1971).
    """
    L = weights.shape[0]
    return _sites(x, 1, alphabet, range(L), L, 1, weights).reshape(x.shape)


@partial(jax.jit, static_argnames=("alphabet",))
def log_mutate(u, log_weights, alphabet: int):
    r"""``log(exp(u) Q)`` computed in the log domain (``-inf`` entries allowed).

    .. math:: u'_h = \log \sum_g e^{u_g} Q[g, h]
              = \text{site by site: } \big(\log(1-\mu_i) + u_a\big) \oplus
                \big(\log\tfrac{\mu_i}{k-1} + \textstyle\bigoplus_{b \ne a} u_b\big)

    with :math:`a \oplus b = \log(e^a + e^b)` the log-semiring sum
    (:func:`quasispecies.semiring.plus`). Row-vector convention: ``exp(u)`` is a population
    over genotypes in lexicographic order.

    ``log_weights`` is :func:`log_site_weights`. Exact for populations spanning any range
    of magnitudes (no underflow), at ``L`` passes over the vector. Eigen (1971);
    semirings: J. Goodman, *Computational Linguistics* 25 (1999).
    """
    L = log_weights.shape[0]
    lw = log_weights
    x = u
    for i in range(L):
        x = _log_site(x, alphabet**i, alphabet, alphabet ** (L - i - 1), lw[i, 0], lw[i, 1])
    return x.reshape(u.shape)


def log_selection(lf, lmax, T):
    r"""``log g_T = (log f - max log f) / T``: log selection weights relative to the fittest.

    ``g_T = f^{1/T} / \max f^{1/T}`` in ``(0, 1]`` is the diagonal of
    ``W_T = \max f^{1/T} \, \mathrm{diag}(g_T) Q`` (Eigen 1971, with fitness ``f^{1/T}``).
    At ``T = 0`` the ``T -> 0+`` limit: ``0`` on the fittest genotypes (``lf >= lmax``),
    ``-inf`` elsewhere. One rule for the whole toolkit:
    :func:`quasispecies.semiring.boltzmann_exponent`.
    """
    return boltzmann_exponent(lf, lmax, T)
