r"""Finite-horizon quasispecies dynamics on an MDP, in the log domain at temperature ``T``.

Discrete quasispecies (replicator-mutator) equation, row-vector convention:

.. math:: n_{t+1} = n_t W_T, \qquad x_t = n_t / \textstyle\sum_s n_t(s),
          \qquad W_T[s, s'] = \sum_a \pi_0(a|s) P(s'|s, a) e^{R(s,a,s')/T}.

Populations are carried as ``u_t = T log n_t`` (plus a log-multiplicity at ``T = 0``,
see :mod:`quasispecies.semiring.core`), so ``T = 1e-8`` neither overflows nor underflows and
``T = 0`` is the max-plus (tropical) recursion on the same code path:
``u_{t+1}(s') = max_{(s,a): K > 0} [u_t(s) + R(s, a, s')]``.

Three storage layouts of ``W_T`` run the recursion (``layout=``; :func:`resolve_layout`
says which ``"auto"`` picks):

* ``"dense"`` -- ``(S, A, S)`` arrays reduced over an axis (an MDP built from ``P``);
* ``"segment"`` -- successor lists reduced by segment (a scatter; any MDP);
* ``"pull"`` -- the sliced-ELL operator by destination (:mod:`quasispecies.kernels.pull`:
  no scatter, linear domain where that is exact), for sparse MDPs with at least
  :data:`PULL_MIN_STATES` states.

All three give the same numbers to float64 rounding. ``T`` may be a scalar or a 1-D
array; an array is a sweep and adds a leading axis to every result. ``T = inf`` is the
neutral-selection limit ``W = K`` (pure mutation; :func:`neutral_mdp`), accepted by
:func:`evolve` but not by :func:`scaled_log_population`. References:
M. Eigen, *Naturwissenschaften* 58 (1971); E. Todorov, "Efficient computation of optimal
actions", PNAS 106 (2009).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.kernels.operators import forward
from quasispecies.model.mdp import MDP, check_mdp, initial_population
from quasispecies.model.protocol import ReplicationModel
from quasispecies.model.validate import (
    check_nonneg_int,
    check_temperature,
    is_traced,
    traced_array,
)
from quasispecies.semiring.core import init_pair, normalise_pair, softmax_pair

__all__ = [
    "LAYOUTS",
    "PULL_MIN_STATES",
    "evolve",
    "mean_reward",
    "neutral_mdp",
    "refuse_infinite",
    "resolve_layout",
    "run_horizon",
    "run_with_neutral",
    "scaled_log_population",
    "split_infinite",
    "traced_inputs",
    "traced_population",
    "traced_temperature",
]

#: Sparse MDPs with at least this many states run the finite-horizon kernels in pull form
#: when ``layout="auto"`` (:mod:`quasispecies.kernels.pull`).
PULL_MIN_STATES = 1024

#: The accepted values of ``layout=``.
LAYOUTS = ("auto", "pull", "segment", "dense")


def resolve_layout(mdp: MDP, layout: str = "auto") -> str:
    """The storage layout a finite-horizon run of ``mdp`` uses: ``"pull"``, ``"segment"``
    or ``"dense"``.

    ``"auto"``: ``"dense"`` for an MDP built from dense ``P``; ``"pull"`` for a sparse one
    with at least :data:`PULL_MIN_STATES` states; ``"segment"`` otherwise. Any other value
    is checked and returned (``"dense"`` needs a dense MDP).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if layout == "auto":
        if mdp.dense:
            return "dense"
        return "pull" if mdp.num_states >= PULL_MIN_STATES else "segment"
    if layout == "dense" and not mdp.dense:
        raise ValueError(
            "layout: 'dense' needs an MDP built from dense P (MDP(P, R)); "
            "use 'segment' or 'pull' for successor lists"
        )
    return layout


# ------------------------------------------------ T = inf, the neutral-selection limit
# exp(R/T) = 1: every allowed transition replicates equally and W_inf = K (a -inf reward
# still forbids its transition). Computed exactly as the zero-reward MDP at T = 1; u = T log n
# has no finite limit there, so only the normalised dynamics and the steady state take it.


def neutral_mdp(mdp: MDP) -> MDP:
    """``mdp`` with every allowed reward replaced by 0 (``-inf`` kept): ``W_1 = K``."""
    reward = np.where(np.isneginf(mdp.reward), -np.inf, 0.0)
    children = (mdp.next_state, mdp.prob, reward, mdp.pi0)
    _, aux = mdp.tree_flatten()
    return MDP.tree_unflatten(aux, children)


def mean_reward(mdp: MDP) -> np.ndarray:
    """``rbar(s) = sum_{a, s'} K(s, a, s') R(s, a, s')`` over allowed transitions, (S,)."""
    lk = mdp.log_kernel
    live = np.isfinite(lk)
    w = np.where(live, np.exp(np.where(live, lk, 0.0)), 0.0)
    return (w * np.where(live, mdp.reward, 0.0)).sum(axis=(1, 2))


