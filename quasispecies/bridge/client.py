r"""A minimal client for OpenAI-compatible servers (OpenAI, vLLM, llama.cpp, TGI …).

Only the standard library (:mod:`urllib`); every answer is parsed by
:mod:`quasispecies.bridge.api` into a :class:`TokenLogprobs`.

:meth:`OpenAIClient.score` computes :math:`\log p(y \mid c)` from one echoed request for
``c + y`` (``max_tokens = 0``, ``echo = true``): the continuation is the tokens whose
``text_offset`` is at or after the end of the context, after moving the context's
trailing whitespace to the continuation (the lm-evaluation-harness convention).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from quasispecies.bridge.api import (
    parse_chat_logprobs,
    parse_completion_logprobs,
    parse_vllm_prompt_logprobs,
)
from quasispecies.bridge.records import TokenLogprobs

__all__ = ["HTTPStatusError", "OpenAIClient"]


class HTTPStatusError(ValueError):
    """A server's HTTP error answer (a ``ValueError``); ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class OpenAIClient:
    """Talk to ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``).

    Parameters
    ----------
    base_url : str
        Server root including ``/v1``.
    model : str, optional
        Model name sent with every request (servers with one model ignore it).
    api_key : str, optional
        Sent as ``Authorization: Bearer``; never logged.
    timeout : float
        Seconds per request.
    retries : int
        Extra attempts after an HTTP 429 or 5xx answer (default 0: fail at once); the
        ``n``-th retry waits ``min(backoff * 2**(n-1), max_backoff)`` seconds, or the
        server's ``Retry-After`` if shorter than ``max_backoff``.
    backoff, max_backoff : float
        Seconds (see ``retries``).

    Attributes
    ----------
    requests : int
        HTTP requests sent so far (every attempt, retries included): the cost counter.
    """

    #: HTTP statuses that are retried (rate limit, server errors).
    RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        *,
        retries: int = 0,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: expected an http(s) URL, got {base_url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout: must be positive, got {timeout!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries: expected an integer >= 0, got {retries!r}")
        for name, v in (("backoff", backoff), ("max_backoff", max_backoff)):
            if not (isinstance(v, int | float) and 0 <= v < float("inf")):
                raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.requests = 0

    def __repr__(self) -> str:
        return f"OpenAIClient({self.base_url!r}, model={self.model!r})"

    # ------------------------------------------------------------------ HTTP
    def _request(self, path: str, payload: dict | None = None) -> dict:
        url = f"{self.base_url}/{path.lstrip('/')}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = None
        if payload is not None:
            if self.model is not None:
                payload = {"model": self.model, **payload}
            data = json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(
            url, data=data, headers=headers, method="POST" if data else "GET"
        )
        attempt = 0
        while True:
            self.requests += 1
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    body = resp.read()
                break
            except urllib.error.HTTPError as err:
                detail = err.read()[:500].decode("utf-8", errors="replace")
                try:
                    detail = json.loads(detail)["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    pass
                if err.code in self.RETRY_STATUS and attempt < self.retries:
                    attempt += 1
                    time.sleep(self._wait(attempt, err.headers.get("Retry-After")))
                    continue
                tries = f" (after {attempt + 1} attempts)" if attempt else ""
                raise HTTPStatusError(
                    f"{url}: HTTP {err.code}{tries}: {detail}", err.code
                ) from None
            except urllib.error.URLError as err:
                raise ConnectionError(f"{url}: cannot connect ({err.reason})") from None
            except TimeoutError:
                raise ConnectionError(
                    f"{url}: no answer within {self.timeout:g} s (timeout)"
                ) from None
        try:
            doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{url}: the response is not valid JSON ({err})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{url}: expected a JSON object, got {type(doc).__name__}")
        return doc

    def _wait(self, attempt: int, retry_after) -> float:
        """Seconds before retry ``attempt`` (exponential back-off, capped)."""
        wait = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
        try:
            ra = float(retry_after)
        except (TypeError, ValueError):
            return wait
        return min(max(ra, 0.0), self.max_backoff) if ra == ra else wait

    def models(self) -> list[str]:
        """Model ids listed by ``GET /models``."""
        doc = self._request("models")
        return [m["id"] for m in doc.get("data", []) if isinstance(m, dict) and "id" in m]

    def completion(self, prompt: str, **params) -> dict:
        """Raw ``POST /completions`` (any extra OpenAI / vLLM parameters pass through)."""
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("prompt: expected a non-empty string")
        return self._request("completions", {"prompt": prompt, **params})

    def completion_many(self, prompts: list[str], **params) -> dict:
        """One ``POST /completions`` for several prompts (the API takes a list); the
        answer has one choice per prompt (``choices[i].index``)."""
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) and p for p in prompts)
        ):
            raise ValueError("prompts: expected a non-empty list of non-empty strings")
        return self._request("completions", {"prompt": prompts, **params})

    def chat(self, messages: list[dict], **params) -> dict:
        """Raw ``POST /chat/completions``."""
        return self._request("chat/completions", {"messages": messages, **params})

    # -------------------------------------------------------------- log-probs
    def prompt_logprobs(self, text: str, top_k: int = 0) -> TokenLogprobs:
        """Log-probability of every token of ``text`` (echo, no generation); first is ``None``."""
        doc = self.completion(text, max_tokens=0, echo=True, logprobs=int(top_k), temperature=0)
        return parse_completion_logprobs(doc)

    def vllm_prompt_logprobs(self, text: str, top_k: int = 1) -> TokenLogprobs:
        """The same through vLLM's ``prompt_logprobs`` extension."""
        doc = self.completion(text, max_tokens=1, prompt_logprobs=int(top_k), temperature=0)
        return parse_vllm_prompt_logprobs(doc)

    def score(self, prompt: str, continuation: str) -> float:
        """:math:`\\sum_i \\log p(y_i \\mid c, y_{<i})` for ``continuation`` after ``prompt``."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt: expected a non-empty string")
        if not isinstance(continuation, str) or not continuation:
            raise ValueError("continuation: expected a non-empty string")
        n_spaces = len(prompt) - len(prompt.rstrip())
        if n_spaces:
            continuation = prompt[-n_spaces:] + continuation
            prompt = prompt[:-n_spaces]
        doc = self.completion(
            prompt + continuation, max_tokens=0, echo=True, logprobs=0, temperature=0
        )
        rec = parse_completion_logprobs(doc)
        lp = doc["choices"][0]["logprobs"]
        offsets = lp.get("text_offset")
        if offsets is None:  # rebuild offsets from the token texts
            offsets, pos = [], 0
            for t in rec.tokens:
                offsets.append(pos)
                pos += len(t)
        start = next((i for i, o in enumerate(offsets) if o >= len(prompt)), None)
        if start is None:
            raise ValueError(f"continuation: {continuation!r} adds no token to the prompt")
        if start == 0:
            raise ValueError("prompt: the server's tokens do not start with the prompt")
        return rec.total(start)

    def next_token_logprobs(self, prompt: str, top_k: int = 5) -> dict[str, float]:
        """The server's ``top_k`` next tokens after ``prompt``, token text -> log-prob, best first."""
        doc = self.completion(prompt, max_tokens=1, logprobs=int(top_k), temperature=0)
        rec = parse_completion_logprobs(doc)
        if not rec.top_logprobs or rec.top_logprobs[0] is None:
            raise ValueError("response: no top_logprobs for the generated token")
        return dict(sorted(rec.top_logprobs[0].items(), key=lambda kv: -kv[1]))

    def chat_logprobs(
        self, messages: list[dict], max_tokens: int = 16, top_k: int = 0
    ) -> TokenLogprobs:
        """Log-probs of the reply's tokens (chat completions ``logprobs.content``)."""
        params: dict = {"max_tokens": int(max_tokens), "logprobs": True, "temperature": 0}
        if top_k:
            params["top_logprobs"] = int(top_k)
        return parse_chat_logprobs(self.chat(messages, **params))
