r"""Token trees: a language model's continuations of a prompt as a deterministic MDP.

State = a prefix (the prompt plus the tokens generated so far); action ``i`` = the
``i``-th most likely next token (best first); the transition is deterministic; the
reward is the token's log-probability under the model,

.. math:: R(s, a) = \log p_{\text{LM}}(\text{token}_a(s) \mid \text{prefix}(s)).

The tree keeps the ``top_k`` next tokens at every node down to ``depth``, so it has
:math:`S = \sum_{d=0}^{H} k^d` states (156 for ``depth = 3``, ``top_k = 5``). State 0 is
the prompt; states are numbered level by level. A leaf (depth ``H``) has one allowed
action, a self-loop with reward 0, so the population stops moving after ``H`` steps.

With the uniform exploration policy :math:`\pi_0 = 1/k` on internal nodes the path sum
gives, for every leaf :math:`y` (DESIGN §1 "LM bridge"),

.. math:: n_H(y) = k^{-H} \, p(y \mid \text{prompt})^{1/T}, \qquad
          x_H(y) = \frac{p(y)^{1/T}}{\sum_{y'} p(y')^{1/T}},

the LM's own sequence distribution (restricted to the tree) at ``T = 1`` and the MAP
continuation (max-plus DP) as ``T -> 0``. An end-of-sequence token is treated like any
other token (the tree keeps expanding after it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from quasispecies.model.mdp import MDP

__all__ = ["TokenTree", "token_tree"]


@dataclass(frozen=True)
class TokenTree:
    """A token tree (see the module docstring).

    Attributes
    ----------
    mdp : quasispecies.MDP
        Deterministic, ``(S, top_k)``; ``mdp.labels`` are the state texts (made unique).
    x0 : (S,) float64
        Initial population: all mass on state 0 (the prompt).
    texts : list of str
        Continuation text of each state (``""`` for the prompt).
    depth : (S,) int64
        Depth of each state (number of generated tokens).
    tokens : list of tuple of int (or of str)
        Continuation token ids of each state (token strings as served, for a model
        without a local tokenizer).
    parent : (S,) int64
        Parent state (``-1`` for the prompt).
    logprob : (S,) float64
        :math:`\\log p(\\text{continuation} \\mid \\text{prompt})`, the sum of the rewards
        along the path from state 0.
    next_bound : (S,) float64
        For internal states, the log-prob of the ``(top_k+1)``-th next token: no
        continuation that leaves the tree at this state can score more than
        ``logprob[s] + next_bound[s]`` (used to certify that the tree's MAP is the
        model's MAP). ``nan`` for leaves.
    prompt : str
    prompt_ids : tuple of int
    top_k, max_depth : int
    """

    mdp: MDP
    x0: np.ndarray
    texts: list[str]
    depth: np.ndarray
    tokens: list[tuple]
    parent: np.ndarray
    logprob: np.ndarray
    next_bound: np.ndarray
    prompt: str
    prompt_ids: tuple[int, ...]
    top_k: int
    max_depth: int
    token_texts: list[str] = field(default_factory=list)

    @property
    def num_states(self) -> int:
        """``S = sum_{d=0}^{H} k^d``, the number of prefixes in the tree."""
        return len(self.texts)

    @property
    def leaves(self) -> np.ndarray:
        """Indices of the depth-``max_depth`` states, in state order."""
        return np.flatnonzero(self.depth == self.max_depth)

    def children(self, s: int) -> np.ndarray:
        """Child states of ``s``, best token first (empty for a leaf)."""
        if self.depth[s] == self.max_depth:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.mdp.next_state[s, :, 0], dtype=np.int64)

    def tilted(self, leaf_reward, beta: float) -> TokenTree:
        """The tree with ``r(y) / beta`` added to the reward of the last token of each leaf.

        ``leaf_reward`` is an array over :attr:`leaves` or a callable ``text -> float``.
        The ``T = 1`` population of the tilted tree is then ``p(y) exp(r(y) / beta) / Z``,
        the KL-regularised RL optimum (``qs.selection.tilt``; RLHF as a Bayesian update);
        sweeping ``T`` re-heats it.
        """
        from quasispecies.model.mdp import MDP

        if not (isinstance(beta, int | float | np.floating) and np.isfinite(beta) and beta > 0):
            raise ValueError(f"beta: expected a finite number > 0, got {beta!r}")
        leaves = self.leaves
        if callable(leaf_reward):
            r = np.array([float(leaf_reward(self.texts[s])) for s in leaves])
        else:
            r = np.asarray(leaf_reward, dtype=np.float64)
        if r.shape != leaves.shape:
            raise ValueError(
                f"leaf_reward: expected {leaves.size} values (one per leaf), got shape {r.shape}"
            )
        if np.isnan(r).any() or np.isposinf(r).any():
            raise ValueError("leaf_reward: contains NaN or +inf")
        R = self.mdp.reward[:, :, 0].copy()
        parents = self.parent[leaves]
        actions = np.array(
            [
                int(np.flatnonzero(self.mdp.next_state[p, :, 0] == s)[0])
                for p, s in zip(parents, leaves, strict=True)
            ]
        )
        R[parents, actions] += r / float(beta)
        mdp = MDP.from_transitions(self.mdp.next_state[:, :, 0], R)
        mdp.labels = self.mdp.labels
        return dataclasses.replace(self, mdp=mdp, logprob=self.logprob.copy())

    def to_table(self):
        """The tree as a fitness table (:class:`quasispecies.model.tables.Table`) with text
        labels: one row ``(state, action, next_state, reward = log p(token | prefix))`` per
        allowed edge, actions named by their token text (``<stay>`` for a leaf's loop)."""
        from quasispecies.model.tables import mdp_to_table

        actions = []
        for s in range(self.num_states):
            if self.depth[s] == self.max_depth:
                actions.append(["<stay>"])
            else:
                actions.append([self.token_texts[c] for c in self.children(s)])
        return mdp_to_table(self.mdp, x0=self.x0, labels=self.mdp.labels, action_labels=actions)


def _unique_labels(texts: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    for t in texts:
        seen[t] = seen.get(t, 0) + 1
    return [t if seen[t] == 1 else f"{t} #{i}" for i, t in enumerate(texts)]


class _IdExpander:
    """Children of token-id prefixes (a backend with a tokenizer: exact prefixes)."""

    def __init__(self, lm, prompt_ids: list[int]):
        self.lm, self.prompt_ids = lm, prompt_ids

    def __call__(self, paths, k: int):
        ids, lps = self.lm.next_token_logprobs_batch([self.prompt_ids + list(p) for p in paths], k)
        return [[int(i) for i in row] for row in ids], lps

    def text(self, path) -> str:
        return self.lm.decode(list(path))

    def token_text(self, tok) -> str:
        return self.lm.token_text(int(tok))


class _TextExpander:
    """Children of text prefixes (a remote model: the prompt plus the tokens' text)."""

    def __init__(self, lm, prompt: str):
        self.lm, self.prompt = lm, prompt

    def __call__(self, paths, k: int):
        out = self.lm.next_token_logprobs_many([self.prompt + self.text(p) for p in paths], k)
        return [list(nt.tokens) for nt in out], np.array([nt.logprobs for nt in out])

    def text(self, path) -> str:
        from quasispecies.bridge.api_fields import token_and_bytes

        raw = b"".join(token_and_bytes(t)[1] for t in path)
        return raw.decode("utf-8", errors="replace")

    def token_text(self, tok) -> str:
        return self.text((tok,))


def token_tree(
    lm,
    prompt,
    depth: int,
    top_k: int,
    *,
    progress: bool = False,
    cache=None,
    max_requests: int | None = None,
    batch_size: int | None = None,
) -> TokenTree:
    r"""Build the depth-``depth``, top-``top_k`` token tree of ``lm`` after ``prompt``.

    The tree is a deterministic MDP: state = prefix, action ``i`` = the ``i``-th most
    likely next token, reward :math:`R(s, a) = \log p_{\text{LM}}(\text{token}_a \mid
    \text{prefix}(s))`, leaves loop on themselves with reward 0. With uniform
    :math:`\pi_0 = 1/k` the population after ``H`` steps (row vectors,
    :math:`n_{t+1} = n_t W_T`) is :math:`x_H(y) = p(y)^{1/T} / Z` over the leaves.

    Parameters
    ----------
    lm : any :class:`quasispecies.bridge.protocol.LM` (e.g. :func:`default_lm`,
        ``load_lm("http://127.0.0.1:8000/v1")``)
    prompt : str (non-empty) or sequence of token ids (a backend with a tokenizer only)
    depth : int >= 1
        Tokens generated along every path (``H``).
    top_k : int >= 1
        Next tokens kept at every internal node (``k``); the tree has
        ``(k^(H+1) - 1) / (k - 1)`` states.
    progress : bool
        Show a progress bar (tqdm; one step per node expanded, level by level).
    cache : folder path or :class:`~quasispecies.bridge.tree_cache.TreeCache`, optional
        Persistent ``prefix -> top-k`` answers: an interrupted build resumes from it, a
        rebuild asks the model nothing, the tree is bit-identical either way.
    max_requests : int, optional
        Most next-token queries (uncached prefixes) this build may send;
        :class:`~quasispecies.bridge.tree_cache.RequestBudgetExceeded` when more are
        needed (the cache keeps what was answered; no tree is returned).
    batch_size : int, optional
        Prefixes per call to the model (each chunk is cached as it returns); default a
        whole level per call.

    All nodes of one level are scored in one batched call that reuses the KV cache of
    the prompt (shared-prefix batching), so the cost is ``len(prompt)`` plus
    ``sum_d d k^d`` token evaluations.

    A model without a local tokenizer (:class:`~quasispecies.bridge.remote.RemoteLM`)
    is asked, level by level in batched requests, for the next tokens of the *text*
    ``prompt + tokens so far`` (``sum_{d<H} k^d`` prefixes, ``batch_size`` per request);
    ``tokens`` then holds token strings and ``prompt_ids`` is empty. The server
    re-tokenises that text, so the tree equals the token-id tree of the same model
    wherever ``encode(prompt + text) == prompt_ids + path`` (true unless a token
    boundary merges, or a token ends inside a UTF-8 character, which is sent as U+FFFD).
    """
    from quasispecies.bridge.protocol import check_lm, has_tokenizer
    from quasispecies.model.mdp import MDP

    check_lm(lm)
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 1:
        raise ValueError(f"depth: expected an integer >= 1, got {depth!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise ValueError(f"top_k: expected an integer >= 1, got {top_k!r}")
    depth, top_k = int(depth), int(top_k)
    tokenized = has_tokenizer(lm)
    vocab = lm.vocab_size if tokenized else None
    if vocab is not None and top_k > vocab:
        raise ValueError(f"top_k: {top_k} exceeds the vocabulary size {vocab}")
    S = sum(top_k**d for d in range(depth + 1))
    if S > 2_000_000:
        raise ValueError(f"depth, top_k: the tree would have {S} states (limit 2,000,000)")
    if isinstance(prompt, str):
        if not prompt:
            raise ValueError("prompt: empty; a token tree needs a non-empty prompt")
        prompt_ids = lm.encode(prompt) if tokenized else []
        if tokenized and not prompt_ids:
            raise ValueError(f"prompt: {prompt!r} encodes to no tokens")
        prompt_text = prompt
    elif not tokenized:
        raise ValueError(
            f"prompt: {type(lm).__name__} has no local tokenizer; pass the prompt as text"
        )
    else:
        from quasispecies.bridge.lm import check_token_ids

        prompt_ids = check_token_ids(prompt, "prompt", lm.vocab_size)
        prompt_text = lm.decode(prompt_ids)
    expand: Any = _IdExpander(lm, prompt_ids) if tokenized else _TextExpander(lm, prompt_text)

    next_state = np.repeat(np.arange(S, dtype=np.int64)[:, None], top_k, axis=1)
    R = np.full((S, top_k), -np.inf)
    tokens: list = [()] * S
    parent = np.full(S, -1, dtype=np.int64)
    depth_arr = np.zeros(S, dtype=np.int64)
    logprob = np.zeros(S)
    bound = np.full(S, np.nan)
    n_query = top_k + 1 if vocab is None else min(top_k + 1, vocab)

    level = [0]
    nxt = 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=S - top_k**depth, desc="token tree", unit="node")
    if cache is not None or max_requests is not None or batch_size is not None or progress:
        from quasispecies.bridge.tree_cache import CachedExpander, TreeCache

        if cache is not None and not isinstance(cache, TreeCache):
            cache = TreeCache.for_model(cache, lm)
        expand = CachedExpander(expand, cache, max_requests, batch_size, bar)
    for d in range(depth):
        ids, lps = expand([tokens[s] for s in level], n_query)
        new_level = []
        for i, s in enumerate(level):
            children = np.arange(nxt, nxt + top_k)
            nxt += top_k
            next_state[s] = children
            R[s] = lps[i, :top_k]
            bound[s] = lps[i, top_k] if n_query > top_k else -np.inf
            for a, c in enumerate(children):
                tokens[c] = (*tokens[s], ids[i][a])
                parent[c] = s
                depth_arr[c] = d + 1
                logprob[c] = logprob[s] + lps[i, a]
            new_level.extend(children.tolist())
        level = new_level
        if bar is not None:
            bar.set_postfix(level=d + 1)
    if bar is not None:
        bar.close()
    for s in level:  # leaves: action 0 loops with reward 0; the others are not allowed
        R[s, 0] = 0.0
    texts = [expand.text(t) if t else "" for t in tokens]
    token_texts = [expand.token_text(t[-1]) if t else "" for t in tokens]
    mdp = MDP.from_transitions(next_state, R)
    mdp.labels = _unique_labels(texts)
    x0 = np.zeros(S)
    x0[0] = 1.0
    return TokenTree(
        mdp=mdp,
        x0=x0,
        texts=texts,
        depth=depth_arr,
        tokens=tokens,
        parent=parent,
        logprob=logprob,
        next_bound=bound,
        prompt=prompt_text,
        prompt_ids=tuple(prompt_ids),
        top_k=top_k,
        max_depth=depth,
        token_texts=token_texts,
    )