def split_infinite(Ts: np.ndarray) -> np.ndarray:
    """Boolean mask of the ``T = inf`` entries of a temperature array (any shape)."""
    return np.isposinf(np.asarray(Ts))


def refuse_infinite(Ts: np.ndarray) -> None:
    """``ValueError`` if ``Ts`` holds ``T = inf`` (the neutral limit is for MDPs only)."""
    if split_infinite(Ts).any():
        raise ValueError("T: T = inf (neutral selection) is supported for MDPs only")


def run_with_neutral(run, mdp: MDP, Ts: np.ndarray, sweep: bool) -> np.ndarray:
    """``run(mdp, Ts, sweep)`` (a NumPy array with a leading temperature axis when
    ``sweep``) with the ``T = inf`` entries computed as ``run(neutral_mdp(mdp), 1, ...)``."""
    inf = split_infinite(Ts)
    if not inf.any():
        return np.asarray(run(mdp, Ts, sweep))
    neutral = neutral_mdp(mdp)
    if not sweep:
        return np.asarray(run(neutral, np.asarray(1.0), False))
    at_inf = np.asarray(run(neutral, np.ones(int(inf.sum())), True))
    out = np.empty((len(Ts), *at_inf.shape[1:]), dtype=at_inf.dtype)
    out[inf] = at_inf
    if (~inf).any():
        out[~inf] = np.asarray(run(mdp, Ts[~inf], True))
    return out


@partial(jax.jit, static_argnames=("steps", "dense", "history"))
def run_horizon(arrays, T, x0, steps: int, dense: bool, history: bool):
    r"""``(x_0..x_steps or None, u_steps)`` for one temperature, dense or segment layout.

    ``u_{t+1} = forward(u_t)`` (:func:`quasispecies.kernels.operators.forward`: one step
    ``n -> n W_T`` in the log semiring), normalised each step by the semiring total
    (:func:`quasispecies.semiring.core.normalise_pair`) and the totals added back:
    ``u_steps = T log n_steps``. ``arrays`` is :meth:`MDP.arrays`; ``T`` a (traced) scalar.
    """
    ns, lk, r = arrays
    T = jnp.asarray(T, dtype=r.dtype)

    def step(carry, _):
        u, c, log_total = carry
        p = forward(u, c, ns, lk, r, T, dense)
        u, c, g = normalise_pair(p.u, p.c, T)
        x = softmax_pair(u, c, T, axis=0) if history else None
        return (u, c, log_total + g), x

    u0, c0 = init_pair(x0, T)
    (u, _, log_total), xs = jax.lax.scan(step, (u0, c0, jnp.zeros((), r.dtype)), None, length=steps)
    u_final = jnp.where(jnp.isfinite(u), u + log_total, -jnp.inf)
    if history:
        xs = jnp.concatenate([x0[None, :], xs], axis=0)
    return xs, u_final


def _horizon_run(mdp: MDP, Ts: np.ndarray, sweep: bool, x0, steps: int, history: bool, layout: str):
    """``(populations or None, u_steps)``, per temperature when ``sweep``."""
    layout = resolve_layout(mdp, layout)
    if layout == "pull":
        from quasispecies.kernels.pull import horizon

        res = horizon(mdp, np.atleast_1d(Ts), steps, x0, history=history, population=False)
        if sweep:
            return res.history, res.u
        return (None if res.history is None else res.history[0]), res.u[0]
    return _scan(mdp, jnp.asarray(Ts), sweep, jnp.asarray(x0), steps, history, layout == "dense")


def _scan(mdp: MDP, T, sweep: bool, x0, steps: int, history: bool, dense: bool):
    """:func:`run_horizon` on the dense or segment layout, vmapped over ``T`` when ``sweep``."""
    arrays = mdp.arrays()

    def fn(t):
        return run_horizon(arrays, t, x0, steps, dense, history)

    return jax.vmap(fn)(T) if sweep else fn(T)


def traced_inputs(mdp, T, x0) -> bool:
    """True when the call is being differentiated or traced (``jax.grad``, ``jit``, ``vmap``)
    through the MDP's arrays, ``T`` or ``x0``: the JAX-only path then runs."""
    return is_traced(T, x0) or (isinstance(mdp, MDP) and mdp.traced)


def traced_temperature(T):
    """A traced ``T`` (scalar or 1-D), shape-checked only: its values cannot be inspected,
    so ``T >= 0`` is the caller's contract (``T = inf`` is not supported traced)."""
    return traced_array(T, "T", ndim=(0, 1))


def traced_population(mdp: MDP, x0, dtype):
    """``x0`` as a JAX vector: a concrete one is validated as usual, a traced one must
    have shape ``(S,)`` (its entries are the caller's contract: non-negative, sum 1)."""
    if not is_traced(x0):
        return jnp.asarray(initial_population(mdp, x0), dtype=dtype)
    x = traced_array(x0, "x0", ndim=1)
    if x.shape != (mdp.num_states,):
        raise ValueError(f"x0: expected length {mdp.num_states}, got {x.shape[0]}")
    return x.astype(dtype)


