r"""Finite-horizon kernels on the pull (sliced-ELL, by destination) operator.

The operator (:mod:`quasispecies.kernels.pull_layout`, re-exported here) stores
``W_T[s, s'] = sum_a pi0[s,a] P[s,a,s'] exp(R[s,a,s'] / T)`` by destination, so one step of
``n_{t+1} = n_t W_T`` (row vectors) is, for every destination ``s'``,

.. math:: n_{t+1}(s') = \sum_{j < d(s')} n_t(p_j(s'))\, K_j(s')\, e^{R_j(s') / T}:

``D`` fused gather-multiply-adds per bucket, and no scatter. Three kernels share it, chosen
per temperature on the host:

* **linear** (``T > 0``, :func:`linear_step`): ``n`` itself, renormalised by its maximum
  each step, with ``w = K e^{(R - R_max)/T}``. A guard checks every step that no product
  ``n w`` leaves the normal float64 range (smallest positive ``n`` times smallest ``w`` above
  ``1e-300``, see :data:`GUARD_LOG`); then every operation is exactly rounded and the
  result equals the log-domain one to float64 rounding. If the guard trips, the
  temperature is redone by
* **log** (``T > 0``, :func:`log_step`): ``u = T log n`` with a log-sum-exp per destination
  (:func:`quasispecies.semiring.ell.ell_scaled_lse`), exactly the recursion of
  :func:`quasispecies.kernels.operators.forward` (no underflow at any ``T``);
* **pair** (any ``T``, used at ``T = 0``, :func:`pair_step`): the ``(u, c)`` pair of
  :func:`quasispecies.semiring.core.reduce_pair`, i.e. max-plus with tie multiplicities.

Only the linear fast path computes here; every log-domain reduction is the semiring's
(:mod:`quasispecies.semiring`). Every reduction across states is a ``max`` (order
independent), so the result does not depend on how rows are split over devices (see
:mod:`quasispecies.kernels.sharding`).

*Kernel interface.* ``arrs`` is :meth:`PullOperator.device_arrays` (with the leading
``parts`` axis); :func:`local_arrays` takes one part's slice, which the step functions
read. ``static`` is :meth:`PullOperator.static`. A step maps the full internal vector (all
parts) to this part's rows. The ``*_batch`` functions run one kernel for a batch of
temperatures; ``gather`` turns this part's rows into the full vector (identity on one
device, ``all_gather`` under ``shard_map``) and ``gmax`` is the max over all parts.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.pull_layout import (
    MAX_WIDTH as MAX_WIDTH,
    WIDTHS as WIDTHS,
    PullOperator as PullOperator,
    build as build,
    is_cached as is_cached,
    pull_operator as pull_operator,
    to_internal as to_internal,
    to_original as to_original,
)
from quasispecies.kernels.pull_steps import (
    linear_step as linear_step,
    linear_weights as linear_weights,
    local_arrays as local_arrays,
    log_step as log_step,
    pair_step as pair_step,
)
from quasispecies.semiring.core import init_pair, softmax_pair
from quasispecies.semiring.ell import (
    exp_normalise,
    population_at,
    shift_max,
    shift_max_pair,
)

__all__ = [
    "GUARD_LOG",
    "MAX_WIDTH",
    "WIDTHS",
    "HorizonResult",
    "PullOperator",
    "build",
    "chunk_size",
    "horizon",
    "is_cached",
    "linear_batch",
    "linear_step",
    "linear_weights",
    "local_arrays",
    "log_batch",
    "log_step",
    "n_to_x",
    "pair_batch",
    "pair_step",
    "pull_operator",
    "to_internal",
    "to_original",
]

#: The linear kernel is trusted while ``log(min positive n) + log(min w) >= GUARD_LOG``:
#: every product ``n w`` is then a normal float64 (``> 2.2e-308``) with room to spare, so no
#: term of any sum is flushed or loses relative precision.
GUARD_LOG = float(np.log(1e-300))

#: Normalised population from ``log n`` (``-inf`` = zero): ``exp(z) / sum exp(z)``.
n_to_x = exp_normalise


# --------------------------------------------------------------- one temperature
def _identity(v):
    return v


def _max(v, gmax):
    """Max over the state axis (per column of a chunk), across parts."""
    return gmax(jnp.max(v, axis=0, initial=-jnp.inf))


def _row(v):
    """A chunk's ``(c,)`` vector as a ``(1, c)`` row against ``(m, c)`` columns (scalars as is)."""
    return v if v.ndim == 0 else v[None]


