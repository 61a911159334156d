r"""Token trees: sequence-level and token-level distributions over the leaves of a prefix tree.

A language model's continuations of a prompt, cut at depth ``H`` and restricted to the
top-``k`` tokens per prefix, form a rooted tree; state 0 is the prompt, the edge into a
state carries ``log p(token | prefix)``. Two different distributions live on its leaves:

* **sequence level** (:func:`tree_sequence_probs`): ``q(y) ∝ p(y)^(1/T) exp(r(y)/beta)``,
  the tree's population at depth ``H`` under the path sum at temperature ``T`` (DESIGN
  §1), tilted by a leaf reward;
* **token level** (:func:`tree_token_probs`): each token drawn from a softmax of the
  logits over the children of the current prefix, normalised per prefix.

They differ unless the logits are the soft-Bellman ones of :func:`tree_tilt_logits`
(Todorov 2009), which push the sequence-level normaliser down the tree. Every reduction
is a log-semiring sum over the children of a prefix
(:func:`quasispecies.semiring.host.segment_lse`), a tree DP in the sense of Goodman,
"Semiring parsing", *Computational Linguistics* 25 (1999).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from quasispecies.model.validate import as_float_array, check_rewards
from quasispecies.selection.validate import check_beta
from quasispecies.semiring import host

__all__ = [
    "Tree",
    "tree_from_token_tree",
    "tree_sequence_probs",
    "tree_tilt_logits",
    "tree_token_probs",
]


class Tree(NamedTuple):
    """A rooted tree of token prefixes (state 0 = the prompt).

    Attributes
    ----------
    parent : (S,) int, ``-1`` for the root.
    logp : (S,) log-probability of the token that leads *into* each state
        (``log p(token | parent prefix)``; 0 at the root).
    depth : (S,) int.
    """

    parent: np.ndarray
    logp: np.ndarray
    depth: np.ndarray

    @property
    def leaves(self) -> np.ndarray:
        """States without children, in state order."""
        has_child = np.zeros(len(self.parent), dtype=bool)
        has_child[self.parent[self.parent >= 0]] = True
        return np.flatnonzero(~has_child)

    @property
    def sequence_logp(self) -> np.ndarray:
        """``log p(continuation | prompt)`` of every state: the sum of ``logp`` from the root."""
        out = np.zeros(len(self.parent))
        for d in range(1, int(self.depth.max()) + 1):
            lvl = np.flatnonzero(self.depth == d)
            out[lvl] = out[self.parent[lvl]] + self.logp[lvl]
        return out


def _check_tree(parent, logp, depth) -> Tree:
    parent = np.asarray(parent, dtype=np.int64)
    depth = np.asarray(depth, dtype=np.int64)
    logp = as_float_array(logp, "logp", ndim=1)
    S = len(parent)
    if parent.ndim != 1 or S == 0:
        raise ValueError(f"parent: expected a non-empty 1-D array, got shape {parent.shape}")
    if logp.shape != (S,) or depth.shape != (S,):
        raise ValueError(
            f"logp, depth: expected shape {(S,)} to match parent, got {logp.shape}, {depth.shape}"
        )
    if parent[0] != -1 or depth[0] != 0 or (parent[1:] < 0).any() or (parent >= S).any():
        raise ValueError(
            "parent: state 0 must be the only root (parent -1) and parents must be states"
        )
    if (depth[1:] != depth[parent[1:]] + 1).any():
        raise ValueError("depth: must be the parent's depth + 1")
    check_rewards(logp, "logp")
    if (logp[1:] > 1e-9).any() or np.isneginf(logp[1:]).any():  # 1e-9: float32 LM log-probs
        raise ValueError("logp: token log-probabilities must be finite and <= 0")
    return Tree(parent, logp, depth)


def tree_from_token_tree(tt) -> Tree:
    """A :class:`Tree` from :func:`quasispecies.bridge.token_tree`'s result (its ``parent``,
    ``depth`` and path log-probabilities), or from any object with ``.mdp`` (deterministic,
    state 0 the root, children reached by allowed actions) and ``.depth``.

    In the MDP form a child ``c = next_state[s, a]`` of ``s`` (``pi0[s, a] > 0``, ``c != s``,
    finite reward) gets ``logp[c] = R[s, a]``: the token-tree MDP of DESIGN §1, read back.
    """
    depth = np.asarray(tt.depth, dtype=np.int64)
    if hasattr(tt, "parent") and hasattr(tt, "logprob"):
        parent = np.asarray(tt.parent, dtype=np.int64)
        seq = np.asarray(tt.logprob, dtype=np.float64)
        logp = np.where(parent >= 0, seq - seq[np.maximum(parent, 0)], 0.0)
        return _check_tree(parent, logp, depth)
    mdp = tt.mdp
    S = mdp.num_states
    parent = np.full(S, -1, dtype=np.int64)
    logp = np.zeros(S)
    ns, rew, pi0 = mdp.next_state[:, :, 0], mdp.reward[:, :, 0], mdp.pi0
    for s in range(S):
        for a in range(mdp.num_actions):
            c = int(ns[s, a])
            if pi0[s, a] > 0 and c != s and np.isfinite(rew[s, a]):
                parent[c] = s
                logp[c] = rew[s, a]
    return _check_tree(parent, logp, depth)


def _leaf_reward(tree: Tree, reward, name: str = "reward") -> np.ndarray:
    leaves = tree.leaves
    r = as_float_array(reward, name, ndim=1)
    if r.shape != leaves.shape:
        raise ValueError(
            f"{name}: expected one value per leaf, shape {leaves.shape}, got {r.shape}"
        )
    check_rewards(r, name)
    return r


def tree_sequence_probs(tree: Tree, T: float = 1.0, reward=None, beta: float = 1.0) -> np.ndarray:
    r"""Sequence-level distribution over the leaves:

    .. math:: q(y) \propto p(y)^{1/T}\, e^{r(y)/\beta}

    (the tree's population at depth ``H`` under the path sum at temperature ``T``,
    DESIGN §1, tilted by a leaf reward ``r``: the KL-regularised optimum of Korbak et al.
    2022 with prior ``p^(1/T)``). ``T > 0`` and ``beta > 0``. Returns ``(L,)`` over
    ``tree.leaves``.
    """
    T_arr, _ = check_beta(T, "T")
    b, _ = check_beta(beta)
    seq = tree.sequence_logp[tree.leaves]
    r = np.zeros_like(seq) if reward is None else _leaf_reward(tree, reward)
    z = seq / float(T_arr) + r / float(b)
    return np.exp(host.log_normalise(z))


def tree_tilt_logits(tree: Tree, reward=None, beta: float = 1.0, T: float = 1.0) -> np.ndarray:
    r"""Per-state logits of the token-level policy that realises a sequence-level tilt.

    Backward (soft-Bellman) messages, a tree DP in the log semiring (Goodman 1999):

    .. math:: \log Z(y) = r(y)/\beta \ \text{at a leaf}, \qquad
              \log Z(s) = \mathrm{lse}_{c \in \mathrm{children}(s)} \bigl[\ell(c)/T + \log Z(c)\bigr],

    with ``ell(c)`` the token log-prob into ``c``. The policy
    ``pi(c | s) ∝ exp(ell(c) / T + log Z(c))`` samples leaves exactly from
    :func:`tree_sequence_probs` (Todorov 2009, linearly-solvable MDPs; this is how a
    KL-regularised fine-tune distributes the sequence-level tilt over tokens). Returns
    ``(S,)``: the logit of the edge into each state (0 at the root).
    """
    T_arr, _ = check_beta(T, "T")
    b, _ = check_beta(beta)
    leaves = tree.leaves
    r = np.zeros(len(leaves)) if reward is None else _leaf_reward(tree, reward)
    S = len(tree.parent)
    logZ = np.full(S, -np.inf)
    logZ[leaves] = r / float(b)
    edge = tree.logp / float(T_arr)
    for d in range(int(tree.depth.max()), 0, -1):
        lvl = np.flatnonzero(tree.depth == d)
        inner = host.segment_lse(edge[lvl] + logZ[lvl], tree.parent[lvl], S)
        parents = np.unique(tree.parent[lvl])
        logZ[parents] = inner[parents]
    logits = edge + logZ
    logits[0] = 0.0
    return logits


def tree_token_probs(tree: Tree, tau: float = 1.0, logits=None) -> np.ndarray:
    r"""Token-level sampling: draw each token from the normalised ``exp(logits / tau)`` over
    the children of the current prefix, and return the resulting distribution over the leaves,

    .. math:: q_\tau(y) = \prod_{t} \frac{e^{\ell(y_{\le t})/\tau}}{\sum_{c \in
              \mathrm{children}(y_{<t})} e^{\ell(c)/\tau}}

    (the per-prefix normaliser is a log-semiring sum over siblings, Goodman 1999).
    With ``logits = None`` the logits are the LM's own token log-probs (ordinary
    temperature sampling restricted to the tree, locally renormalised); with
    :func:`tree_tilt_logits` they are the tuned policy's. This is *not* the sequence-level
    ``p^(1/tau)``: the normaliser is taken per prefix, not over whole sequences.
    """
    t, _ = check_beta(tau, "tau")
    ell = tree.logp if logits is None else as_float_array(logits, "logits", ndim=1)
    if ell.shape != tree.logp.shape:
        raise ValueError(f"logits: expected shape {tree.logp.shape}, got {ell.shape}")
    S = len(tree.parent)
    z = ell / float(t)
    kids = np.flatnonzero(tree.parent >= 0)
    lognorm = host.segment_lse(z[kids], tree.parent[kids], S)  # per-prefix normaliser
    logq = np.zeros(S)
    for d in range(1, int(tree.depth.max()) + 1):
        lvl = np.flatnonzero(tree.depth == d)
        par = tree.parent[lvl]
        logq[lvl] = logq[par] + z[lvl] - lognorm[par]
    q = np.exp(logq[tree.leaves])
    return q / q.sum()
