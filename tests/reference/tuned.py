"""Brute-force references for base-vs-tuned measurements and token-tree caching: a toy
language model over a small vocabulary (dense next-token tables), its top-k tree built by
explicit recursion, and its exact token-level tilt ``p(v|s) exp(r(v)/beta) / Z(s)``."""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.stats


def toy_logits(prefix: tuple[int, ...], V: int, seed: int) -> np.ndarray:
    """Deterministic pseudo-random logits of the next token after ``prefix``."""
    rng = np.random.default_rng([seed, len(prefix), *prefix])
    return 2.0 * rng.normal(size=V)


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max()
    return x - m - np.log(np.sum(np.exp(x - m)))


def toy_logp(prefix, V: int, seed: int, reward=None, beta: float = 1.0) -> np.ndarray:
    """Full next-token log-distribution, optionally tilted by ``reward / beta`` (renormalised)."""
    z = log_softmax(toy_logits(tuple(prefix), V, seed))
    if reward is not None:
        z = log_softmax(z + np.asarray(reward) / beta)
    return z


def brute_tree(logp_fn, prompt: tuple[int, ...], depth: int, k: int):
    """Level-order top-k tree by recursion: (parent, tokens-on-edge, prefix) per state."""
    parent, tok, prefix = [-1], [-1], [()]
    level = [0]
    for _ in range(depth):
        new = []
        for s in level:
            lp = logp_fn(prompt + prefix[s])
            order = np.lexsort((np.arange(lp.size), -lp))[:k]
            for v in order:
                parent.append(s)
                tok.append(int(v))
                prefix.append((*prefix[s], int(v)))
                new.append(len(parent) - 1)
        level = new
    return np.array(parent), np.array(tok), prefix


def edge_logp(logp_fn, prompt, prefix) -> np.ndarray:
    """log p(token into s | parent prefix) of every state (0 at the root)."""
    out = np.zeros(len(prefix))
    for s, pre in enumerate(prefix):
        if pre:
            out[s] = logp_fn(prompt + pre[:-1])[pre[-1]]
    return out


def entropy(p) -> float:
    return float(scipy.stats.entropy(np.asarray(p)))


def normalise_logp(lp) -> np.ndarray:
    w = np.exp(np.asarray(lp) - np.max(lp))
    return w / w.sum()


def kl(p, q) -> float:
    return float(scipy.stats.entropy(p, q))


def best_sequence_tilt(qb, qt, R) -> float:
    """lambda = 1/beta minimising KL(qt || qb exp(lambda R)/Z), by scipy's bounded search."""

    def f(lam):
        w = qb * np.exp(lam * (R - R.max()))
        return kl(qt, w / w.sum())

    return float(
        scipy.optimize.minimize_scalar(
            f, bounds=(-50, 50), method="bounded", options={"xatol": 1e-10}
        ).x
    )


def prefix_mass_brute(prefix, leaves, q) -> np.ndarray:
    out = np.zeros(len(prefix))
    for s, pre in enumerate(prefix):
        n = len(pre)
        out[s] = sum(qi for leaf, qi in zip(leaves, q, strict=True) if prefix[leaf][:n] == pre)
    return out


class ToyLM:
    """A tokenizer-backed toy language model over ``V`` letters (``a``, ``b``, ...): the
    next-token law after a prefix is :func:`toy_logp` (optionally tilted by ``reward``).
    Built on :class:`quasispecies.bridge.lm.LanguageModel`, so it has the whole front end;
    ``queries`` counts the prefixes it was asked about."""

    def __new__(cls, V: int = 7, seed: int = 0, reward=None, beta: float = 1.0, name=None):
        from quasispecies.bridge.lm import LanguageModel

        class _Toy(LanguageModel):
            def __init__(self):
                self.vocab_size = V
                self.name = name or f"toy-{V}-{seed}"
                self.queries = 0

            def encode(self, text):
                return [ord(c) - 97 for c in text]

            def decode(self, ids):
                return "".join(chr(97 + int(i)) for i in ids)

            def _next_logprobs(self, prefixes):
                self.queries += len(prefixes)
                return np.stack([toy_logp(p, V, seed, reward, beta) for p in prefixes])

            def _sequence_logprobs(self, seqs, top_k=0):
                out = []
                for x in seqs:
                    lp = np.array(
                        [toy_logp(x[:t], V, seed, reward, beta)[x[t]] for t in range(1, len(x))]
                    )
                    out.append((lp, None, None))
                return out

        return _Toy()