def _traced_horizon(mdp, T, steps: int, x0, history: bool, layout: str):
    """The differentiable horizon: the dense or segment layout with traced inputs (``auto``
    takes segment where it would take pull, whose buckets are prepared on the host)."""
    mdp = check_mdp(mdp)
    chosen = resolve_layout(mdp, layout)
    if layout == "pull":
        raise ValueError(
            "layout: 'pull' prepares its buckets on the host and cannot take traced "
            "inputs; use 'auto', 'segment' or 'dense' under jax.grad / jit / vmap"
        )
    dtype = jnp.asarray(mdp.reward).dtype
    T = traced_temperature(T).astype(dtype)
    x = traced_population(mdp, x0, dtype)
    return _scan(mdp, T, T.ndim == 1, x, steps, history, chosen == "dense")


def evolve(mdp, T, steps: int, x0=None, *, layout: str = "auto") -> np.ndarray:
    r"""Normalised populations ``x_0 .. x_steps`` of ``n_{t+1} = n_t W_T`` (row vectors).

    Parameters
    ----------
    mdp : MDP (or a sequence-space model from :mod:`quasispecies.sequence`)
    T : float or (K,) array, ``>= 0``, ``inf`` allowed
        Temperature(s). At ``T = 0`` the result is the ``T -> 0+`` limit (mass on the
        states reached by the best paths, shared by their kernel weight); at ``T = inf``
        the neutral-selection limit ``W = K`` (pure mutation, :func:`neutral_mdp`; MDPs only).
    steps : int
    x0 : (S,) probability vector, int start state, or None (uniform)
    layout : ``"auto"``, ``"pull"``, ``"segment"`` or ``"dense"``
        Storage layout of ``W_T`` (see :func:`resolve_layout`); every choice gives the
        same populations to float64 rounding. Ignored by sequence-space models.

    Returns
    -------
    (steps + 1, S) array, or (K, steps + 1, S) for a temperature array (a JAX array when
    traced). Differentiable (``jax.grad``/``jit``/``vmap``) in the MDP's rewards and
    ``pi0``, ``x0`` and ``T > 0``: traced inputs are shape-checked and run the dense or
    segment scan; the lineage-survival check needs concrete inputs and is skipped.
    """
    steps = check_nonneg_int(steps, "steps")
    if traced_inputs(mdp, T, x0):
        return _traced_horizon(mdp, T, steps, x0, True, layout)[0]
    Ts, sweep = check_temperature(T, allow_inf=True)
    if isinstance(mdp, ReplicationModel):
        refuse_infinite(Ts)
        out = [mdp.evolve_at(float(t), steps, x0) for t in np.atleast_1d(Ts)]
        return np.stack(out) if sweep else out[0]
    mdp = check_mdp(mdp)
    x0 = initial_population(mdp, x0)

    def run(m, ts, sw):
        return _horizon_run(m, ts, sw, x0, steps, True, layout)[0]

    xs = run_with_neutral(run, mdp, Ts, sweep)
    dead = ~(xs.sum(axis=-1) > 0)
    if dead.any():
        t = int(np.argwhere(dead)[0][-1])
        raise ValueError(
            f"mdp: no lineage survives to step {t}: every path from x0 reaches a state "
            "with no allowed action, so the normalised population is undefined"
        )
    return xs


def scaled_log_population(mdp, T, steps: int, x0=None, *, layout: str = "auto") -> np.ndarray:
    r"""``u_steps = T log n_steps`` (unnormalised), the path sum on the ``T log`` scale.

    .. math:: u_H(s') = T \log \sum_{\text{paths} \to s'} x_0(s_0) \prod_t K_t\, e^{G/T}

    (``n_H = x_0 W_T^H``, row vectors). At ``T = 0``: the max-plus value ``max_paths G``
    over paths of positive probability from the support of ``x0``; ``-inf`` where
    unreachable. Bound: ``u^0_H + T log w* <= u^T_H <= u^0_H``. ``layout`` as in
    :func:`evolve`. ``T = inf`` is refused: ``u = T log n`` is infinite there (use
    :func:`evolve` or ``steady_state`` for the neutral limit). Differentiable as
    :func:`evolve`: ``du_H / dR`` is the selected path occupancy of each end state.
    """
    steps = check_nonneg_int(steps, "steps")
    if traced_inputs(mdp, T, x0):
        return _traced_horizon(mdp, T, steps, x0, False, layout)[1]
    Ts, sweep = check_temperature(T, allow_inf=True)
    if split_infinite(Ts).any():
        raise ValueError(
            "T: T = inf has no finite u = T log n (T times a finite log n is infinite); "
            "use qs.evolve or qs.steady_state for the neutral-selection limit"
        )
    mdp = check_mdp(mdp)
    x0 = initial_population(mdp, x0)
    _, u = _horizon_run(mdp, Ts, sweep, x0, steps, False, layout)
    return np.asarray(u)
