"""Brute-force references for the LM bridge: explicit enumeration over token sequences.

* :func:`token_level_leaf_probs` -- token-level temperature sampling by enumerating
  every path of a token tree with ``itertools.product`` and multiplying per-node
  softmaxes (each written out as ``exp(x - max) / sum``);
* :func:`sequence_level_probs` -- ``p(y)^(1/T) / Z`` from the leaves' log-probs;
* :func:`beam_search_on_model` -- beam search straight on a language model's full
  vocabulary, with no token tree;
* :func:`leaf_logprobs_from_forward` -- ``log p(leaf | prompt)`` summed from a reference
  forward pass's per-position log-probabilities.

These take plain arrays (rewards, successor tables, log-prob matrices) or a model's
public ``next_token_logprobs_batch``; none calls a kernel of ``quasispecies``.
"""

from __future__ import annotations

import itertools

import numpy as np


def _softmax(x: np.ndarray) -> np.ndarray:
    w = np.exp(x - x.max())
    return w / w.sum()


def token_level_leaf_probs(R, next_state, k: int, depth: int, T: float) -> dict[int, float]:
    """``{leaf state: q_T(leaf)}`` with ``q_T = prod_t softmax(R[s_t] / T)[a_t]``, by
    enumerating all ``k^depth`` action sequences from state 0.

    ``R`` (S, k) and ``next_state`` (S, k) are the tree's rewards and successors.
    """
    R = np.asarray(R, dtype=np.float64)
    out = {}
    for path in itertools.product(range(k), repeat=depth):
        s, q = 0, 1.0
        for a in path:
            q *= _softmax(R[s] / T)[a]
            s = int(next_state[s, a])
        out[s] = q
    return out


def sequence_level_probs(leaf_logprob, T: float) -> np.ndarray:
    """``p(y)^(1/T) / sum_y' p(y')^(1/T)`` from ``log p(y)`` (one row per leaf), ``T > 0``."""
    z = np.asarray(leaf_logprob, dtype=np.float64) / T
    w = np.exp(z - z.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


def beam_search_on_model(lm, prompt_ids, depth: int, width: int) -> tuple[tuple[int, ...], float]:
    """Beam search on the model (full vocabulary): keep the ``width`` best prefixes by
    summed log-prob at each of ``depth`` steps; returns ``(tokens, log p)`` of the best."""
    beams: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    for _ in range(depth):
        ids, lps = lm.next_token_logprobs_batch(
            [list(prompt_ids) + list(b) for b, _ in beams], width
        )
        cand = [
            ((*b, int(t)), s + float(lp))
            for (b, s), row_i, row_l in zip(beams, ids, lps, strict=True)
            for t, lp in zip(row_i, row_l, strict=True)
        ]
        cand.sort(key=lambda c: -c[1])
        beams = cand[:width]
    return beams[0]


def leaf_logprobs_from_forward(logp_fn, prompt_ids, continuations) -> np.ndarray:
    """``log p(c | prompt) = sum_i logp[len(prompt) - 1 + i, c_i]`` for each continuation
    ``c``, where ``logp_fn(sequence)`` returns the (T, V) per-position next-token
    log-probabilities of a reference forward pass."""
    prompt_ids = list(prompt_ids)
    out = []
    for c in continuations:
        lp = logp_fn(prompt_ids + list(c))
        out.append(sum(lp[len(prompt_ids) - 1 + i, t] for i, t in enumerate(c)))
    return np.array(out, dtype=np.float64)
