r"""The cache-blocked symmetrised operator :math:`A = G^{1/2} Q G^{1/2}` behind the
sequence-space eigensolver.

Eigen's replication operator (row vectors, ``x_{t+1} \propto x_t W_T``) over genotypes
:math:`g \in \{0..k-1\}^L` in lexicographic order (index :math:`\sum_i g_i k^{L-1-i}`) is
:math:`W_T = \mathrm{diag}(f^{1/T})\, Q` with :math:`Q = \bigotimes_i q_i`,
:math:`q_i = (1-\mu_i) I + \frac{\mu_i}{k-1}(J - I)` (M. Eigen, *Naturwissenschaften* 58,
465 (1971)). With :math:`g_T = f^{1/T}/\max f^{1/T}` it is similar to the symmetric
:math:`A = G^{1/2} Q G^{1/2}`, :math:`G = \mathrm{diag}(g_T)`, whose Perron pair
:func:`quasispecies.kernels.lanczos.top_eigenpair` finds (C. Lanczos, 1950).

The kernel :func:`_step` applies :math:`A` (or :math:`G^{p} Q G^{p'}`) fused with the
Lanczos three-term update, in place, with the sites applied in cache-sized blocks as dense
Kronecker factors of up to ``GROUP`` letters (:func:`_kron_rows`): two passes over memory
per matvec, and only three length-:math:`k^L` buffers besides the landscape's
:math:`\log f` (:math:`g^{1/2}` is formed block by block inside the kernel).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.semiring import boltzmann_exponent

__all__ = ["BLOCK", "GROUP", "SymmetrisedOperator", "make_plan"]


class _Plan(NamedTuple):
    """Static layout of the blocked kernel: ``x`` viewed as ``(k**a, k**(L-a))``."""

    L: int
    k: int
    a: int  # "high" sites 0..a-1 act across rows; "low" sites a..L-1 inside each row
    rows: int  # rows per stage-1 block
    cols: int  # columns per stage-2 block


#: Elements per cache block (2 MiB of float64): a block stays in cache while every site of
#: its stage is applied to it, so the whole matvec makes two passes over memory. Measured on
#: a 2-core EPYC (1 MiB L2 per core, 32 MiB L3) at ``L = 22, 24``: ``2^18 .. 2^20`` are
#: within noise of each other and 1.5x faster than ``2^15`` (fewer, longer matrix products
#: and loop trips outweigh spilling from L2 to L3); ``2^21`` is slower again.
BLOCK = 1 << 18


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


def _g_power(e, p):
    """``g^p`` for ``p`` in {0, 1/2, 1} (traced) from ``e = g^(1/2)``."""
    return jnp.where(p == 0, 1.0, jnp.where(p == 1, e * e, e))


#: Largest dense factor ``k^b x k^b`` applied as one matrix product (``b`` sites at once).
#: Measured on a 2-core CPU at ``L = 20, 22``: 16 (four binary sites) is 3-4x faster than
#: applying the sites one at a time (whose strided slices vectorise poorly); 8..32 are
#: within noise of each other, larger factors waste flops (``k^b`` per element per group).
GROUP = 16


def _site_groups(sites: range, k: int) -> list[range]:
    """Split ``sites`` into consecutive groups of ``b`` sites, ``k^b <= GROUP``, sizes even."""
    n = len(sites)
    if n == 0:
        return []
    b = 1
    while k ** (b + 1) <= GROUP:
        b += 1
    ng = -(-n // b)
    base, extra = divmod(n, ng)
    out, s = [], sites.start
    for j in range(ng):
        size = base + (1 if j < extra else 0)
        out.append(range(s, s + size))
        s += size
    return out


def _group_matrix(weights, sites: range, k: int):
    r""":math:`q_i \otimes \cdots \otimes q_j` for the sites of a group (traced, ``k^b x k^b``).

    Every entry is a product of non-negative weights, so applying it is a sum of
    non-negative terms: subtraction-free like the site-by-site kernels.
    """
    eye = jnp.eye(k, dtype=weights.dtype)
    m = jnp.ones((1, 1), dtype=weights.dtype)
    for i in sites:
        q = weights[i, 0] * eye + weights[i, 1] * (1.0 - eye)
        m = jnp.kron(m, q)
    return m


def _kron_rows(x, mats):
    r"""Apply :math:`M_1 \otimes \cdots \otimes M_g` to the last axis of ``x`` ``(P, n)``.

    The "shuffle" algorithm: for each factor (last first) one matrix product
    ``(P n / m, m) @ (m, m)`` (a vectorised GEMM; every ``M`` here is symmetric) followed by
    a transpose that rotates the next factor's axis to the end. After all ``g`` factors
    the axes have rotated once: the result is ``(n, P)``, i.e. the transpose of the answer.
    Meant for cache-sized blocks, where the transposes are cheap.
    """
    y = x.reshape(-1)
    for m in reversed(mats):
        y = (y.reshape(-1, m.shape[0]) @ m).T.reshape(-1)
    return y.reshape(x.shape[1], x.shape[0])


def _half_power(d, lmax, T, stored: bool):
    """``e = g^(1/2)`` for a block of the diagonal ``d``: ``d`` itself when ``stored``, else
    formed from ``d = log f`` by :func:`~quasispecies.semiring.boltzmann_exponent` (one ``exp`` per element; see :func:`_step`)."""
    if stored:
        return d
    return jnp.exp(0.5 * boltzmann_exponent(d, lmax, T))


@partial(jax.jit, static_argnames=("plan", "elementwise", "stored"), donate_argnums=(0, 2))
def _step(
    u, v, w, diag, weights, coef, plan: _Plan, elementwise: bool = False, stored: bool = False
):
    r"""``u <- cA g^post Q (g^pre sv v) + cv sv v + cu su u + c1 g^(1/2)``, in place.

    ``diag`` is ``log f`` (default): ``e = g^(1/2) = exp((log f - max log f) / 2T)`` is
    formed block by block where it is used, so the only ``k^L`` buffers are ``u, v, w`` and
    the landscape itself. Measured on 2 cores at ``L = 22, 24``: the two ``exp`` per element
    per matvec cost about 5 % of the kernel's time. With ``stored=True``, ``diag`` is ``e``
    itself, precomputed (:func:`_sqrt_g`): a fourth ``k^L`` buffer for those 5 %.
    ``coef = [sv, su, cA, cv, cu, c1, pre, post, lmax, T]`` (``pre, post`` in {0, 1/2, 1};
    every buffer must hold finite numbers, a zero coefficient drops its term). With
    ``elementwise`` the operator term is skipped (no pass over ``w``). Returns
    ``(u, w, stats)`` with ``stats = [<sv v, u>, ||u||^2, ||u||_1, sum u]`` of the new ``u``.

    Stage 1 applies the low sites row block by row block (reading ``v``, writing ``w``);
    stage 2 applies the high sites column block by column block (reading ``w``, ``v``,
    ``u``, writing ``u``). Both are in place (``dynamic_update_slice`` on a loop carry), and
    each block stays in cache while all of its stage's sites are applied -- in groups of up
    to ``GROUP`` letters-worth of sites, as dense Kronecker factors (:func:`_kron_rows`).
    """
    L, k, a, R, C = plan
    sv, su, cA, cv, cu, c1, pre, post, lmax, T = (coef[i] for i in range(10))
    dt = v.dtype

    def half(db):
        return _half_power(db, lmax, T, stored)

    def combine(y, vb, ub, db):
        eb = half(db)
        out = (cv * sv) * vb + (cu * su) * ub + c1 * eb
        if y is not None:
            out = out + cA * _g_power(eb, post) * y
        stats = jnp.stack(
            [jnp.sum(sv * vb * out), jnp.sum(out * out), jnp.sum(jnp.abs(out)), jnp.sum(out)]
        )
        return out, stats

    def pre_scale(vb, db):
        return _g_power(half(db), pre) * (sv * vb)

    low = [_group_matrix(weights, g, k) for g in _site_groups(range(a, L), k)]
    high = [_group_matrix(weights, g, k) for g in _site_groups(range(a), k)]

    if elementwise or a == 0:  # one block, or no operator term
        y = None
        if not elementwise:
            y = _kron_rows(pre_scale(v, diag).reshape(1, -1), low).reshape(v.shape)
        u, stats = combine(y, v, u, diag)
        return u, w, stats

    A, B = k**a, k ** (L - a)
    V, U, Wm, D = v.reshape(A, B), u.reshape(A, B), w.reshape(A, B), diag.reshape(A, B)

    def stage1(j, Wm):
        r0 = j * R
        vb = jax.lax.dynamic_slice_in_dim(V, r0, R, 0)
        db = jax.lax.dynamic_slice_in_dim(D, r0, R, 0)
        z = _kron_rows(pre_scale(vb, db), low).T
        return jax.lax.dynamic_update_slice_in_dim(Wm, z, r0, 0)

    Wm = jax.lax.fori_loop(0, A // R, stage1, Wm)

    def stage2(j, carry):
        U, stats = carry
        c0 = j * C
        y = jax.lax.dynamic_slice_in_dim(Wm, c0, C, 1)
        y = _kron_rows(y.T, high)  # (A, C): the high sites act down the columns
        vb = jax.lax.dynamic_slice_in_dim(V, c0, C, 1)
        ub = jax.lax.dynamic_slice_in_dim(U, c0, C, 1)
        db = jax.lax.dynamic_slice_in_dim(D, c0, C, 1)
        out, s = combine(y, vb, ub, db)
        return jax.lax.dynamic_update_slice_in_dim(U, out, c0, 1), stats + s

    U, stats = jax.lax.fori_loop(0, B // C, stage2, (U, jnp.zeros(4, dt)))
    return U.reshape(u.shape), Wm.reshape(w.shape), stats


@jax.jit
def _sqrt_g(log_fitness, T):
    """``e = g^(1/2)`` with ``g = exp((log f - max log f) / T)`` in ``(0, 1]`` (underflow to 0
    is the right limit at small ``T``; at ``T = 0`` the indicator of the fittest)."""
    return jnp.exp(0.5 * boltzmann_exponent(log_fitness, jnp.max(log_fitness), T))


@partial(jax.jit, donate_argnums=(0,))
def _axpy(u, v, su, sv, alpha):
    """``u <- su u - alpha sv v`` in place; returns ``(u, ||u||^2)``."""
    out = su * u - (alpha * sv) * v
    return out, jnp.sum(out * out)


@partial(jax.jit, static_argnames=("stored",))
def _start(diag, lmax, T, stored: bool):
    """A fresh ``g^(1/2)`` and its squared norm: the Lanczos start vector (unnormalised).

    A new buffer in both cases (``x + 0.0`` is not folded to ``x`` in floating point), since
    the solver donates and overwrites its start vector.
    """
    e = _half_power(diag, lmax, T, stored) + 0.0
    return e, jnp.sum(e * e)


@partial(jax.jit, donate_argnums=(0,))
def _normalise_abs(u):
    """``|u| / sum |u|`` in place (the Perron vector is positive; rounding may flip signs of
    entries at the ``1e-16`` level)."""
    a = jnp.abs(u)
    return a / jnp.sum(a)


@partial(jax.jit, donate_argnums=(0,))
def _scale_abs(u, l1):
    """``|u| / l1`` in place: :func:`_normalise_abs` with the sum already known (a full-length
    reduction in XLA CPU allocates a scratch of half a vector)."""
    return jnp.abs(u) / l1


@partial(jax.jit, donate_argnums=(0,))
def _zero(u):
    """``u <- 0`` in place (``zeros_like`` would not reuse the donated buffer: one more vector)."""
    return u.at[:].set(0.0)


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

    By default this object holds no ``k^L`` buffer of its own: ``g^(1/2)`` is formed block by
    block from the landscape's ``log f`` (only referenced) inside every kernel call, so a
    solve needs the landscape plus the solver's three buffers ``u, v, w``, which it passes
    through :meth:`step` (``u`` is updated in place by buffer donation with the fused
    three-term recurrence). ``store_sqrt_g=True`` precomputes ``g^(1/2)`` once instead (one
    more ``k^L`` vector, about 5 % faster; see :func:`_step`). Its Perron pair is found by
    :func:`quasispecies.kernels.lanczos.top_eigenpair` (Lanczos 1950); Eigen (1971).
    """

    def __init__(
        self,
        log_fitness,
        weights,
        length: int,
        alphabet: int,
        T: float,
        block: int = BLOCK,
        *,
        store_sqrt_g: bool = False,
    ):
        self.log_fitness = log_fitness
        self.T = float(T)
        self.lmax = float(jnp.max(log_fitness))
        self.stored = bool(store_sqrt_g)
        self.diag = _sqrt_g(log_fitness, self.T) if self.stored else log_fitness
        self.weights = jnp.asarray(weights)
        self.plan = make_plan(length, alphabet, block)
        self.size = alphabet**length
        self.dtype = log_fitness.dtype
        self.matvecs = 0

    # the protocol used by quasispecies.kernels.lanczos -------------------------------------
    def start(self):
        """``(v, ||v||^2)`` with ``v = g^(1/2)``: the (unnormalised) Krylov start vector."""
        return _start(self.diag, self.lmax, self.T, stored=self.stored)

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
        coef = jnp.asarray([sv, su, cA, cv, cu, c1, pre, post, self.lmax, self.T], dtype=self.dtype)
        if not elementwise:
            self.matvecs += 1
        u, w, stats = _step(
            u,
            v,
            w,
            self.diag,
            self.weights,
            coef,
            plan=self.plan,
            elementwise=elementwise,
            stored=self.stored,
        )
        return u, w, np.asarray(stats)

    @staticmethod
    def axpy(u, v, su: float, sv: float, alpha: float):
        u, nrm2 = _axpy(u, v, su, sv, alpha)
        return u, float(nrm2)

    @staticmethod
    def normalise_abs(u, l1: float | None = None):
        """``|u| / sum |u|`` in place; pass ``l1 = sum |u|`` when known (e.g. ``stats[2]``)."""
        return _normalise_abs(u) if l1 is None else _scale_abs(u, l1)

    @staticmethod
    def zero(u):
        return _zero(u)