def _pow2_scale(m):
    """``(2^-e, e)`` with ``m = f 2^e``, ``f in [0.5, 1)`` (``m > 0``): exact rescaling."""
    _, e = jnp.frexp(m)
    return jnp.ldexp(jnp.ones_like(m), -e), e


def _run_linear(arrs, T, n0, steps, static, rmax, history, gather, gmax):
    """Guarded linear-domain run. Returns ``(history or None, r, scale, e_total, ok)``:
    ``n_steps = r scale`` and ``log_total = e_total log 2`` (:func:`_finish_linear`).

    ``n`` is rescaled each step by the power of two nearest below its maximum (exact;
    ``log_total = (sum of exponents) log 2``): no transcendental function in the loop, and
    bitwise the same result for any split over devices. The loop carries ``r_t`` with
    ``n_t = r_t 2^-e_t`` (``e_t`` the exponent of ``max r_t``) and forms
    ``r_{t+1} = (r_t W) 2^-e_t``: one multiply per output row, fused with the step and with
    the one pass over ``r_{t+1}`` for its maximum and smallest positive entry (per step,
    one sweep over the edges and one over the states). The guard (binary exponents) asks
    that the products ``r_t(p) w`` and the scaled sums stay normal:
    ``log2 min r + log2 min w - max(e, 0) >= GUARD_LOG``; then scaling the output is
    bitwise scaling the input, and the result is the log-domain one to float64 rounding.

    ``T`` is a scalar (``n0`` of shape ``(m,)``) or a chunk ``(c,)`` of temperatures run
    side by side (``n0`` of shape ``(m, c)``): every per-temperature quantity (scale,
    exponent, guard) is then a ``(c,)`` vector and each column is bitwise the ``c = 1`` run.
    """
    ws, tw, logwmin = linear_weights(arrs, T, rmax)
    logwmin = -gmax(-logwmin)  # min over all parts
    guard_exp = int(np.floor(GUARD_LOG / np.log(2.0)))
    wexp = jnp.floor(logwmin / np.log(2.0))

    def rescale(r):
        """``(scale, e, alive, guard_ok)`` for ``n = r * scale``."""
        m = _max(r, gmax)
        mn = -_max(jnp.where(r > 0, -r, -jnp.inf), gmax)
        alive = m > 0
        scale, e = _pow2_scale(jnp.where(alive, m, 1.0))
        _, emin = jnp.frexp(jnp.where(jnp.isfinite(mn), mn, 1.0))
        # the next step forms r(p) w (exponent >= emin - 1 + wexp) and scales its sums by
        # 2^-e: both must stay normal
        ok = (emin - 1 + wexp - jnp.maximum(e, 0) >= guard_exp) & jnp.isfinite(mn)
        return scale, e, alive, ok

    def step(carry, _):
        r, scale, e_total, ok = carry
        r = linear_step(arrs, ws, tw, gather(r), static) * _row(scale)
        scale, e, alive, good = rescale(r)
        ok = ok & alive & good
        return (r, scale, e_total + e, ok), (r * _row(scale) if history else None)

    scale, e0, _, ok0 = rescale(n0)
    init = (n0, scale, e0, ok0)
    (r, scale, e_total, ok), ns = jax.lax.scan(step, init, None, length=steps)
    return ns, r, scale, e_total, ok


