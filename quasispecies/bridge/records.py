"""One record for per-token log-probabilities, whatever produced them.

Local models (:meth:`LanguageModel.token_logprobs`) and every API parser in
:mod:`quasispecies.bridge.api` return a :class:`TokenLogprobs`, so a score computed
offline and one read from a server compare field by field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["NextTokens", "TokenLogprobs"]


@dataclass(frozen=True)
class TokenLogprobs:
    r"""Tokens of one text with :math:`\log p(\text{token}_i \mid \text{tokens}_{<i})`.

    Attributes
    ----------
    tokens : tuple of str
        Token texts as served (a token that holds part of a UTF-8 character may read
        as ``"\ufffd"`` or ``"bytes:\\xe2"``; ``token_bytes`` then has the real bytes).
    logprobs : tuple of (float or None)
        Natural-log probability of each token given the ones before it; ``None`` where
        no conditional exists (the first prompt token of an echoed prompt). ``-inf``
        (probability 0) is kept as ``-inf``.
    top_logprobs : tuple of (dict or None), or None
        The alternatives the producer listed at each position (token text -> log-prob),
        ``None`` where none were given; the whole field is ``None`` when not requested.
    token_ids : tuple of int, or None
        Token ids, when the producer reports them.
    token_bytes : tuple of (bytes or None), or None
        Raw UTF-8 bytes of each token, when known.
    source : str
        Which format or model produced the record.
    """

    tokens: tuple[str, ...]
    logprobs: tuple[float | None, ...]
    top_logprobs: tuple[dict[str, float] | None, ...] | None = None
    token_ids: tuple[int, ...] | None = None
    token_bytes: tuple[bytes | None, ...] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.tokens)
        for name in ("logprobs", "top_logprobs", "token_ids", "token_bytes"):
            val = getattr(self, name)
            if val is not None and len(val) != n:
                raise ValueError(f"{name}: has {len(val)} entries for {n} tokens")
        for i, lp in enumerate(self.logprobs):
            if lp is None:
                continue
            if not isinstance(lp, int | float) or math.isnan(lp) or lp == math.inf:
                raise ValueError(
                    f"logprobs: entry {i} is {lp!r}; expected a number <= 0, -inf or None"
                )

    def __len__(self) -> int:
        return len(self.tokens)

    def total(self, start: int = 0, stop: int | None = None) -> float:
        """Sum of ``logprobs[start:stop]`` (the log-probability of that token span)."""
        span = self.logprobs[start:stop]
        if any(lp is None for lp in span):
            i = start + next(j for j, lp in enumerate(span) if lp is None)
            raise ValueError(f"start: token {i} ({self.tokens[i]!r}) has no log-probability")
        return float(math.fsum(span))  # type: ignore[arg-type]

    @property
    def text(self) -> str:
        """The text the tokens spell, joined through raw bytes where they are known."""
        if self.token_bytes is not None and all(b is not None for b in self.token_bytes):
            return b"".join(self.token_bytes).decode("utf-8", errors="replace")  # type: ignore[arg-type]
        return "".join(self.tokens)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``-inf`` as the string ``"-inf"``, bytes as lists of ints)."""

        def num(x):
            return "-inf" if x == -math.inf else x

        return {
            "tokens": list(self.tokens),
            "logprobs": [num(x) for x in self.logprobs],
            "top_logprobs": None
            if self.top_logprobs is None
            else [
                None if d is None else {k: num(v) for k, v in d.items()} for d in self.top_logprobs
            ],
            "token_ids": None if self.token_ids is None else list(self.token_ids),
            "token_bytes": None
            if self.token_bytes is None
            else [None if b is None else list(b) for b in self.token_bytes],
            "source": self.source,
        }


@dataclass(frozen=True)
class NextTokens:
    """The ``k`` most likely next tokens after a prefix, best first.

    ``logprobs`` are normalised over the whole vocabulary (so they sum to
    ``log`` of the top-``k`` mass, not to 0). ``token_ids`` is ``None`` when the backend
    has no local tokenizer (a remote server answers with token texts only).
    """

    token_ids: tuple[int, ...] | None
    tokens: tuple[str, ...]
    logprobs: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        """``{token text: log p(token | prefix)}``, best first (a text listed twice keeps the
        later log-prob)."""
        return dict(zip(self.tokens, self.logprobs, strict=True))
