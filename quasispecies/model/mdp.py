r"""The environment: a validated MDP, stored as successor lists.

Every MDP is held in one form, ``(S, A, B)`` successor lists:

* ``next_state[s, a, b]`` — the ``b``-th possible successor of taking ``a`` in ``s``;
* ``prob[s, a, b]`` — its probability ``P(s' | s, a)``;
* ``reward[s, a, b]`` — the reward ``R(s, a, s')`` on that transition;
* ``pi0[s, a]`` — the exploration ("mutation") policy.

A dense ``P`` of shape ``(S, A, S)`` is the case ``B = S``, ``next_state[s, a, b] = b``
(:attr:`MDP.dense` is ``True``, and kernels use dense reductions). A deterministic MDP
from :meth:`MDP.from_transitions` is ``B = 1`` and scales to ``S = 10^6``.

The replication kernel is ``K[s, a, s'] = pi0[s, a] P[s, a, s']`` and, with
``F_T = exp(R / T)``, the replication operator is (row-vector convention,
``[s, s']`` = from ``s`` to ``s'``)

.. math:: W_T[s, s'] = \sum_a K[s, a, s'] \, e^{R[s, a, s'] / T}.

An action is *allowed* in ``s`` when its row of ``P`` is a probability vector, its
``pi0`` entry (if given) is positive and its reward is not ``-inf``. A transition with
reward ``-inf`` carries no weight at any ``T``.
"""

from __future__ import annotations

from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.model.validate import (
    SUM_ATOL,
    as_float_array,
    check_distribution,
    check_probabilities,
    check_rewards,
    is_traced,
    traced_array,
)

__all__ = ["MDP", "check_mdp", "initial_population"]


def _default_pi0(allowed: np.ndarray) -> np.ndarray:
    counts = allowed.sum(axis=1, keepdims=True)
    return np.where(allowed, 1.0 / np.maximum(counts, 1), 0.0)


def _rewards(R, ndim):
    """``R`` as a checked float array, or (traced, inside ``jax.grad``/``jit``) shape-checked only."""
    if is_traced(R):
        return traced_array(R, "R", ndim=ndim)
    R = as_float_array(R, "R", ndim=ndim)
    check_rewards(R, "R")
    return R


def _broadcast(R, shape):
    """``R[:, :, None]`` broadcast to ``shape`` (NumPy, or JAX for a traced ``R``)."""
    xp = jnp if is_traced(R) else np
    return xp.broadcast_to(R[:, :, None], shape)


def _check_pi0(pi0, S: int, A: int, row_ok: np.ndarray):
    if is_traced(pi0):
        pi0 = traced_array(pi0, "pi0", ndim=2)
        if pi0.shape != (S, A):
            raise ValueError(f"pi0: expected shape {(S, A)}, got {pi0.shape}")
        return pi0
    pi0 = as_float_array(pi0, "pi0", ndim=2)
    if pi0.shape != (S, A):
        raise ValueError(f"pi0: expected shape {(S, A)}, got {pi0.shape}")
    check_probabilities(pi0, "pi0")
    sums = pi0.sum(axis=1)
    bad = ~((np.abs(sums - 1.0) <= SUM_ATOL) | (sums == 0.0))
    if bad.any():
        s = int(np.argmax(bad))
        raise ValueError(
            f"pi0: row {s} sums to {float(sums[s])!r}; each row must sum to 1 (or be all zero)"
        )
    dangling = (pi0 > 0) & ~row_ok
    if dangling.any():
        s, a = (int(i) for i in np.argwhere(dangling)[0])
        raise ValueError(
            f"pi0: positive probability at state {s}, action {a}, which has no allowed successor"
        )
    return pi0