def _finish_linear(r, scale, e_total, T, steps, rmax):
    """``(u, x)`` of one temperature (1-D ``r``) from :func:`_run_linear`'s final state."""
    n = r * scale
    logn = jnp.where(n > 0, jnp.log(jnp.where(n > 0, n, 1.0)), -jnp.inf)
    log_total = e_total.astype(n.dtype) * np.log(2.0)
    u = jnp.where(jnp.isfinite(logn), T * (logn + log_total) + steps * rmax, -jnp.inf)
    return u, n_to_x(logn)


def _run_log(arrs, T, u0, steps, static, history, gather, gmax):
    def step(carry, _):
        u, log_total = carry
        v, ms = shift_max(log_step(arrs, gather(u), T, static), gmax)
        return (v, log_total + ms), (v if history else None)

    (u, log_total), us = jax.lax.scan(step, (u0, jnp.zeros((), u0.dtype)), None, length=steps)
    return us, u, log_total


def _run_pair(arrs, T, u0, c0, steps, static, history, gather, gmax):
    def step(carry, _):
        u, c, log_total = carry
        v, d = pair_step(arrs, gather(u), gather(c), T, static)
        v, d, ms = shift_max_pair(v, d, gmax)
        return (v, d, log_total + ms), ((v, d) if history else None)

    init = (u0, c0, jnp.zeros((), u0.dtype))
    (u, c, log_total), hist = jax.lax.scan(step, init, None, length=steps)
    return hist, u, c, log_total


# ------------------------------------------------------------ batches of temperatures
def linear_batch(arrs, Ts, x0, rmax, steps, static, history, gather=_identity, gmax=_identity):
    r"""Guarded linear kernel for each of ``Ts`` (``T > 0``) in turn (``lax.map``).

    ``arrs`` has the parts axis (part 0 is used: one device, or this device's slice under
    ``shard_map``); ``x0`` is internal-order. ``Ts`` is ``(K,)`` (one temperature per
    run) or ``(K, c)``: ``K`` runs of ``c`` temperatures side by side (:func:`_run_linear`;
    one gather of a predecessor row serves the whole chunk). Returns ``(xs, u, x, ok)``
    with one leading row per temperature (``K`` or ``K c``, chunks in order): the
    normalised history (or None), ``u_steps = T log n_steps``, ``x_steps`` and whether the
    :data:`GUARD_LOG` guard held (if not, redo that ``T`` with :func:`log_batch`).
    """
    arrs = local_arrays(arrs, 0)
    Ts = jnp.asarray(Ts)

    def columns(f, a):
        # per temperature, the 1-D computation of c = 1 (a loop over the chunk's columns)
        return jax.lax.map(f, jnp.moveaxis(a, -1, 0))

    def one(T):
        chunk = T.ndim == 1
        n0 = jnp.broadcast_to(x0[:, None], (*x0.shape, T.shape[0])) if chunk else x0
        ns, r, scale, e_total, ok = _run_linear(
            arrs, T, n0, steps, static, rmax, history, gather, gmax
        )
        norm = lambda h: h / jnp.sum(h, axis=-1, keepdims=True)  # noqa: E731
        if not chunk:
            return (
                (norm(ns) if history else None),
                *_finish_linear(r, scale, e_total, T, steps, rmax),
                ok,
            )
        xs = columns(norm, ns) if history else None
        u, x = jax.lax.map(lambda a: _finish_linear(*a, steps, rmax), (r.T, scale, e_total, T))
        return xs, u, x, ok

    out = jax.lax.map(one, Ts)
    if Ts.ndim == 1:
        return out
    return tuple(None if a is None else a.reshape(-1, *a.shape[2:]) for a in out)


