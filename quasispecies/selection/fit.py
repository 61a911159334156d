r"""Reward inference: which rewards make an observed population? (``qs.fit_rewards``)

Given an MDP's kernel ``K = pi0 P`` (its structure) and an observed population ``x``,
find rewards ``R`` such that ``x`` is the population that selection at temperature
``T`` produces, ``W_T[s, s'] = sum_a K[s, a, s'] exp((R_0 + R)[s, a, s'] / T)``
(``R_0``: ``base_reward``, default 0). The unknowns are optimised as ``v = R / T``
(only ``R / T`` is determined) by L-BFGS (optax) from ``v = 0``.

Both cases share one objective. With ``n(v)`` the predicted (unnormalised)
population and ``J`` the observed states (``x_j > 0``), ``w_j = log n_j - log x_j``:

.. math:: L(v) = \log \sum_{j \in J} u_j e^{w_j} - \sum_{j \in J} u_j w_j \;\ge 0,

zero exactly when ``n`` is proportional to ``x`` (Jensen). ``weighting="uniform"``
(``u_j = 1/|J|``, the default): the log of the arithmetic over the geometric mean of
the growth ratios ``n_j / x_j``; its curvature does not depend on ``x``, so states of
mass ``1e-12`` are fitted as precisely as the others. ``weighting="observed"``
(``u = x``): ``L = KL(x || n / sum_J n)``, the maximum-likelihood objective for
sampled counts, which pins a state's reward only to the precision its mass allows.

**Stationary** (``horizon=None``): ``n = x W_T``, one step from the observation, so
``L = 0`` exactly when ``x`` is stationary (``x W_T = rho x``) and no eigensolve is
needed; ``x`` must be positive (a stationary population of an irreducible ``W_T``
is). With **state rewards** (``rewards="state"``: ``R[s, a, s'] = r(s')``, paid on
arrival) ``log n_j = r_j / T + log (x K_0)_j`` is linear in ``r``, so ``L`` is
log-partition minus linear: **convex**, with the closed-form minimiser
``r_j = T log(x_j / (x K_0)_j) + c`` (``K_0 = K e^{R_0 / T}``). Identifiable: ``r``
up to the **gauge** ``r -> r + c`` (``W_T -> e^{c/T} W_T``: the normalised dynamics
and ``x`` unchanged); the result is the representative with ``sum_j r_j = 0``. With
per-transition rewards (``rewards="transition"``) ``x`` gives ``S - 1`` equations
for up to ``S A S`` unknowns: ``L`` is not convex and the answer is one point of a
manifold of solutions (the one L-BFGS reaches from 0; ``W_T`` is not identifiable).

**Horizon** ``H`` (``horizon=H``, from ``x0``): ``n = x0 W_T^H``, differentiated
through :func:`quasispecies.dynamics.scaled_log_population`; every state reached by a
length-``H`` path must have mass (only ``R = -inf`` gives it none). On **path
space** -- every state is the end of at most one length-``H`` path from ``x0`` (a
token tree at ``H = depth``) -- ``log n(end of path) = log x0 K(path) + G(path) / T``
with ``G`` the path's reward sum, linear in ``R``: ``L`` is convex and
``result.convex`` is True (checked by counting paths, :func:`path_counts`).
Identifiable there: the path sums ``G`` up to one constant; the gauge is every change
of ``R`` that adds the same constant to every observed path's ``G`` (e.g. ``+c`` on
an edge and ``-c`` on every edge leaving its head). From ``v = 0`` the iterates stay
in the row space of the path incidence, so the result is the minimum-norm
representative. On a token tree with ``base_reward = T * tree.mdp.R`` (the base
log-probs) and ``x`` the tuned leaf distribution, ``G = T log(p_tuned / p_base) + c``:
the tilt ``r = beta log(p_tuned / p_base)`` with ``T = beta``. Where paths merge
``L`` is not convex (``result.convex`` False).

L-BFGS with a backtracking line search only accepts steps that decrease ``L``
(Armijo), so the loss history is non-increasing (to rounding); on the convex cases it converges
to the global minimum. References: Kingman, *Q. J. Math.* 12 (1961) (convexity of
``log rho`` in the log entries); Nocedal & Wright, *Numerical Optimization* (2006),
ch. 7 (L-BFGS).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.dynamics import scaled_log_population
from quasispecies.model.mdp import MDP, check_mdp, initial_population
from quasispecies.semiring.core import lse, segment_lse

__all__ = ["RewardFit", "fit_rewards", "path_counts"]

PARAMETRISATIONS = ("state", "transition")
WEIGHTINGS = ("uniform", "observed")


class RewardFit(NamedTuple):
    """The result of :func:`fit_rewards`.

    ``rewards``: ``(S,)`` state rewards ``r(s')`` or transition rewards in ``mdp.R``'s
    layout (``(S, A)``, ``(S, A, S)``, or ``(S, A, B)`` aligned with ``next_state`` for
    a sparse stochastic MDP), the fitted part only (``base_reward`` not included);
    ``mdp``: the MDP with rewards ``base_reward + fitted``; ``loss_history``: the
    objective at every iterate (nats; the first is at ``R = 0``); ``converged``: the
    gradient's max-norm reached ``gtol``; ``convex``: whether the objective is convex
    for this case; ``gauge``: what the data do not determine, in words.
    """

    rewards: np.ndarray
    mdp: MDP
    loss: float
    loss_history: np.ndarray
    converged: bool
    iterations: int
    convex: bool
    objective: str
    gauge: str
    temperature: float
    horizon: int | None


def path_counts(mdp: MDP, x0, horizon: int) -> np.ndarray:
    """``(S,)`` number of length-``horizon`` paths from the support of ``x0`` to each state,
    capped at 2 (``<= 1`` everywhere means path space: each end has one path)."""
    ns, lk, _ = (np.asarray(a) for a in mdp.arrays())
    S = mdp.num_states
    live = np.isfinite(lk)
    src = np.broadcast_to(np.arange(S)[:, None, None], lk.shape)[live]
    dst = ns[live]
    c = (np.asarray(initial_population(mdp, x0)) > 0).astype(float)
    for _ in range(int(horizon)):
        c = np.minimum(np.bincount(dst, weights=c[src], minlength=S), 2.0)
    return c


def _observed(x, S: int) -> np.ndarray:
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"observed_population: expected an array of numbers ({exc})") from None
    if x.shape != (S,):
        raise ValueError(f"observed_population: expected shape ({S},), got {x.shape}")
    if not np.all(np.isfinite(x)) or (x < 0).any():
        raise ValueError("observed_population: entries must be finite and >= 0")
    if not x.sum() > 0:
        raise ValueError("observed_population: sums to 0")
    return x / x.sum()


def _base(base_reward, mdp: MDP) -> np.ndarray:
    shape = mdp.reward.shape
    if base_reward is None:
        return np.zeros(shape)
    b = np.asarray(base_reward, dtype=np.float64)
    if b.shape == shape[:2] and b.shape != shape:
        b = np.broadcast_to(b[:, :, None], shape)
    if b.shape != shape:
        raise ValueError(
            f"base_reward: expected shape {shape[:2]} or {shape} to match the MDP, got {b.shape}"
        )
    if np.isnan(b).any() or np.isposinf(b).any():
        raise ValueError("base_reward: contains NaN or +inf")
    return b


def _temperature(T) -> float:
    try:
        t = float(T)
    except (TypeError, ValueError):
        raise ValueError(f"T: expected one number, got {T!r}") from None
    if not (np.isfinite(t) and t > 0):
        raise ValueError(
            f"T: rewards are fitted at a finite T > 0 (only R / T is determined), got {t!r}"
        )
    return t


_DEFAULT: dict[str, Any] = {}


def _default_optimizer():
    """One L-BFGS instance for the package, so the jitted step is compiled once per shape."""
    if "lbfgs" not in _DEFAULT:
        import optax

        # backtracking (Armijo) rather than zoom: compiles in half the time, and every
        # accepted step decreases the loss
        search = optax.scale_by_backtracking_linesearch(max_backtracking_steps=40, store_grad=True)
        _DEFAULT["lbfgs"] = optax.lbfgs(linesearch=search)
    return _DEFAULT["lbfgs"]


def _edge(kind: str, v, ns, shape):
    """``R / T`` on every ``(s, a, b)`` entry from the parameters ``v``."""
    if kind == "state":
        return v[ns]
    if kind == "action":
        return jnp.broadcast_to(v[:, :, None], shape)
    return v


def _loss(v, data, kind: str, horizon: int | None, treedef):
    """``lse_J(w + log u) - sum_J u w`` with ``w = log n(v) - log x`` on the observed states."""
    mask, logx, logu, u = data[:4]
    if horizon is None:
        z0, ns, seg = data[4:]
        logn = segment_lse((z0 + _edge(kind, v, ns, z0.shape)).ravel(), seg, mask.shape[0])
    else:
        fixed, ns, prob, pi0, start, T = data[4:]
        R = fixed + T * _edge(kind, v, ns, fixed.shape)
        m = jax.tree_util.tree_unflatten(treedef, (ns, prob, R, pi0))
        logn = scaled_log_population(m, T, horizon, start) / T
    w = jnp.where(mask, logn - logx, 0.0)
    return lse(jnp.where(mask, w + logu, -jnp.inf), axis=0) - jnp.sum(jnp.where(mask, u * w, 0.0))


@partial(jax.jit, static_argnames=("kind", "horizon", "treedef", "opt"))
def _step(v, state, data, kind, horizon, treedef, opt):
    import optax

    def loss(w):
        return _loss(w, data, kind, horizon, treedef)

    value, grad = optax.value_and_grad_from_state(loss)(v, state=state)
    updates, state = opt.update(grad, state, v, value=value, grad=grad, value_fn=loss)
    return optax.apply_updates(v, updates), state, value, jnp.max(jnp.abs(grad))


def _run(v0, data, kind, horizon, treedef, max_steps: int, gtol: float, optimizer):
    import optax

    opt = _default_optimizer() if optimizer is None else optax.with_extra_args_support(optimizer)
    v, state = v0, opt.init(v0)
    history: list[float] = []
    converged = False
    for _ in range(max_steps):
        v_next, state_next, value, gnorm = _step(v, state, data, kind, horizon, treedef, opt)
        history.append(float(value))
        if not np.isfinite(history[-1]):
            raise ValueError("observed_population: the objective is not finite")
        if float(gnorm) <= gtol:
            converged = True
            break
        if bool(jnp.all(v_next == v)):  # stalled at the loss's rounding level
            break
        v, state = v_next, state_next
    return v, np.array(history), converged


def fit_rewards(
    mdp,
    observed_population,
    T,
    *,
    horizon: int | None = None,
    x0=None,
    rewards: str = "state",
    base_reward=None,
    max_steps: int = 500,
    gtol: float = 1e-8,
    weighting: str = "uniform",
    optimizer: Any = None,
) -> RewardFit:
    r"""Rewards under which selection at ``T`` produces ``observed_population``.

    See the module docstring for the objective, its convexity and the gauge. ``mdp``
    gives ``K = pi0 P`` (its own rewards are ignored; its ``-inf`` entries stay
    forbidden); ``observed_population`` ``(S,)`` non-negative (normalised here);
    ``T > 0``; ``horizon=None`` for a stationary population, else ``H`` steps from
    ``x0`` (a state index or a distribution; default as :func:`qs.evolve`);
    ``rewards``: ``"state"`` (``r(s')`` on arrival) or ``"transition"``;
    ``base_reward``: a fixed part added to the fitted rewards (``(S, A)`` or the MDP's
    reward layout); ``optimizer``: an optax transformation replacing L-BFGS (its loss
    history need not be monotone). Stops when the gradient's max-norm (in ``R / T``)
    is ``<= gtol`` or after ``max_steps`` steps.

    Example: for an MDP whose rewards are paid on arrival, ``R[s, a, s'] = r(s')``,
    ``qs.fit_rewards(mdp, qs.steady_state(mdp, 0.5).population, 0.5).rewards`` is
    ``r - mean(r)``.
    """
    mdp = check_mdp(mdp)
    T = _temperature(T)
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting: expected one of {WEIGHTINGS}, got {weighting!r}")
    if rewards not in PARAMETRISATIONS:
        raise ValueError(f"rewards: expected one of {PARAMETRISATIONS}, got {rewards!r}")
    if horizon is not None:
        ok = isinstance(horizon, (int, np.integer)) and not isinstance(horizon, bool)
        if not ok or horizon < 1:
            raise ValueError(f"horizon: expected a positive integer, got {horizon!r}")
    if int(max_steps) < 1:
        raise ValueError(f"max_steps: expected a positive integer, got {max_steps!r}")
    if not (np.isfinite(gtol) and gtol > 0):
        raise ValueError(f"gtol: expected a positive number, got {gtol!r}")
    S = mdp.num_states
    x = _observed(observed_population, S)
    base = _base(base_reward, mdp)
    ns, lk, _ = (np.asarray(a) for a in mdp.arrays())
    lk = np.where(np.isneginf(base), -np.inf, lk)
    live = np.isfinite(lk)
    base = np.where(live, base, 0.0)
    per_action = mdp.R.ndim == 2 if mdp.dense else mdp.reward.shape[2] == 1
    kind = "state" if rewards == "state" else ("action" if per_action else "transition")
    v0 = jnp.zeros({"state": (S,), "action": lk.shape[:2], "transition": lk.shape}[kind])
    src = np.broadcast_to(np.arange(S)[:, None, None], lk.shape)
    with np.errstate(divide="ignore"):
        logx = np.log(x)
    treedef = None
    if horizon is None:
        if (x == 0).any():
            raise ValueError(
                "observed_population: a stationary population of an irreducible W_T is "
                f"positive everywhere, but state {int(np.argmin(x))} has 0 (fit a horizon "
                "population with horizon=, or drop the state from the MDP)"
            )
        z0 = jnp.asarray(np.where(live, logx[src] + lk + base / T, -np.inf))
        seg = jnp.asarray(ns.ravel())
        logm0 = np.asarray(segment_lse(z0.ravel(), seg, S))
        if not np.isfinite(logm0).all():
            j = int(np.flatnonzero(~np.isfinite(logm0))[0])
            raise ValueError(
                f"observed_population: state {j} has mass but no transition into it from "
                "the observed states, so no finite rewards make it stationary"
            )
        data: tuple = (z0, jnp.asarray(ns), seg)
        convex = rewards == "state"
        objective = f"log AM/GM of (x W_T)_j / x_j, {weighting} weights (stationary)"
    else:
        H = int(horizon)
        counts = path_counts(mdp, x0, H)
        if ((counts == 0) & (x > 0)).any():
            j = int(np.flatnonzero((counts == 0) & (x > 0))[0])
            raise ValueError(
                f"observed_population: state {j} has mass but no length-{H} path from x0 reaches it"
            )
        if ((counts > 0) & (x == 0)).any():
            j = int(np.flatnonzero((counts > 0) & (x == 0))[0])
            raise ValueError(
                f"observed_population: state {j} is reached by a length-{H} path from x0 "
                "but has 0 mass; only R = -inf gives that (forbid the transition instead)"
            )
        treedef = jax.tree_util.tree_flatten(mdp)[1]
        data = (
            jnp.asarray(np.where(live, base, -np.inf)),
            jnp.asarray(ns),
            jnp.asarray(mdp.prob, dtype=float),
            jnp.asarray(mdp.pi0, dtype=float),
            jnp.asarray(initial_population(mdp, x0)),
            jnp.asarray(T),
        )
        convex = bool(counts.max() <= 1)
        objective = f"log AM/GM of n_H(j) / x_j, {weighting} weights, horizon {H}"
    observed = x > 0
    u = np.where(observed, 1.0 / observed.sum(), 0.0) if weighting == "uniform" else x
    with np.errstate(divide="ignore"):
        head = (observed, np.where(observed, logx, 0.0), np.log(u), u)
    data = tuple(jnp.asarray(a) for a in head) + data
    v, history, converged = _run(
        v0, data, kind, horizon, treedef, int(max_steps), float(gtol), optimizer
    )
    v = np.asarray(v)
    if rewards == "state" and horizon is None:
        v = v - v.mean()  # the gauge representative (exact zero mean, not only to rounding)
    fitted = T * v
    total = np.where(
        live, base + T * np.asarray(_edge(kind, jnp.asarray(v), ns, lk.shape)), -np.inf
    )
    if mdp.dense:
        fitted_mdp = MDP(mdp.prob, total, mdp.pi0)
    else:
        fitted_mdp = MDP.from_successors(mdp.next_state, mdp.prob, total, mdp.pi0)
    return RewardFit(
        rewards=fitted,
        mdp=fitted_mdp,
        loss=float(_loss(jnp.asarray(v), data, kind, horizon, treedef)),
        loss_history=history,
        converged=converged,
        iterations=len(history),
        convex=convex,
        objective=objective,
        gauge=_gauge_note(rewards, horizon, convex),
        temperature=T,
        horizon=None if horizon is None else int(horizon),
    )


def _gauge_note(rewards: str, horizon, convex: bool) -> str:
    if horizon is None and rewards == "state":
        return (
            "r -> r + c (W_T -> e^{c/T} W_T: same normalised dynamics, same population); "
            "returned with sum r = 0"
        )
    if horizon is None:
        return (
            "only the S - 1 equations x W_T ~ x are fitted: every R keeping x stationary is "
            "equivalent (a manifold); the returned one is where L-BFGS from 0 stops"
        )
    if convex:
        return (
            "path space: only each observed path's reward sum G is determined, up to one "
            "constant; returned: the minimum-norm rewards (L-BFGS from 0 stays in the row "
            "space of the path incidence)"
        )
    return (
        "paths merge: x_H determines the rewards only through T log n_H up to a constant; "
        "the objective is not convex and the returned rewards are a local minimum"
    )