@jax.tree_util.register_pytree_node_class
class MDP:
    r"""A validated Markov decision process (see the module docstring for the layout).

    Conventions (DESIGN §1): ``P[s, a, s']`` is the probability that action ``a`` in
    state ``s`` leads to ``s'``; ``R[s, a, s']`` the reward of that transition;
    ``pi0[s, a]`` the exploration ("mutation") policy. The replication kernel is
    ``K[s, a, s'] = pi0[s, a] P[s, a, s']`` and the replication operator at temperature
    ``T > 0``

    .. math:: W_T[s, s'] = \sum_a K[s, a, s'] \, e^{R[s, a, s'] / T}

    acts on row vectors: a population ``n`` over states is a row vector and
    ``n_{t+1} = n_t W_T`` (the discrete quasispecies equation, Eigen 1971, with an MDP's
    transitions as the mutations). At ``T = 0`` the same operator is read in the
    max-plus semiring, ``u_{t+1}(s') = max_{(s, a): K > 0} u_t(s) + R[s, a, s']``.

    An ``MDP`` is a JAX pytree (its arrays are the leaves), so it passes through ``jit``
    and ``vmap``; it is never mutated after construction except for the optional
    ``labels``, ``action_labels`` and ``grid_shape`` annotations.

    Parameters
    ----------
    P : array (S, A, S)
        ``P[s, a, s']``; each allowed ``(s, a)`` row sums to 1, a disallowed one is all 0.
    R : array (S, A) or (S, A, S)
        Rewards; ``(S, A)`` is broadcast over ``s'``. ``-inf`` marks "not allowed";
        NaN and ``+inf`` are rejected.
    pi0 : array (S, A), optional
        Exploration policy; default uniform over the allowed actions of each state.
    """

    def __init__(self, P, R, pi0=None):
        P = as_float_array(P, "P", ndim=3)
        S, A, S2 = P.shape
        if S != S2:
            raise ValueError(f"P: expected shape (S, A, S), got {P.shape}")
        if S == 0 or A == 0:
            raise ValueError(f"P: needs at least one state and one action, got shape {P.shape}")
        check_probabilities(P, "P")
        R = _rewards(R, (2, 3))
        if R.shape not in ((S, A), (S, A, S)):
            raise ValueError(f"R: expected shape {(S, A)} or {(S, A, S)} to match P, got {R.shape}")
        R3 = _broadcast(R, (S, A, S)) if R.ndim == 2 else R
        next_state = np.broadcast_to(np.arange(S, dtype=np.int32), (S, A, S))
        self._init(next_state, P, R3, pi0, dense=True, reward_shape=R.shape)

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_transitions(cls, next_state, R, pi0=None) -> MDP:
        """Deterministic MDP: taking ``a`` in ``s`` leads to ``next_state[s, a]``.

        Stored sparsely (``O(S A)`` memory), meant for ``S`` up to ``10^6``.
        ``R[s, a] = -inf`` (or ``pi0[s, a] = 0``) disallows an action.
        """
        ns = np.asarray(next_state)
        if ns.ndim != 2:
            raise ValueError(
                f"next_state: expected a 2-D (S, A) integer array, got shape {ns.shape}"
            )
        if ns.size and not np.issubdtype(ns.dtype, np.integer):
            if not np.all(np.isfinite(ns)) or not np.all(ns == np.round(ns)):
                raise ValueError("next_state: expected integer state indices")
            ns = ns.astype(np.int64)
        S, A = ns.shape
        if S == 0 or A == 0:
            raise ValueError(
                f"next_state: needs at least one state and one action, got shape {ns.shape}"
            )
        if ((ns < 0) | (ns >= S)).any():
            s, a = (int(i) for i in np.argwhere((ns < 0) | (ns >= S))[0])
            raise ValueError(f"next_state: entry ({s}, {a}) = {int(ns[s, a])} is outside [0, {S})")
        R = _rewards(R, 2)
        if R.shape != (S, A):
            raise ValueError(f"R: expected shape {(S, A)} to match next_state, got {R.shape}")
        return cls.from_successors(ns[:, :, None], np.ones((S, A, 1)), R[:, :, None], pi0)

    @classmethod
    def from_successors(cls, next_state, prob, R, pi0=None) -> MDP:
        """Sparse stochastic MDP from successor lists, each ``(S, A, B)``.

        ``prob[s, a, :]`` sums to 1 for an allowed action (0 for a disallowed one);
        repeated successors add up. ``R`` may be ``(S, A)`` (broadcast over ``b``).
        """
        ns = np.asarray(next_state)
        if ns.ndim != 3:
            raise ValueError(f"next_state: expected (S, A, B), got shape {ns.shape}")
        S, A, _ = ns.shape
        if ((ns < 0) | (ns >= S)).any():
            idx = tuple(int(i) for i in np.argwhere((ns < 0) | (ns >= S))[0])
            raise ValueError(f"next_state: entry {idx} = {int(ns[idx])} is outside [0, {S})")
        prob = as_float_array(prob, "prob", ndim=3)
        if prob.shape != ns.shape:
            raise ValueError(
                f"prob: expected shape {ns.shape} to match next_state, got {prob.shape}"
            )
        check_probabilities(prob, "prob")
        R = _rewards(R, (2, 3))
        per_action = R.shape == (S, A) or (R.shape == ns.shape and ns.shape[2] == 1)
        if R.shape == (S, A):
            R = _broadcast(R, ns.shape)
        if R.shape != ns.shape:
            raise ValueError(f"R: expected shape {(S, A)} or {ns.shape}, got {R.shape}")
        self = cls.__new__(cls)
        self._init(
            ns.astype(np.int32),
            prob,
            R,
            pi0,
            dense=False,
            reward_shape=(S, A) if per_action else R.shape,
        )
        return self

    def _init(self, next_state, prob, reward, pi0, *, dense: bool, reward_shape) -> None:
        S, A, _ = prob.shape
        sums = prob.sum(axis=2)
        bad = ~((np.abs(sums - 1.0) <= SUM_ATOL) | (sums == 0.0))
        if bad.any():
            s, a = (int(i) for i in np.argwhere(bad)[0])
            name = "P" if dense else "prob"
            raise ValueError(
                f"{name}: row (state {s}, action {a}) sums to {float(sums[s, a])!r}; "
                "each allowed row must sum to 1 (a disallowed action is a row of zeros)"
            )
        # A traced reward (inside jax.grad / jit) has no entries to inspect: its -inf
        # pattern is applied by the kernels (log_kernel), not by the support checks.
        live = (prob > 0) if is_traced(reward) else (prob > 0) & ~np.isneginf(reward)
        row_ok = (sums > 0) & live.any(axis=2)
        pi0 = _default_pi0(row_ok) if pi0 is None else _check_pi0(pi0, S, A, row_ok)
        self.num_states, self.num_actions = S, A
        self.dense = dense
        self.next_state = np.ascontiguousarray(next_state)
        self.prob = np.ascontiguousarray(prob)
        self.reward = reward if is_traced(reward) else np.array(reward, order="C")
        self.pi0 = pi0
        self._reward_shape = tuple(reward_shape)
        self.labels: list | None = None
        self.action_labels: list | None = None
        self.grid_shape: tuple[int, int] | None = None

    # ---------------------------------------------------------------- pytree
    def tree_flatten(self):
        """Leaves ``(next_state, prob, reward, pi0)``; sizes, layout and reward shape as aux data."""
        children = (self.next_state, self.prob, self.reward, self.pi0)
        return children, (self.num_states, self.num_actions, self.dense, self._reward_shape)

    @classmethod
    def tree_unflatten(cls, aux, children):
        """Rebuild from :meth:`tree_flatten` without re-validating (labels are not kept)."""
        self = cls.__new__(cls)
        self.next_state, self.prob, self.reward, self.pi0 = children
        self.num_states, self.num_actions, self.dense, self._reward_shape = aux
        self.labels = None
        self.action_labels = None
        self.grid_shape = None
        return self

    # ------------------------------------------------------------- derived data
    @property
    def shape(self) -> tuple[int, int]:
        """``(S, A)``: number of states and of actions."""
        return (self.num_states, self.num_actions)

    @property
    def num_successors(self) -> int:
        """``B``, the length of the successor lists (``S`` for a dense MDP, 1 for a
        deterministic one from :meth:`from_transitions`)."""
        return int(self.prob.shape[2])

    @property
    def deterministic(self) -> bool:
        """True when every allowed action has a single successor."""
        return bool(((self.prob > 0).sum(axis=2) <= 1).all())

    @property
    def traced(self) -> bool:
        """True when a leaf (``reward``, ``pi0``, ...) is a JAX tracer: inside ``jax.grad``,
        ``jit`` or ``vmap``, where only the JAX kernels (not the host solvers) apply."""
        return is_traced(self.next_state, self.prob, self.reward, self.pi0)

    def traced_arrays(self):
        """:meth:`arrays` computed with JAX ops, so that ``reward`` and ``pi0`` may be traced.

        Zero ``pi0`` / ``P`` entries and ``-inf`` rewards give ``log K = -inf`` through a
        double ``where``, so their gradients are 0 rather than ``NaN``: derivatives with
        respect to ``pi0`` and ``P`` are taken on their support.
        """
        reward = jnp.asarray(self.reward)
        pi0 = jnp.asarray(self.pi0, dtype=reward.dtype)
        prob = jnp.asarray(self.prob, dtype=reward.dtype)
        k = pi0[:, :, None] * prob
        live = (k > 0) & (reward > -jnp.inf)
        lk = jnp.where(live, jnp.log(jnp.where(live, k, 1.0)), -jnp.inf)
        r = jnp.where(live, reward, 0.0)
        return jnp.asarray(self.next_state), lk, r

    @cached_property
    def log_kernel(self) -> np.ndarray:
        """``log K[s, a, b] = log pi0[s, a] + log P``; ``-inf`` where not allowed."""
        if self.traced:
            return self.traced_arrays()[1]
        with np.errstate(divide="ignore"):
            lk = np.log(self.pi0)[:, :, None] + np.log(self.prob)
        return np.where(np.isneginf(self.reward), -np.inf, lk)

    @cached_property
    def allowed(self) -> np.ndarray:
        """(S, A) bool: actions with positive kernel weight."""
        return np.isfinite(self.log_kernel).any(axis=2)

    @property
    def P(self) -> np.ndarray:
        """Dense ``P[s, a, s']`` (built on demand for a sparse MDP; mind the memory)."""
        if self.dense:
            return self.prob
        S, A, B = self.prob.shape
        out = np.zeros((S, A, S))
        s_idx, a_idx, _ = np.indices((S, A, B), sparse=True)
        np.add.at(out, (s_idx, a_idx, self.next_state), self.prob)
        return out

    @property
    def R(self) -> np.ndarray:
        """Rewards as given: ``(S, A)`` when given per action, else dense ``(S, A, S)``."""
        if len(self._reward_shape) == 2:
            return self.reward[:, :, 0]
        if self.dense:
            return self.reward
        S, A, _ = self.prob.shape
        out = np.full((S, A, S), -np.inf)
        live = self.prob > 0
        s_idx, a_idx, _ = np.nonzero(live)
        out[s_idx, a_idx, self.next_state[live]] = self.reward[live]
        return out

    def arrays(self):
        """The arrays the kernels consume, as JAX arrays: ``(next_state, log_kernel, reward)``,
        each ``(S, A, B)``: the kernels compute ``W_T`` as ``log K + R / T`` over these lists.

        ``reward`` has ``-inf`` replaced by 0 (those entries are already removed by
        ``log_kernel = -inf``), so no ``-inf - -inf`` can arise downstream.
        """
        if self.traced:
            return self.traced_arrays()
        r = np.where(np.isfinite(self.log_kernel), self.reward, 0.0)
        return jnp.asarray(self.next_state), jnp.asarray(self.log_kernel), jnp.asarray(r)

    def max_plus_weights(self) -> np.ndarray:
        """Dense ``(S, S)`` support-graph weights ``max_a R[s, a, s']`` over ``K > 0`` (``-inf`` = no edge)."""
        S = self.num_states
        out = np.full((S, S), -np.inf)
        live = np.isfinite(self.log_kernel)
        s_idx = np.broadcast_to(np.arange(S)[:, None, None], live.shape)
        np.maximum.at(out, (s_idx[live], self.next_state[live]), self.reward[live])
        return out

    def __repr__(self) -> str:
        kind = (
            "dense" if self.dense else ("deterministic" if self.num_successors == 1 else "sparse")
        )
        return f"MDP(S={self.num_states}, A={self.num_actions}, {kind})"


def check_mdp(mdp) -> MDP:
    """``mdp`` must be a :class:`MDP` (``ValueError`` naming the argument otherwise)."""
    if not isinstance(mdp, MDP):
        raise ValueError(f"mdp: expected a quasispecies.MDP, got {type(mdp).__name__}")
    return mdp


def initial_population(mdp_or_size, x0) -> np.ndarray:
    """``x0`` as a probability vector: None (uniform), an int start state, or a vector."""
    S = mdp_or_size if isinstance(mdp_or_size, int) else mdp_or_size.num_states
    if x0 is None:
        return np.full(S, 1.0 / S)
    if isinstance(x0, int | np.integer) and not isinstance(x0, bool):
        if not 0 <= int(x0) < S:
            raise ValueError(f"x0: start state {int(x0)} is outside [0, {S})")
        out = np.zeros(S)
        out[int(x0)] = 1.0
        return out
    return check_distribution(x0, "x0", size=S)
