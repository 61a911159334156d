r"""The one language-model protocol every backend implements and every analysis takes.

Three backends implement :class:`LM`: the JAX GGUF backend
(:class:`~quasispecies.bridge.gguf_model.GGUFModel`, :func:`~quasispecies.bridge.lm.default_lm`),
:class:`~quasispecies.bridge.hf.TransformersLM`, and
:class:`~quasispecies.bridge.remote.RemoteLM` (any OpenAI-compatible server). The
analyses (:func:`~quasispecies.bridge.tree.token_tree`, the chaining and collapse
experiments) are typed against :class:`LM` and use only its methods, in **text**:

======================================  ==============================================
method                                  returns
======================================  ==============================================
``score(prompt, continuation)``         :math:`\sum_i \log p(y_i \mid c, y_{<i})`
``score_many(pairs)``                   the same for many pairs, float64 ``(N,)``
``continuation_logprobs(p, c)``         per-token log-probs of ``c`` after ``p``
``continuation_logprobs_many(pairs)``   batched
``next_token_logprobs(prefix, k)``      the top-``k`` next tokens (:class:`NextTokens`)
``next_token_logprobs_many(ps, k)``     batched, one :class:`NextTokens` per prefix
``token_logprobs(text, k)``             every token of ``text`` (:class:`TokenLogprobs`)
``complete(prompts, max_tokens)``       greedy continuations with their log-probs
======================================  ==============================================

A backend **with a local tokenizer** (:class:`TokenizedLM`: ``encode``, ``decode``,
``vocab_size``, ``next_token_logprobs_batch`` over token ids) also takes token ids
wherever text is taken, and the analyses then work on token ids (exact prefixes,
shared-prefix KV caching). A remote server has no local tokenizer: its
:class:`NextTokens` carry ``token_ids = None``, and a prefix is extended by the
token's *text* (the server re-tokenises it), which equals the token-id prefix whenever
that text tokenises back to the same ids (the usual case; see
:func:`~quasispecies.bridge.tree.token_tree`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeGuard, runtime_checkable

import numpy as np

from quasispecies.bridge.records import NextTokens, TokenLogprobs

__all__ = ["LM", "TokenizedLM", "check_lm", "has_tokenizer"]


@runtime_checkable
class LM(Protocol):
    """What every backend offers (module docstring); all texts are ``str``."""

    name: str

    def score(self, prompt, continuation) -> float: ...

    def score_many(self, pairs) -> np.ndarray: ...

    def continuation_logprobs(self, prompt, continuation) -> np.ndarray: ...

    def continuation_logprobs_many(self, pairs) -> list[np.ndarray]: ...

    def next_token_logprobs(self, prefix, top_k: int = 10) -> NextTokens: ...

    def next_token_logprobs_many(self, prefixes, top_k: int) -> list[NextTokens]: ...

    def token_logprobs(self, text, top_k: int = 0) -> TokenLogprobs: ...

    def complete(self, prompts: Sequence[str], max_tokens: int) -> list[TokenLogprobs]: ...


@runtime_checkable
class TokenizedLM(LM, Protocol):
    """An :class:`LM` with a local tokenizer: token ids in and out."""

    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids) -> str: ...

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]: ...

    def token_text(self, token_id: int) -> str: ...

    def next_token_logprobs_batch(self, prefixes, top_k: int) -> tuple[np.ndarray, np.ndarray]: ...


def has_tokenizer(lm) -> TypeGuard[TokenizedLM]:
    """Whether ``lm`` has a local tokenizer (token ids are available)."""
    return isinstance(lm, TokenizedLM) and bool(getattr(lm, "has_tokenizer", True))


def check_lm(lm, name: str = "lm") -> LM:
    """``lm`` if it implements :class:`LM`, else ``ValueError`` naming ``name``."""
    if not isinstance(lm, LM):
        raise ValueError(
            f"{name}: expected a language model implementing quasispecies.bridge.protocol.LM "
            f"(GGUFModel, TransformersLM, RemoteLM or load_lm(spec)), got {type(lm).__name__}"
        )
    return lm