def log_batch(arrs, Ts, x0, steps, static, history, gather=_identity, gmax=_identity):
    r"""Log-domain kernel (:func:`log_step`, ``T > 0``) for each of ``Ts``: ``(xs, u, x)``.

    ``u_{t+1} = T log sum_j exp((u_t(p_j) + R_j)/T + log K_j)`` from
    ``u_0 = T log x0``, rescaled by its maximum each step (added back at the end).
    """
    arrs = local_arrays(arrs, 0)

    def one(T):
        u0 = init_pair(x0, T).u
        us, u, log_total = _run_log(arrs, T, u0, steps, static, history, gather, gmax)
        xs = jax.vmap(lambda v: population_at(v, T))(us) if history else None
        return xs, jnp.where(jnp.isfinite(u), u + log_total, -jnp.inf), population_at(u, T)

    return jax.lax.map(one, Ts)


def pair_batch(arrs, Ts, x0, steps, static, history, gather=_identity, gmax=_identity):
    r"""Pair kernel (:func:`pair_step`, any ``T``; max-plus with ties at ``T = 0``).

    Returns ``(xs, u, x, c)`` per temperature; ``x`` is the ``T -> 0+`` limit at ``T = 0``
    (:func:`quasispecies.semiring.core.softmax_pair`) and ``c`` the final multiplicity.
    """
    arrs = local_arrays(arrs, 0)

    def one(T):
        u0, c0 = init_pair(x0, T)
        hist, u, c, log_total = _run_pair(arrs, T, u0, c0, steps, static, history, gather, gmax)
        xs = jax.vmap(lambda a, b: softmax_pair(a, b, T, axis=0))(*hist) if history else None
        u_out = jnp.where(jnp.isfinite(u), u + log_total, -jnp.inf)
        return xs, u_out, softmax_pair(u, c, T, axis=0), c

    return jax.lax.map(one, Ts)


_STATIC = ("steps", "static", "history")
_linear_all = jax.jit(linear_batch, static_argnames=_STATIC)
_log_all = jax.jit(log_batch, static_argnames=_STATIC)
_pair_all = jax.jit(pair_batch, static_argnames=_STATIC)


#: Most temperatures the linear kernel runs side by side (:func:`chunk_size`).
MAX_CHUNK = 8
#: Bytes the chunk's weight tables (``c`` per edge slot) may take.
CHUNK_BYTES = 256 * 2**20


