"""A small OpenAI-compatible HTTP server that answers with a local model's log-probs.

It serves the shapes :mod:`quasispecies.bridge.api` parses, computed by a local
:class:`~quasispecies.bridge.lm.LanguageModel` (greedy decoding, no sampling):

* ``POST /v1/completions`` — ``prompt`` (a string, or a list: one choice each),
  ``max_tokens`` (default 16), ``logprobs`` (top-``k``), ``echo``; the vLLM extension ``prompt_logprobs`` (top-``k``) adds
  ``choices[0].prompt_logprobs`` and ``prompt_token_ids``;
* ``POST /v1/chat/completions`` — ``messages``, ``max_tokens``, ``logprobs``,
  ``top_logprobs``; the prompt is the ChatML template (``<|im_start|>role\\n…``);
* ``GET /v1/models``.

Made for tests and offline demos: it binds to ``127.0.0.1`` by default and serves one
model. Bad requests get HTTP 400 with ``{"error": {"message": ...}}``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

__all__ = ["chatml_prompt", "serve"]


def chatml_prompt(messages) -> str:
    """The ChatML prompt of ``messages`` (SmolLM2's chat template without a default
    system message), ending with the assistant header."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: expected a non-empty list of {role, content} objects")
    parts = []
    for i, m in enumerate(messages):
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("role"), str)
            or not isinstance(m.get("content"), str)
        ):
            raise ValueError(f"messages[{i}]: expected an object with string 'role' and 'content'")
        parts.append(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


def _num(x: float):
    # JSON has no infinity; servers send a very negative number (OpenAI: -9999.0).
    return -9999.0 if x == -math.inf else float(x)


class _Engine:
    def __init__(self, lm):
        self.lm = lm
        eos = getattr(lm, "metadata", {}).get("tokenizer.ggml.eos_token_id")
        self.eos = None if eos is None else int(eos)

    def token_info(self, tid: int):
        """``(raw bytes or None, text)`` of token ``tid``."""
        raw = self.lm.token_bytes([tid])
        b = None if raw is None else raw[0]
        return b, self.lm.token_text(tid)

    def key(self, tid: int) -> str:
        """The token string servers send (``bytes:\\xNN`` for a partial UTF-8 character)."""
        return self.lm.token_key(tid)

    def generate(self, ids: list[int], max_tokens: int, top: int):
        """Greedy continuation: [(id, logprob, [(alt_id, alt_logprob)...])]."""
        out: list[tuple[int, float, list[tuple[int, float]]]] = []
        for _ in range(max_tokens):
            alt_ids, alt_lp = self.lm.next_token_logprobs_batch(
                [ids + [t for t, _, _ in out]], max(top, 1)
            )
            tid = int(alt_ids[0, 0])
            out.append(
                (
                    tid,
                    float(alt_lp[0, 0]),
                    [
                        (int(a), float(v))
                        for a, v in zip(alt_ids[0][:top], alt_lp[0][:top], strict=True)
                    ],
                )
            )
            if tid == self.eos:
                break
        return out

    def completions(self, req: dict) -> dict:
        """Answer ``POST /v1/completions`` (greedy; ``logprobs``, ``echo``, ``prompt_logprobs``)."""
        prompt = req.get("prompt")
        if isinstance(prompt, list) and len(prompt) > 1 and all(isinstance(p, str) for p in prompt):
            # a list of prompts (the completions API's batch form): one choice per prompt
            docs = [self.completions({**req, "prompt": p}) for p in prompt]
            for i, part in enumerate(docs):
                part["choices"][0]["index"] = i
            out = docs[0]
            out["choices"] = [part["choices"][0] for part in docs]
            for key in out["usage"]:
                out["usage"][key] = sum(part["usage"][key] for part in docs)
            return out
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("prompt: expected a non-empty string")
        max_tokens = _int(req.get("max_tokens", 16), "max_tokens")
        k = req.get("logprobs")
        k = None if k is None else _int(k, "logprobs")
        echo = bool(req.get("echo", False))
        pk = req.get("prompt_logprobs")
        pk = None if pk is None else _int(pk, "prompt_logprobs")
        ids = self.lm.encode(prompt)
        gen = self.generate(ids, max_tokens, k or 0)
        text = self.lm.decode([t for t, _, _ in gen])
        choice: dict = {
            "index": 0,
            "finish_reason": "stop" if gen and gen[-1][0] == self.eos else "length",
        }
        choice["text"] = (prompt + text) if echo else text
        if k is not None:
            entries: list[tuple[int, float | None, list[tuple[int, float]] | None]] = []
            if echo:
                entries.append((ids[0], None, None))
                if len(ids) > 1:
                    lp, vals, idx = self.lm.sequence_logprobs([ids], max(k, 1))[0]
                    for i in range(1, len(ids)):
                        alts = [
                            (int(a), float(v))
                            for a, v in zip(idx[i - 1][:k], vals[i - 1][:k], strict=True)
                        ]
                        entries.append((ids[i], float(lp[i - 1]), alts))
            entries.extend(gen)
            tokens: list[str] = []
            lps: list[float | None] = []
            tops: list[dict[str, float] | None] = []
            offsets: list[int] = []
            pos = 0 if echo else len(prompt)  # offsets index prompt + completion
            for tid, entry_lp, entry_alts in entries:
                _raw, t = self.token_info(tid)
                tokens.append(self.key(tid))
                lps.append(None if entry_lp is None else _num(entry_lp))
                if entry_alts is None:
                    tops.append(None)
                else:
                    d: dict[str, float] = {}
                    for a, v in entry_alts:
                        d.setdefault(self.key(a), _num(v))
                    tops.append(d)
                offsets.append(pos)
                pos += len(t)
            choice["logprobs"] = {
                "tokens": tokens,
                "token_logprobs": lps,
                "top_logprobs": tops,
                "text_offset": offsets,
            }
        else:
            choice["logprobs"] = None
        if pk is not None:
            plp: list = [None]
            if len(ids) > 1:
                dists = self.lm.vocab_logprobs([ids[:i] for i in range(1, len(ids))])
                for i in range(1, len(ids)):
                    dist = dists[i - 1]
                    chosen = float(dist[ids[i]])
                    entry = {
                        str(ids[i]): {
                            "logprob": _num(chosen),
                            "rank": int((dist > chosen).sum()) + 1,
                            "decoded_token": self.lm.token_text(ids[i]),
                        }
                    }
                    for r, a in enumerate(np.argsort(-dist, kind="stable")[:pk], start=1):
                        entry.setdefault(
                            str(int(a)),
                            {
                                "logprob": _num(float(dist[a])),
                                "rank": r,
                                "decoded_token": self.lm.token_text(int(a)),
                            },
                        )
                    plp.append(entry)
            choice["prompt_logprobs"] = plp
            choice["prompt_token_ids"] = ids
        return {
            "id": "cmpl-local",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.lm.name,
            "choices": [choice],
            "usage": {
                "prompt_tokens": len(ids),
                "completion_tokens": len(gen),
                "total_tokens": len(ids) + len(gen),
            },
        }

    def chat(self, req: dict) -> dict:
        """Answer ``POST /v1/chat/completions`` on the ChatML prompt (greedy)."""
        prompt = chatml_prompt(req.get("messages"))
        max_tokens = _int(req.get("max_tokens", 16), "max_tokens")
        want = bool(req.get("logprobs", False))
        k = _int(req.get("top_logprobs", 0) or 0, "top_logprobs")
        ids = self.lm.encode(prompt)
        gen = self.generate(ids, max_tokens, k)
        content = [t for t, _, _ in gen if t != self.eos]
        msg = {"role": "assistant", "content": self.lm.decode(content)}
        choice: dict = {
            "index": 0,
            "message": msg,
            "finish_reason": "stop" if gen and gen[-1][0] == self.eos else "length",
        }
        if want:
            entries = []
            for tid, lp, alts in gen:
                raw, t = self.token_info(tid)
                alt_entries = []
                for a, v in alts[:k]:
                    ab, at = self.token_info(a)
                    alt_entries.append(
                        {"token": at, "logprob": _num(v), "bytes": None if ab is None else list(ab)}
                    )
                entries.append(
                    {
                        "token": t,
                        "logprob": _num(lp),
                        "bytes": None if raw is None else list(raw),
                        "top_logprobs": alt_entries,
                    }
                )
            choice["logprobs"] = {"content": entries, "refusal": None}
        else:
            choice["logprobs"] = None
        return {
            "id": "chatcmpl-local",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.lm.name,
            "choices": [choice],
        }


def _int(x, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {x!r}")
    return x


def _handler(engine: _Engine):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep test output clean
            return

        def _send(self, code: int, doc: dict) -> None:
            body = json.dumps(doc).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(
                    200, {"object": "list", "data": [{"id": engine.lm.name, "object": "model"}]}
                )
            else:
                self._send(404, {"error": {"message": f"unknown path {self.path}"}})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            try:
                req = json.loads(body)
                if not isinstance(req, dict):
                    raise ValueError("request body: expected a JSON object")
            except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
                self._send(400, {"error": {"message": f"invalid JSON body: {err}"}})
                return
            route = self.path.rstrip("/")
            try:
                if route == "/v1/completions":
                    doc = engine.completions(req)
                elif route == "/v1/chat/completions":
                    doc = engine.chat(req)
                else:
                    self._send(404, {"error": {"message": f"unknown path {self.path}"}})
                    return
            except ValueError as err:
                self._send(400, {"error": {"message": str(err)}})
                return
            self._send(200, doc)

    return Handler


def serve(lm, host: str = "127.0.0.1", port: int = 0):
    """Start serving ``lm`` in a daemon thread; returns ``(server, base_url)``.

    ``port = 0`` picks a free port. Stop with ``server.shutdown(); server.server_close()``.
    """
    server = ThreadingHTTPServer((host, port), _handler(_Engine(lm)))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, name="quasispecies-lm-server", daemon=True
    )
    thread.start()
    h, p = server.server_address[:2]
    host = h.decode() if isinstance(h, bytes) else str(h)
    return server, f"http://{host}:{p}/v1"
