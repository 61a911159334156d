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
* :class:`SymmetrisedOperator` — the cache-blocked, in-place kernel behind the eigensolver:
  :math:`v \mapsto G^{1/2} Q G^{1/2} v` with :math:`G = \mathrm{diag}(g)`, fused with the
  Lanczos three-term update, using only three length-:math:`k^L` buffers.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "SymmetrisedOperator",
    "log_mutate",
    "log_site_weights",
    "mutate",
    "site_weights",
]


# ------------------------------------------------------------------- per-site weights
def site_weights(mu: np.ndarray, alphabet: int) -> np.ndarray:
    r"""``(L, 2)`` array of ``[1 - mu_i, mu_i / (k - 1)]``: diagonal and off-diagonal of ``q_i``."""
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
    """Log-domain :func:`_site`: ``logaddexp(ld + u_a, lo + logsumexp_{b != a} u_b)``."""
    y = u.reshape(pre, k, post)
    oth = _others(y, k, jnp.logaddexp, -jnp.inf)
    return jnp.stack([jnp.logaddexp(ld + y[:, a, :], lo + oth[a]) for a in range(k)], axis=1)


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
    (k**L,) array ``y`` with ``y[h] = sum_g x[g] Q[g, h]`` (``Q`` is symmetric, so this is
    also ``Q x``).
    """
    L = weights.shape[0]
    return _sites(x, 1, alphabet, range(L), L, 1, weights).reshape(x.shape)


@partial(jax.jit, static_argnames=("alphabet",))
def log_mutate(u, log_weights, alphabet: int):
    r"""``log(exp(u) Q)`` computed in the log domain (``-inf`` entries allowed).

    .. math:: u'_h = \log \sum_g e^{u_g} Q[g, h]
              = \text{site by site: } \operatorname{logaddexp}\big(\log(1-\mu_i) + u_a,\;
                \log\tfrac{\mu_i}{k-1} + \operatorname{logsumexp}_{b \ne a} u_b\big)

    ``log_weights`` is :func:`log_site_weights`. Exact for populations spanning any range
    of magnitudes (no underflow), at ``L`` passes over the vector.
    """
    L = log_weights.shape[0]
    lw = log_weights
    x = u
    for i in range(L):
        x = _log_site(x, alphabet**i, alphabet, alphabet ** (L - i - 1), lw[i, 0], lw[i, 1])
    return x.reshape(u.shape)


# ------------------------------------------------------ the blocked symmetrised operator
class _Plan(NamedTuple):
    """Static layout of the blocked kernel: ``x`` viewed as ``(k**a, k**(L-a))``."""

    L: int
    k: int
    a: int  # "high" sites 0..a-1 act across rows; "low" sites a..L-1 inside each row
    rows: int  # rows per stage-1 block
    cols: int  # columns per stage-2 block


#: Elements per cache block (256 KiB of float64): a block stays in L2 while every site
#: of its stage is applied to it, so the whole matvec makes two passes over memory.
BLOCK = 1 << 15


def make_plan(length: int, alphabet: int, block: int = BLOCK) -> _Plan:
    """Choose the split ``L = a + b`` so that a row (``k**b``) fits in one block."""
    k, L = alphabet, length
    if k**L <= block:
        return _Plan(L, k, 0, 1, 1)
    b = 1
    while b < L - 1 and k ** (b + 1) <= block:
        b += 1
    a = L - b
    rows = 1
    while rows * k <= k**a and rows * k * k**b <= block:
        rows *= k
    cols = 1
    while cols * k <= k**b and cols * k * k**a <= block:
        cols *= k
    return _Plan(L, k, a, rows, cols)


def _log_g(lf, lmax, T):
    """``log g = (log f - max log f) / T``; at ``T = 0`` the ``T -> 0+`` limit (0 or ``-inf``)."""
    Tsafe = jnp.where(T > 0, T, 1.0)
    return jnp.where(T > 0, (lf - lmax) / Tsafe, jnp.where(lf >= lmax, 0.0, -jnp.inf))


def _g_power(e, p):
    """``g^p`` for ``p`` in {0, 1/2, 1} (traced) from ``e = g^(1/2)``."""
    return jnp.where(p == 0, 1.0, jnp.where(p == 1, e * e, e))


@partial(jax.jit, static_argnames=("plan", "elementwise"), donate_argnums=(0, 2))
def _step(u, v, w, log_fitness, weights, lmax, T, coef, plan: _Plan, elementwise: bool = False):
    r"""``u <- cA g^post Q (g^pre sv v) + cv sv v + cu su u + c1 g^(1/2)``, in place.

    ``coef = [sv, su, cA, cv, cu, c1, pre, post]`` (``pre, post`` in {0, 1/2, 1}; every buffer
    must hold finite numbers, a zero coefficient drops its term). With ``elementwise`` the
    operator term is skipped (no pass over ``w``). Returns ``(u, w, stats)`` with
    ``stats = [<sv v, u>, ||u||^2, ||u||_1, sum u]`` of the new ``u``.

    Stage 1 applies the low sites row block by row block (reading ``v``, writing ``w``);
    stage 2 applies the high sites column block by column block (reading ``w``, ``v``,
    ``u``, writing ``u``). Both are in place (``dynamic_update_slice`` on a loop carry), so
    the only ``k^L`` buffers are ``u``, ``v`` and ``w`` besides the landscape ``log f``, and
    each block stays in cache while all of its stage's sites are applied.
    """
    L, k, a, R, C = plan
    sv, su, cA, cv, cu, c1, pre, post = (coef[i] for i in range(8))
    dt = v.dtype

    def combine(y, vb, ub, lfb):
        e = jnp.exp(0.5 * _log_g(lfb, lmax, T))
        out = (cv * sv) * vb + (cu * su) * ub + c1 * e
        if y is not None:
            out = out + cA * _g_power(e, post) * y
        stats = jnp.stack(
            [jnp.sum(sv * vb * out), jnp.sum(out * out), jnp.sum(jnp.abs(out)), jnp.sum(out)]
        )
        return out, stats

    def pre_scale(vb, lfb):
        return _g_power(jnp.exp(0.5 * _log_g(lfb, lmax, T)), pre) * (sv * vb)

    if elementwise or a == 0:  # one block, or no operator term
        y = None
        if not elementwise:
            y = _sites(pre_scale(v, log_fitness), 1, k, range(L), L, 1, weights).reshape(v.shape)
        u, stats = combine(y, v, u, log_fitness)
        return u, w, stats

    A, B = k**a, k ** (L - a)
    V, U, Wm, LF = v.reshape(A, B), u.reshape(A, B), w.reshape(A, B), log_fitness.reshape(A, B)

    def stage1(j, Wm):
        r0 = j * R
        vb = jax.lax.dynamic_slice_in_dim(V, r0, R, 0)
        lfb = jax.lax.dynamic_slice_in_dim(LF, r0, R, 0)
        z = _sites(pre_scale(vb, lfb), R, k, range(a, L), L - a, 1, weights).reshape(R, B)
        return jax.lax.dynamic_update_slice_in_dim(Wm, z, r0, 0)

    Wm = jax.lax.fori_loop(0, A // R, stage1, Wm)

    def stage2(j, carry):
        U, stats = carry
        c0 = j * C
        y = jax.lax.dynamic_slice_in_dim(Wm, c0, C, 1)
        y = _sites(y, 1, k, range(a), a, C, weights).reshape(A, C)
        vb = jax.lax.dynamic_slice_in_dim(V, c0, C, 1)
        ub = jax.lax.dynamic_slice_in_dim(U, c0, C, 1)
        lfb = jax.lax.dynamic_slice_in_dim(LF, c0, C, 1)
        out, s = combine(y, vb, ub, lfb)
        return jax.lax.dynamic_update_slice_in_dim(U, out, c0, 1), stats + s

    U, stats = jax.lax.fori_loop(0, B // C, stage2, (U, jnp.zeros(4, dt)))
    return U.reshape(u.shape), Wm.reshape(w.shape), stats


@partial(jax.jit, donate_argnums=(0,))
def _axpy(u, v, su, sv, alpha):
    """``u <- su u - alpha sv v`` in place; returns ``(u, ||u||^2)``."""
    out = su * u - (alpha * sv) * v
    return out, jnp.sum(out * out)


@jax.jit
def _start(log_fitness, lmax, T):
    """``g^(1/2)`` and its squared norm: the Lanczos start vector (unnormalised)."""
    s = jnp.exp(0.5 * _log_g(log_fitness, lmax, T))
    return s, jnp.sum(s * s)


@partial(jax.jit, donate_argnums=(0,))
def _normalise_abs(u):
    """``|u| / sum |u|`` in place (the Perron vector is positive; rounding may flip signs of
    entries at the ``1e-16`` level)."""
    a = jnp.abs(u)
    return a / jnp.sum(a)


@partial(jax.jit, donate_argnums=(0,))
def _zero(u):
    return jnp.zeros_like(u)


class SymmetrisedOperator:
    r"""The symmetric operator :math:`A = G^{1/2} Q G^{1/2}` on :math:`k^L` genotypes.

    With :math:`g = f^{1/T} / \max f^{1/T}` (so :math:`0 < g \le 1`; at ``T = 0`` the
    indicator of the fittest genotypes), the replication operator
    :math:`W_T = \mathrm{diag}(f^{1/T})\, Q` is similar to :math:`A`:
    :math:`W_T = \max f^{1/T} \cdot G^{1/2} (G^{1/2} Q G^{1/2}) G^{-1/2}`. ``A`` is
    symmetric because ``Q`` is (uniform substitution), so its Perron pair can be found by
    Lanczos. The left Perron vector of :math:`W_T` is recovered without dividing by ``g``:
    if :math:`A y = \theta y` then :math:`x = (g^{1/2} \circ y)\, Q / \theta` satisfies
    :math:`x W_T = \theta \max f^{1/T} x`.

    This object holds no ``k^L`` buffer of its own besides the landscape ``log f``; the
    solver passes three buffers ``u, v, w`` through :meth:`step`, which updates ``u`` in
    place (buffer donation) with the fused three-term recurrence.
    """

    def __init__(
        self, log_fitness, weights, length: int, alphabet: int, T: float, block: int = BLOCK
    ):
        self.log_fitness = log_fitness
        self.weights = jnp.asarray(weights)
        self.plan = make_plan(length, alphabet, block)
        self.size = alphabet**length
        self.lmax = jnp.max(log_fitness)
        self.T = jnp.asarray(float(T), dtype=log_fitness.dtype)
        self.dtype = log_fitness.dtype
        self.matvecs = 0

    # the protocol used by quasispecies.lanczos -------------------------------------
    def start(self):
        """``(v, ||v||^2)`` with ``v = g^(1/2)``: the (unnormalised) Krylov start vector."""
        return _start(self.log_fitness, self.lmax, self.T)

    def zeros(self):
        return jnp.zeros(self.size, self.dtype)

    def step(
        self,
        u,
        v,
        w,
        *,
        sv=1.0,
        su=1.0,
        cA=1.0,
        cv=0.0,
        cu=0.0,
        c1=0.0,
        pre: float = 0.5,
        post: float = 0.5,
        elementwise: bool = False,
    ):
        """``u <- cA g^post Q (g^pre sv v) + cv sv v + cu su u + c1 g^(1/2)``; see :func:`_step`.

        ``elementwise=True`` drops the operator term (no matvec). Every buffer must hold
        finite numbers (a zero coefficient multiplies it). Returns ``(u, w, stats)``,
        ``stats`` a NumPy array ``[<sv v, u>, ||u||^2, ||u||_1, sum u]``.
        """
        coef = jnp.asarray([sv, su, cA, cv, cu, c1, pre, post], dtype=self.dtype)
        if not elementwise:
            self.matvecs += 1
        u, w, stats = _step(
            u,
            v,
            w,
            self.log_fitness,
            self.weights,
            self.lmax,
            self.T,
            coef,
            plan=self.plan,
            elementwise=elementwise,
        )
        return u, w, np.asarray(stats)

    @staticmethod
    def axpy(u, v, su: float, sv: float, alpha: float):
        u, nrm2 = _axpy(u, v, su, sv, alpha)
        return u, float(nrm2)

    @staticmethod
    def normalise_abs(u):
        return _normalise_abs(u)

    @staticmethod
    def zero(u):
        return _zero(u)