def chunk_size(op: PullOperator, count: int, column_bytes: int = 0) -> int:
    r"""Temperatures the linear kernel of :func:`horizon` runs side by side, for ``count``.

    A power of two (so a sweep compiles for one or two chunk shapes): the smallest one
    covering ``count``, at most :data:`MAX_CHUNK`, and no more than :data:`CHUNK_BYTES` of
    weight tables (``c`` float64 per padded edge slot) plus ``column_bytes`` per column
    (the history a run returns, say). Side by side, each step gathers a
    predecessor's ``c`` values in one memory access and pays the step's fixed costs once
    for the chunk. Measured on 2 cores (``benchmarks/README.md``), a temperature-step in a
    chunk of 8 against one temperature at a time: 2.4x faster at ``S = 2e3`` (fixed costs
    dominate), level at ``2e4`` (the gathers do), 1.27x at ``1e6`` (1.12x with 4).
    """
    if count <= 1:
        return 1
    slots = sum(int(np.prod(p.shape[1:])) for p in op.preds) + int(op.tail_src.shape[1])
    by_memory = max(1, CHUNK_BYTES // max(1, 8 * slots + column_bytes))
    c = 1
    while c < min(count, MAX_CHUNK, by_memory):
        c *= 2
    return c if c <= by_memory else c // 2


class HorizonResult(NamedTuple):
    """Finite-horizon path sums for a batch of temperatures (original state order).

    ``history`` (K, steps + 1, S) or None; ``u`` (K, S) ``= T log n_steps``;
    ``x`` (K, S) the normalised ``n_steps`` (None when not asked for); ``kernel`` (K,)
    which kernel produced each row (``"linear"``, ``"log"`` or ``"pair"``).
    """

    history: np.ndarray | None
    u: np.ndarray
    x: np.ndarray | None
    kernel: np.ndarray


def horizon(
    mdp,
    temperatures,
    steps: int,
    x0: np.ndarray,
    *,
    history: bool = False,
    kernel: str = "auto",
    op: PullOperator | None = None,
    population: bool = True,
) -> HorizonResult:
    """``u_steps = T log n_steps`` and ``x_steps`` for each temperature (1-D array).

    ``x0`` is a probability vector over the original states. ``kernel="auto"`` runs the
    guarded linear kernel for ``T > 0`` and redoes on the log kernel every temperature
    whose guard tripped; ``T = 0`` runs on the pair kernel. ``"log"`` / ``"pair"`` force
    one kernel (for tests). The linear kernel runs the temperatures in chunks side by side
    (:func:`chunk_size`; each column bitwise the run of that temperature alone), one jitted
    call per chunk; the log and pair kernels (exp-bound, or rare) one temperature per call.
    ``population=False`` leaves ``x`` out (``None``): a ``(K, S)`` host array less.
    """
    if kernel not in ("auto", "log", "pair"):
        raise ValueError(f"kernel: expected 'auto', 'log' or 'pair', got {kernel!r}")
    op = op if op is not None else pull_operator(mdp)
    Ts = np.asarray(temperatures, dtype=np.float64).reshape(-1)
    K, S = len(Ts), mdp.num_states
    x0i = jnp.asarray(to_internal(op, np.asarray(x0, dtype=np.float64)))
    arrs, static = op.device_arrays(), op.static()
    u = np.empty((K, S))
    x = np.empty((K, S)) if population else None
    hist = np.empty((K, steps + 1, S)) if history else None
    which = np.empty(K, dtype=object)
    zero = Ts == 0
    todo_log = np.flatnonzero(~zero) if kernel == "log" else np.array([], dtype=int)
    todo_pair = np.flatnonzero(zero) if kernel != "pair" else np.arange(K)

    def each(fn, idx, name, *args, chunk=1):
        """Run ``fn`` on the temperatures ``idx`` and store each run's rows at once (only
        one run's device outputs alive at a time); returns those whose guard tripped.

        One jitted call per temperature (a batch of one) or per chunk of ``chunk > 1``
        temperatures side by side (the last one padded by repeating its last T): every
        kernel compiles once per operator (and chunk size), whatever the number of
        temperatures or of guard fallbacks."""
        pad = np.concatenate([idx, np.repeat(idx[-1:], -len(idx) % chunk)])
        runs = [pad[i : i + chunk] for i in range(0, len(pad), chunk)]
        failed = []
        for k, ids in enumerate(runs):
            t = Ts[ids][None] if chunk > 1 else Ts[ids]
            xs, uu, xx, *rest = fn(arrs, jnp.asarray(t), x0i, *args)
            n = min(len(ids), len(idx) - k * len(ids))  # the padded tail is dropped
            keep = np.asarray(rest[0])[:n] if name == "linear" else np.ones(n, bool)
            rows = ids[:n][keep]
            u[rows] = to_original(op, np.asarray(uu)[:n][keep])
            if x is not None:
                x[rows] = to_original(op, np.asarray(xx)[:n][keep])
            if hist is not None:
                hist[rows, 1:] = to_original(op, np.asarray(xs)[:n][keep])
            which[rows] = name
            failed.append(ids[:n][~keep])
        return np.concatenate(failed)

    if kernel == "auto" and (~zero).any():
        idx = np.flatnonzero(~zero)
        c = chunk_size(op, len(idx), 8 * steps * op.size if history else 0)
        args = (op.reward_max, steps, static, history)
        todo_log = each(_linear_all, idx, "linear", *args, chunk=c)
    if len(todo_log):
        each(_log_all, todo_log, "log", steps, static, history)
    if len(todo_pair):
        each(_pair_all, todo_pair, "pair", steps, static, history)
    if hist is not None:
        hist[:, 0] = np.asarray(x0, dtype=np.float64)
    return HorizonResult(hist, u, x, which)
