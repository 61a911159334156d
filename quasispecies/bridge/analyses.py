r"""What selection does to a language model's continuations, measured on a token tree.

Two temperature-``T`` distributions over the leaves ``y`` (depth-``H`` continuations)
of a :class:`~quasispecies.bridge.tree.TokenTree`:

* **sequence level** (the quasispecies population, DESIGN §1):
  :math:`x_T(y) = p(y)^{1/T} / \sum_{y'} p(y')^{1/T}`, computed by the toolkit's own
  dynamics, ``qs.evolve(tree.mdp, T, H, tree.x0)[-1]``. At ``T = 1`` it is the LM's
  distribution restricted to the tree; as ``T -> 0`` it concentrates on the **MAP**
  continuation, found exactly by the max-plus DP ``qs.scaled_log_population(..., 0)``.
* **token level** (temperature sampling with top-``k`` truncation): each token is drawn
  among the node's ``k`` children with probability
  :math:`q_T(a \mid s) = p(a \mid s)^{1/T} / \sum_{a'} p(a' \mid s)^{1/T}`, so
  :math:`q_T(y) = \prod_t q_T(y_t \mid y_{<t})`. As ``T -> 0`` it is **greedy decoding**.

The two differ because token-level sampling renormalises at every node: it cannot see
that a likely first token leads only to unlikely continuations. Their entropies against
``T`` and the decoders (MAP vs greedy vs beam) are computed here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from quasispecies.semiring import host

__all__ = [
    "DecoderComparison",
    "TemperatureProfile",
    "beam_search",
    "compare_decoders",
    "entropy",
    "greedy_leaf",
    "map_leaf",
    "sample_token_level",
    "sequence_distribution",
    "temperature_profile",
    "token_distribution",
]


def _check_tree(tree):
    from quasispecies.bridge.tree import TokenTree

    if not isinstance(tree, TokenTree):
        raise ValueError(f"tree: expected a TokenTree, got {type(tree).__name__}")
    return tree


def _temps(T) -> tuple[np.ndarray, bool]:
    from quasispecies.model.validate import check_temperature

    return check_temperature(T, "T")


def entropy(p, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats, :math:`-\\sum p \\log p` with :math:`0 \\log 0 = 0`."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis)


def sequence_distribution(tree, T) -> np.ndarray:
    r"""Sequence-level population over ``tree.leaves`` after ``H`` generations at ``T``:
    :math:`x_T(y) = p(y)^{1/T} / \sum_{y'} p(y')^{1/T}`.

    Runs the quasispecies dynamics of the package, ``x_H = x_0 W_T^H`` normalised
    (``qs.evolve``, row-vector convention); ``T`` scalar -> (N,), array -> (K, N).
    ``T = 0`` is the ``T -> 0+`` limit (MAP leaves, ties share).
    """
    from quasispecies.dynamics.horizon import evolve

    tree = _check_tree(tree)
    Ts, sweep = _temps(T)
    xs = evolve(tree.mdp, Ts if sweep else float(Ts), tree.max_depth, tree.x0)
    return np.asarray(xs)[..., -1, tree.leaves]


def token_distribution(tree, T) -> np.ndarray:
    r"""Exact leaf distribution of token-level temperature sampling among the top-``k``:
    :math:`q_T(y) = \prod_t p(y_t \mid y_{<t})^{1/T} / \sum_{a} p(a \mid y_{<t})^{1/T}`,
    the sum over the node's ``k`` children (temperature sampling with top-``k``
    truncation; Holtzman et al. 2020, "The curious case of neural text degeneration").

    Each node's log-normalisation is ``semiring.host.log_normalise``. ``T`` scalar ->
    (N,), array -> (K, N); ``T = 0`` is greedy (ties share equally).
    """
    tree = _check_tree(tree)
    Ts, sweep = _temps(T)
    Ts1 = np.atleast_1d(Ts)
    internal = np.flatnonzero(tree.depth < tree.max_depth)
    R = tree.mdp.reward[internal, :, 0]  # (I, k) log-probs of the children
    logq = np.empty((len(Ts1), *R.shape))
    for i, t in enumerate(Ts1):
        if t == 0:
            best = R == R.max(axis=1, keepdims=True)
            with np.errstate(divide="ignore"):
                logq[i] = np.log(best / best.sum(axis=1, keepdims=True))
        else:
            logq[i] = host.log_normalise(R / t, axis=1)
    # log q of each state = log q of its parent + log q of the edge
    S = tree.num_states
    logq_state = np.zeros((len(Ts1), S))
    child = tree.mdp.next_state[internal, :, 0]
    for d in range(tree.max_depth):  # states are numbered level by level
        rows = np.flatnonzero(tree.depth[internal] == d)
        logq_state[:, child[rows]] = logq_state[:, internal[rows], None] + logq[:, rows]
    out = np.exp(logq_state[:, tree.leaves])
    return out if sweep else out[0]


def sample_token_level(tree, T: float, n: int, seed: int = 0) -> np.ndarray:
    """Draw ``n`` leaves by ancestral token-level sampling at ``T > 0`` (Monte Carlo):
    at each node the next token is drawn with probability ``q_T(a | s)`` of
    :func:`token_distribution`, by inverse-CDF on uniforms from ``default_rng(seed)``.

    Returns the leaf *state* indices (n,). Used to check :func:`token_distribution`.
    """
    tree = _check_tree(tree)
    if not T > 0:
        raise ValueError(f"T: sampling needs T > 0, got {T!r}")
    rng = np.random.default_rng(seed)
    state = np.zeros(int(n), dtype=np.int64)
    for _ in range(tree.max_depth):
        q = np.exp(host.log_normalise(tree.mdp.reward[state, :, 0] / T, axis=1))
        u = rng.random(len(state))[:, None]
        a = np.minimum((np.cumsum(q, axis=1) < u).sum(axis=1), q.shape[1] - 1)
        state = tree.mdp.next_state[state, a, 0]
    return state


#: Margin for the MAP certificate: the float32 forward pass moves log-probs by ~1e-5
#: between batch shapes, so a bound within this of the MAP score does not certify.
CERTIFY_MARGIN = 1e-4


def map_leaf(tree) -> tuple[int, float, bool]:
    """Exact MAP leaf by the max-plus DP: ``(state, log p, certified)``.

    ``u = qs.scaled_log_population(tree.mdp, 0, H, tree.x0)`` is the best path score
    into each state; the MAP leaf is ``argmax`` over the leaves (the first on ties).
    ``certified`` is True when no continuation that leaves the tree can beat it:
    for every internal ``s``, ``logprob[s] + next_bound[s] < u* - CERTIFY_MARGIN``
    (later tokens only lower a score), so the tree's MAP is the model's MAP over all
    ``V^H`` sequences.
    """
    from quasispecies.dynamics.horizon import scaled_log_population

    tree = _check_tree(tree)
    u = np.asarray(scaled_log_population(tree.mdp, 0.0, tree.max_depth, tree.x0))
    leaves = tree.leaves
    best = int(leaves[np.argmax(u[leaves])])
    score = float(u[best])
    internal = tree.depth < tree.max_depth
    certified = bool(
        np.all(tree.logprob[internal] + tree.next_bound[internal] < score - CERTIFY_MARGIN)
    )
    return best, score, certified


def greedy_leaf(tree) -> int:
    """Greedy decoding inside the tree: always the best next token (action 0), i.e.
    ``y_t = argmax_a log p(a | y_{<t})``, the ``T -> 0`` limit of token-level sampling;
    returns the leaf state."""
    tree = _check_tree(tree)
    s = 0
    for _ in range(tree.max_depth):
        s = int(tree.mdp.next_state[s, 0, 0])
    return s


def beam_search(tree, width: int) -> int:
    """Beam search of ``width`` beams (keep the ``width`` prefixes of largest
    ``log p(y_{<=t})`` at each depth); returns the best final leaf.

    For ``width <= top_k`` this equals beam search over the full vocabulary: the best
    ``width`` extensions of any beam are among its ``top_k`` children. Ties keep the
    earlier (better-ranked) state.
    """
    tree = _check_tree(tree)
    if isinstance(width, bool) or not isinstance(width, int | np.integer) or width < 1:
        raise ValueError(f"width: expected a positive integer, got {width!r}")
    if width > tree.top_k:
        raise ValueError(f"width: {width} exceeds the tree's top_k {tree.top_k}")
    beams = np.array([0])
    for _ in range(tree.max_depth):
        cand = tree.mdp.next_state[beams, :, 0].ravel()
        order = np.lexsort((cand, -tree.logprob[cand]))
        beams = cand[order[:width]]
    return int(beams[np.lexsort((beams, -tree.logprob[beams]))][0])


class DecoderComparison(NamedTuple):
    """MAP (exact max-plus DP), greedy and beam-search continuations of one tree."""

    map_state: int
    map_text: str
    map_logprob: float
    map_certified: bool
    greedy_state: int
    greedy_text: str
    greedy_logprob: float
    beam: dict[int, tuple[int, str, float]]

    @property
    def greedy_is_map(self) -> bool:
        """Whether greedy decoding found the MAP leaf (in general it does not)."""
        return self.greedy_state == self.map_state

    def as_dict(self) -> dict:
        """JSON-ready summary: text and log-prob of the MAP, greedy and beam leaves."""
        return {
            "map": {
                "text": self.map_text,
                "logprob": self.map_logprob,
                "certified": self.map_certified,
            },
            "greedy": {"text": self.greedy_text, "logprob": self.greedy_logprob},
            "beam": {str(w): {"text": t, "logprob": lp} for w, (_, t, lp) in self.beam.items()},
            "greedy_is_map": self.greedy_is_map,
        }


def compare_decoders(tree, widths=(2, 3)) -> DecoderComparison:
    """MAP (``argmax_y log p(y)``, exact max-plus DP, :func:`map_leaf`) vs greedy
    (:func:`greedy_leaf`) vs beam search (``widths``, each ``<= top_k``) on ``tree``."""
    tree = _check_tree(tree)
    m, mlp, cert = map_leaf(tree)
    g = greedy_leaf(tree)
    beams = {}
    for w in widths:
        b = beam_search(tree, int(w))
        beams[int(w)] = (b, tree.texts[b], float(tree.logprob[b]))
    return DecoderComparison(
        map_state=m,
        map_text=tree.texts[m],
        map_logprob=mlp,
        map_certified=cert,
        greedy_state=g,
        greedy_text=tree.texts[g],
        greedy_logprob=float(tree.logprob[g]),
        beam=beams,
    )


class TemperatureProfile(NamedTuple):
    """Entropy (nats) of both temperature-``T`` leaf distributions, and where they put mass."""

    temperatures: np.ndarray
    sequence_entropy: np.ndarray
    token_entropy: np.ndarray
    kl_token_sequence: np.ndarray  # KL(token-level || sequence-level)
    sequence_p_map: np.ndarray  # mass of the MAP leaf, sequence level
    token_p_map: np.ndarray  # mass of the MAP leaf, token level
    token_p_greedy: np.ndarray  # mass of the greedy leaf, token level


def temperature_profile(tree, temperatures) -> TemperatureProfile:
    """Sequence-level (:func:`sequence_distribution`) vs token-level
    (:func:`token_distribution`) temperature on ``tree`` over ``temperatures`` (1-D):
    their entropies, ``KL(q_T || x_T)`` and the mass each puts on the MAP and greedy
    leaves."""
    tree = _check_tree(tree)
    Ts, _ = _temps(np.atleast_1d(np.asarray(temperatures, dtype=np.float64)))
    seq = sequence_distribution(tree, Ts)
    tok = token_distribution(tree, Ts)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(tok > 0, tok * (np.log(tok) - np.log(seq)), 0.0).sum(axis=1)
    leaves = list(tree.leaves)
    m = leaves.index(map_leaf(tree)[0])
    g = leaves.index(greedy_leaf(tree))
    return TemperatureProfile(
        temperatures=Ts,
        sequence_entropy=entropy(seq),
        token_entropy=entropy(tok),
        kl_token_sequence=kl,
        sequence_p_map=seq[:, m],
        token_p_map=tok[:, m],
        token_p_greedy=tok[:, g],
    )
