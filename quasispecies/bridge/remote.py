r"""A language model behind any OpenAI-compatible server (vLLM, llama.cpp, OpenAI, this
package's ``lm serve``), as an :class:`~quasispecies.bridge.protocol.LM`.

Every request is ``POST /v1/completions`` with ``temperature = 0`` and a *list* of
prompts (``batch_size`` per request; the completions API answers one choice each):

* **scoring** (``score``, ``continuation_logprobs``, ``token_logprobs``): ``echo =
  true`` + ``logprobs``, the prompt's own tokens come back with
  :math:`\log p(x_i \mid x_{<i})` (lm-evaluation-harness's method); where a server
  lacks echo, vLLM's ``prompt_logprobs`` extension is used instead (``scoring="auto"``).
  The continuation is the tokens whose ``text_offset`` lies in the continuation, after
  moving the context's trailing whitespace to it (the harness's split). When a served
  token straddles the boundary, the context alone is echoed too and the split is the
  harness's ``len(encode(context))``, as in :meth:`LanguageModel.encode_pair`;
* **next tokens** (``next_token_logprobs``): ``max_tokens = 1``, ``logprobs = k``, the
  top-``k`` of the first generated token (servers cap ``k``: OpenAI at 5, vLLM at its
  ``--max-logprobs``, 20 by default; asking for more is refused by name);
* **generation** (``complete``): greedy, ``logprobs = 1``.

A server error 429/5xx is retried ``retries`` times with exponential back-off
(:class:`~quasispecies.bridge.client.OpenAIClient`); ``requests`` counts every HTTP
request sent. A server without echo/logprobs is refused with a ``ValueError`` naming
its URL and the missing capability.

There is no local tokenizer: inputs are text, :class:`NextTokens` carry ``token_ids =
None`` and tokens as the server spells them (``bytes:\xNN`` for part of a UTF-8
character). The server applies its own BOS rule (vLLM and llama.cpp prepend BOS where
the model's tokenizer says so; the in-process backends never do).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quasispecies.bridge.api import parse_completion_logprobs, parse_vllm_prompt_logprobs
from quasispecies.bridge.api_fields import token_and_bytes
from quasispecies.bridge.client import HTTPStatusError, OpenAIClient
from quasispecies.bridge.records import NextTokens, TokenLogprobs

__all__ = ["RemoteLM"]

SCORING = ("auto", "echo", "prompt_logprobs")


def _texts(xs, name: str) -> list[str]:
    if isinstance(xs, str) or not isinstance(xs, Sequence) or not len(xs):
        raise ValueError(f"{name}: expected a non-empty list of texts")
    return [_text(x, name) for x in xs]


def _text(x, name: str) -> str:
    if not isinstance(x, str):
        raise ValueError(
            f"{name}: expected a string, got {type(x).__name__} (a remote model has no "
            "local tokenizer, so it takes text, not token ids)"
        )
    if not x:
        raise ValueError(f"{name}: empty string")
    return x


def _split_space(context: str, continuation: str) -> tuple[str, str]:
    if not isinstance(context, str) or not isinstance(continuation, str):
        raise ValueError(
            "prompt, continuation: expected strings (a remote model has no local tokenizer)"
        )
    if continuation == "":
        raise ValueError("continuation: empty string; there is nothing to score")
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    if not context:
        raise ValueError("prompt: empty or only whitespace; the first token has no condition")
    return context, continuation


class RemoteLM:
    """The model served at ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``).

    Parameters
    ----------
    base_url : str
        Server root including ``/v1``.
    model : str, optional
        Model name sent with every request (vLLM requires the served name).
    api_key : str, optional
        Sent as ``Authorization: Bearer``.
    timeout : float
        Seconds per HTTP request.
    retries, backoff, max_backoff
        Retries of a 429/5xx answer and their back-off (seconds), see
        :class:`~quasispecies.bridge.client.OpenAIClient`.
    batch_size : int
        Prompts per request (``1`` for a server that refuses a list of prompts).
    scoring : ``"auto"`` | ``"echo"`` | ``"prompt_logprobs"``
        How prompt tokens are scored; ``"auto"`` tries echo, then vLLM's
        ``prompt_logprobs``, and remembers what worked.
    echo_max_tokens : int
        ``max_tokens`` of an echoed scoring request: 1 (default; every server takes it,
        the generated token is dropped) or 0 (saves that token where allowed).
    """

    has_tokenizer = False

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        batch_size: int = 16,
        scoring: str = "auto",
        echo_max_tokens: int = 1,
    ):
        self.client = OpenAIClient(
            base_url,
            model,
            api_key,
            timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if scoring not in SCORING:
            raise ValueError(f"scoring: expected one of {', '.join(SCORING)}, got {scoring!r}")
        if echo_max_tokens not in (0, 1):
            raise ValueError(f"echo_max_tokens: expected 0 or 1, got {echo_max_tokens!r}")
        self.base_url = self.client.base_url
        self.model = model
        self.name = model or self.base_url
        self.batch_size = batch_size
        self.scoring = scoring
        self.echo_max_tokens = echo_max_tokens

    def __repr__(self) -> str:
        return f"RemoteLM({self.base_url!r}, model={self.model!r})"

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self.client.requests

    # ------------------------------------------------------------------ HTTP
    def _choices(self, prompts: list[str], **params) -> list[dict]:
        """One choice per prompt, in order, ``batch_size`` prompts per request."""
        out: list[dict] = []
        for i in range(0, len(prompts), self.batch_size):
            chunk = prompts[i : i + self.batch_size]
            try:
                doc = self.client.completion_many(chunk, temperature=0, **params)
            except ConnectionError as err:  # an unreachable server is a bad --lm / base_url
                raise ValueError(f"{err}; is an OpenAI-compatible server running there?") from None
            choices = doc.get("choices")
            if not isinstance(choices, list) or len(choices) != len(chunk):
                got = len(choices) if isinstance(choices, list) else 0
                raise ValueError(
                    f"{self.base_url}: sent {len(chunk)} prompts in one request, got {got} "
                    "choices back (a server that does not batch prompts needs batch_size=1)"
                )
            if all(isinstance(c, dict) and isinstance(c.get("index"), int) for c in choices):
                choices = sorted(choices, key=lambda c: c["index"])
            out.extend(choices)
        return out

    def _missing(self, what: str, err: Exception | str) -> ValueError:
        return ValueError(f"{self.base_url}: the server lacks {what} ({err})")

    def _echo(self, texts: list[str], top_k: int) -> list[tuple[TokenLogprobs, list[int]]]:
        """``(record, character offsets)`` of every prompt token of each text."""
        modes = ["echo", "prompt_logprobs"] if self.scoring == "auto" else [self.scoring]
        errors = []
        for mode in modes:
            try:
                out = self._echo_as(mode, texts, top_k)
            except HTTPStatusError as err:
                if err.status in OpenAIClient.RETRY_STATUS:
                    raise  # a server failure, not a missing capability
                errors.append(f"{mode}: {err}")
                continue
            except ValueError as err:
                errors.append(f"{mode}: {err}")
                continue
            self.scoring = mode
            return out
        need = (
            "completions with echo=true and logprobs, and vLLM's prompt_logprobs"
            if len(modes) == 2
            else ("completions with echo=true and logprobs" if modes == ["echo"] else modes[0])
        )
        raise self._missing(f"{need}, needed to score text", "; ".join(errors))

    def _echo_as(self, mode: str, texts: list[str], top_k: int):
        out = []
        k = max(int(top_k), 1)
        if mode == "echo":
            choices = self._choices(texts, echo=True, logprobs=k, max_tokens=self.echo_max_tokens)
        else:
            choices = self._choices(texts, prompt_logprobs=k, max_tokens=1)
        for text, ch in zip(texts, choices, strict=True):
            if mode == "echo":
                rec = parse_completion_logprobs({"choices": [ch]})
                offsets = ch["logprobs"].get("text_offset")
                served = ch.get("text")
                if (offsets and offsets[0] != 0) or (
                    isinstance(served, str) and not served.startswith(text)
                ):
                    raise ValueError("echo=true was ignored (the prompt tokens did not come back)")
                if rec.logprobs and rec.logprobs[0] is not None:
                    # the first echoed token has no condition: a number there means the
                    # server sent the generated token's log-prob only (llama-server)
                    raise ValueError("echo=true gave no prompt log-probabilities")
            else:
                rec = parse_vllm_prompt_logprobs({"choices": [ch]})
                offsets = None
            starts = _byte_starts(text, rec, offsets)
            keep = sum(b < len(text.encode("utf-8")) for b in starts)
            if mode == "echo" and keep == len(rec) and isinstance(served, str):
                if len(served) > len(text) and self.echo_max_tokens:
                    # text was generated but no entry came for it: llama-cpp-python's
                    # layout, whose echoed rows are shifted by one position
                    raise ValueError(
                        "echo=true log-probs are shifted by one position (entry i is read "
                        "after token i; llama-cpp-python issue #1983), so they are not "
                        "log p(token | prefix)"
                    )
            out.append((_head(rec, keep, top_k), starts[:keep]))
        return out

    # -------------------------------------------------------------- protocol
    def token_logprobs(self, text, top_k: int = 0) -> TokenLogprobs:
        """Every token of ``text`` with :math:`\\log p` given the ones before it (the first
        is ``None``), as the server tokenises it."""
        return self._echo([_text(text, "text")], top_k)[0][0]

    def continuation_logprobs_many(self, pairs) -> list[np.ndarray]:
        """Per-token log-probs of each continuation after its prompt (module docstring)."""
        if isinstance(pairs, str) or not isinstance(pairs, Sequence) or not len(pairs):
            raise ValueError("pairs: expected a non-empty list of (prompt, continuation)")
        split = [_split_space(p, c) for p, c in pairs]
        echoed = self._echo([c + y for c, y in split], 0)
        straddle = []
        for j, ((c, _), (_, offs)) in enumerate(zip(split, echoed, strict=True)):
            nc = len(c.encode("utf-8"))
            if any(o < nc < e for o, e in zip(offs, [*offs[1:], 1 << 60], strict=True)):
                straddle.append(j)
        n_ctx = {}
        if straddle:  # the harness's split: as many tokens as the context has alone
            alone = self._echo([split[j][0] for j in straddle], 0)
            n_ctx = {j: len(rec) for j, (rec, _) in zip(straddle, alone, strict=True)}
        out = []
        for j, ((c, y), (rec, offs)) in enumerate(zip(split, echoed, strict=True)):
            n = n_ctx.get(j, sum(o < len(c.encode("utf-8")) for o in offs))
            if n == 0:
                raise ValueError(f"prompt: {c!r} gives no token of its own on {self.base_url}")
            if n >= len(rec):
                raise ValueError(f"continuation: {y!r} adds no token to the prompt")
            out.append(np.array(rec.logprobs[n:], dtype=np.float64))
        return out

    def continuation_logprobs(self, prompt, continuation) -> np.ndarray:
        """Per-token :math:`\\log p(y_i \\mid c, y_{<i})` of ``continuation`` (float64)."""
        return self.continuation_logprobs_many([(prompt, continuation)])[0]

    def score(self, prompt, continuation) -> float:
        """:math:`\\sum_i \\log p(y_i \\mid c, y_{<i})` (a Python float)."""
        return float(np.sum(self.continuation_logprobs(prompt, continuation)))

    def score_many(self, pairs) -> np.ndarray:
        """:meth:`score` of each pair, batched (float64 ``(N,)``)."""
        return np.array([float(np.sum(x)) for x in self.continuation_logprobs_many(pairs)])

    def next_token_logprobs_many(self, prefixes, top_k: int) -> list[NextTokens]:
        """The ``top_k`` next tokens after each text prefix, best first (one request per
        ``batch_size`` prefixes)."""
        prefixes = _texts(prefixes, "prefixes")
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
            raise ValueError(f"top_k: expected a positive integer, got {top_k!r}")
        choices = self._choices(prefixes, max_tokens=1, logprobs=int(top_k))
        out = []
        for ch in choices:
            try:
                rec = parse_completion_logprobs({"choices": [ch]})
            except ValueError as err:
                raise self._missing("completions with logprobs=<k>", err) from None
            tops = rec.top_logprobs[0] if rec.top_logprobs else None
            if not tops or len(tops) < top_k:
                got = len(tops) if tops else 0
                raise self._missing(
                    f"top-{top_k} log-probabilities (logprobs={top_k})",
                    f"it returned {got} alternatives; servers cap logprobs, e.g. OpenAI at 5 "
                    "and vLLM at --max-logprobs",
                )
            best = sorted(tops.items(), key=lambda kv: -kv[1])[: int(top_k)]
            out.append(
                NextTokens(
                    token_ids=None,
                    tokens=tuple(t for t, _ in best),
                    logprobs=tuple(float(v) for _, v in best),
                )
            )
        return out

    def next_token_logprobs(self, prefix, top_k: int = 10) -> NextTokens:
        """The ``top_k`` most likely next tokens after the text ``prefix``."""
        return self.next_token_logprobs_many([_text(prefix, "prefix")], top_k)[0]

    def complete(self, prompts, max_tokens: int) -> list[TokenLogprobs]:
        """Greedy continuation of each prompt, at most ``max_tokens`` tokens (a server
        stops early at end-of-sequence), with the generated tokens' log-probs."""
        prompts = _texts(prompts, "prompts")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens: expected an integer >= 1, got {max_tokens!r}")
        choices = self._choices(prompts, max_tokens=max_tokens, logprobs=1)
        try:
            return [parse_completion_logprobs({"choices": [ch]}) for ch in choices]
        except ValueError as err:
            raise self._missing("completions with logprobs", err) from None


