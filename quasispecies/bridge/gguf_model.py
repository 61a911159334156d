r"""The pure-JAX backend: a Llama, Qwen2/Qwen2.5 or Qwen3 GGUF as a :class:`~quasispecies.bridge.lm.LanguageModel`.

:class:`GGUFModel` reads the file (:mod:`quasispecies.bridge.gguf_file`), rebuilds its
byte-level BPE tokenizer (:mod:`quasispecies.bridge.tokenizer`) and runs the decoder
(:mod:`quasispecies.bridge.llama`) in float32, returning
:math:`\log p_{\text{LM}}(\text{token} \mid \text{prefix})` (the rewards of a token
tree) as float64. Next-token queries that share a prefix are batched behind one KV cache
of that prefix; padded batch shapes are powers of two, which bounds the number of
``jit`` compilations.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from quasispecies.bridge.lm import LanguageModel, TokenIds
from quasispecies.bridge.tokenizer import gpt2_token_bytes, tokenizer_from_vocab

__all__ = ["GGUFModel"]


def _bucket(n: int, minimum: int = 1) -> int:
    """Smallest power of two >= max(n, minimum): bounds the number of jit compilations."""
    b = minimum
    while b < n:
        b *= 2
    return b


class GGUFModel(LanguageModel):
    """A Llama-family GGUF, dequantised to float32 and run by the pure-JAX forward pass.

    Parameters
    ----------
    path : str or PathLike
        A GGUF file with ``general.architecture`` one of ``llama``, ``qwen2`` (Qwen2,
        Qwen2.5) or ``qwen3``, tensors of the types in
        :data:`~quasispecies.bridge.gguf_arch.SUPPORTED_TENSOR_TYPES` (F32/F16/BF16,
        Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, Q2_K…Q6_K).
    tokenizer : tokenizers.Tokenizer, path to a ``tokenizer.json``, or None
        Overrides the tokenizer rebuilt from the GGUF vocabulary (needed for GGUFs whose
        tokenizer model is not byte-level BPE).
    max_tokens_per_batch : int
        Upper bound on ``rows * padded length`` per forward call (memory control).

    The forward pass runs in float32 (fast on CPU; the log-probs agree with a float64
    evaluation to ~1e-5 per token); every value returned is a float64 array or a
    Python float.
    """

    def __init__(self, path, *, tokenizer=None, max_tokens_per_batch: int = 512):
        from quasispecies.bridge.gguf_file import read_gguf
        from quasispecies.bridge.llama import stack_params

        if not isinstance(path, str | os.PathLike):
            raise ValueError(f"path: expected a file path, got {type(path).__name__}")
        contents = read_gguf(path)
        self.path = Path(path)
        self.config = contents.config
        self.metadata = contents.metadata
        self.vocab_size = contents.config.vocab_size
        self.name = str(self.metadata.get("general.name", self.path.stem))
        if tokenizer is None:
            self.tokenizer = tokenizer_from_vocab(
                contents.tokens,
                contents.merges,
                contents.token_types,
                model=str(self.metadata.get("tokenizer.ggml.model", "")),
                pre=str(self.metadata.get("tokenizer.ggml.pre", "default")),
            )
        else:
            self.tokenizer = _load_tokenizer(tokenizer)
        self._vocab = contents.tokens
        self.params = stack_params(contents.weights, contents.config)
        del contents
        if max_tokens_per_batch < 8:
            raise ValueError(f"max_tokens_per_batch: must be >= 8, got {max_tokens_per_batch}")
        self.max_tokens_per_batch = int(max_tokens_per_batch)
        self._cache: OrderedDict[tuple[int, ...], tuple] = OrderedDict()
        self._lock = threading.Lock()
        self.tokens_evaluated = 0  # new-token forward evaluations, for benchmarks

    def __repr__(self) -> str:
        c = self.config
        return (
            f"GGUFModel({self.name!r}, arch={c.arch}, layers={c.n_layers}, dim={c.dim}, heads={c.n_heads}/"
            f"{c.n_kv_heads}, vocab={c.vocab_size})"
        )

    # ------------------------------------------------------------- tokenizer
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` under the GGUF's byte-level BPE (no special tokens added)."""
        if not isinstance(text, str):
            raise ValueError(f"text: expected a string, got {type(text).__name__}")
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: TokenIds) -> str:
        """Text of ``ids`` (GPT-2 byte alphabet mapped back to UTF-8; special tokens kept)."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def _token_bytes(self, ids: list[int]) -> tuple[bytes | None, ...]:
        return tuple(gpt2_token_bytes(self._vocab[i]) for i in ids)

    # --------------------------------------------------------------- forward
    def _check_length(self, n: int) -> None:
        if n > self.config.context_length:
            raise ValueError(
                f"prompt: {n} tokens exceed the model's context length {self.config.context_length}"
            )

    def _prefix_cache(self, prefix: tuple[int, ...]):
        """KV cache of a shared prefix (LRU of 4): (k, v) float32 (L, P, n_kv, d), valid length."""
        import jax.numpy as jnp

        from quasispecies.bridge.llama import extend

        hit = self._cache.get(prefix)
        if hit is not None:
            self._cache.move_to_end(prefix)
            return hit
        cfg = self.config
        P = _bucket(len(prefix), 8)
        tokens = np.zeros((1, P), dtype=np.int32)
        tokens[0, : len(prefix)] = prefix
        empty = jnp.zeros((cfg.n_layers, 0, cfg.n_kv_heads, cfg.head_dim), dtype=jnp.float32)
        _, k, v = extend(
            self.params,
            cfg,
            jnp.asarray(tokens),
            empty,
            empty,
            jnp.int32(0),
            jnp.asarray([len(prefix) - 1], dtype=jnp.int32),
        )
        self.tokens_evaluated += len(prefix)
        entry = (k[:, 0], v[:, 0], len(prefix))
        self._cache[prefix] = entry
        while len(self._cache) > 4:
            self._cache.popitem(last=False)
        return entry

    def _next_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        """Next-token log-probs (N, V) float32, all rows continuing their longest common prefix."""
        import jax.numpy as jnp

        from quasispecies.bridge.llama import extend

        for p in prefixes:
            self._check_length(len(p))
        shortest = min(len(p) for p in prefixes)
        lcp = 0
        first = prefixes[0]
        while lcp < shortest - 1 and all(p[lcp] == first[lcp] for p in prefixes):
            lcp += 1
        cfg = self.config
        out = np.empty((len(prefixes), cfg.vocab_size), dtype=np.float32)
        with self._lock:
            if lcp:
                pk, pv, plen = self._prefix_cache(tuple(first[:lcp]))
            else:
                pk = pv = jnp.zeros(
                    (cfg.n_layers, 0, cfg.n_kv_heads, cfg.head_dim), dtype=jnp.float32
                )
                plen = 0
            suffixes = [p[lcp:] for p in prefixes]
            T = _bucket(max(len(s) for s in suffixes))
            rows = max(1, self.max_tokens_per_batch // T)
            rows = 1 << (rows.bit_length() - 1)  # a power of two
            for start in range(0, len(suffixes), rows):
                chunk = suffixes[start : start + rows]
                B = min(rows, _bucket(len(chunk)))
                tokens = np.zeros((B, T), dtype=np.int32)
                last = np.zeros(B, dtype=np.int32)
                for b, s in enumerate(chunk):
                    tokens[b, : len(s)] = s
                    last[b] = len(s) - 1
                logp, _, _ = extend(
                    self.params,
                    cfg,
                    jnp.asarray(tokens),
                    pk,
                    pv,
                    jnp.int32(plen),
                    jnp.asarray(last),
                )
                out[start : start + len(chunk)] = np.asarray(logp)[: len(chunk)]
                self.tokens_evaluated += sum(len(s) for s in chunk)
        return out

    def _sequence_logprobs(self, seqs, top_k: int = 0):
        """From-scratch teacher-forced log-probs, rows of similar length in padded batches."""
        import jax.numpy as jnp

        from quasispecies.bridge.llama import sequence_logprobs

        results: list = [None] * len(seqs)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for s in seqs:
            self._check_length(len(s))
            if len(s) < 2:
                raise ValueError("text: needs at least two tokens to have a scored token")
        i = 0
        with self._lock:
            while i < len(order):
                T = _bucket(len(seqs[order[i]]), 8)
                # rows of similar length share a padded batch
                group = [j for j in order[i:] if _bucket(len(seqs[j]), 8) == T]
                rows = max(1, self.max_tokens_per_batch // T)
                rows = 1 << (rows.bit_length() - 1)
                group = group[:rows]
                B = min(rows, _bucket(len(group)))
                tokens = np.zeros((B, T), dtype=np.int32)
                for b, j in enumerate(group):
                    tokens[b, : len(seqs[j])] = seqs[j]
                lp, vals, idx = sequence_logprobs(
                    self.params, self.config, jnp.asarray(tokens), top_k
                )
                lp = np.asarray(lp, dtype=np.float64)
                if top_k:
                    vals = np.asarray(vals, dtype=np.float64)
                    idx = np.asarray(idx)
                for b, j in enumerate(group):
                    n = len(seqs[j]) - 1
                    results[j] = (
                        lp[b, :n],
                        None if not top_k else vals[b, :n],
                        None if not top_k else idx[b, :n],
                    )
                    self.tokens_evaluated += n + 1
                i += len(group)
        return results


def _load_tokenizer(tokenizer):
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    if isinstance(tokenizer, str | os.PathLike) and Path(tokenizer).is_file():
        return Tokenizer.from_file(str(tokenizer))
    raise ValueError("tokenizer: expected a tokenizers.Tokenizer or the path of a tokenizer.json")