def _byte_starts(text: str, rec: TokenLogprobs, char_offsets) -> list[int]:
    """Byte offset in ``text`` (UTF-8) where each served token starts.

    From the tokens' raw bytes (``bytes:\\xNN`` decoded) when they spell ``text``; else
    (a BOS token, U+FFFD for part of a character) from the server's character
    ``text_offset``. A first token of unknown text (vLLM's
    ``prompt_logprobs`` has no entry for it) is whatever the others leave of ``text``.
    """
    toks = [token_and_bytes(t)[1] for t in rec.tokens]
    if rec.token_bytes is not None and all(b is not None for b in rec.token_bytes):
        toks = list(rec.token_bytes)  # type: ignore[arg-type]
    if toks and toks[0] == b"":
        rest = sum(len(t) for t in toks[1:])
        toks[0] = text.encode("utf-8")[: max(len(text.encode("utf-8")) - rest, 0)]
    out, pos = [], 0
    for t in toks:
        out.append(pos)
        pos += len(t)
    raw = text.encode("utf-8")
    spelled = b"".join(toks)
    if char_offsets and not (spelled.startswith(raw) or raw.startswith(spelled)):
        # the tokens do not spell the text (a BOS token, U+FFFD for part of a character):
        # trust the server's character offsets instead
        return [len(text[: int(o)].encode("utf-8")) for o in char_offsets]
    return out


def _head(rec: TokenLogprobs, n: int, top_k: int) -> TokenLogprobs:
    """The first ``n`` tokens of ``rec`` (drops the generated ones); alternatives only
    when ``top_k > 0`` (an echo request always asks for at least one)."""

    def cut(x):
        return None if x is None else tuple(x[:n])

    return TokenLogprobs(
        tokens=tuple(rec.tokens[:n]),
        logprobs=tuple(rec.logprobs[:n]),
        top_logprobs=cut(rec.top_logprobs) if top_k else None,
        token_ids=cut(rec.token_ids),
        token_bytes=cut(rec.token_bytes),
        source=rec.source,
    )
