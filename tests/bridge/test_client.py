"""The OpenAI-compatible HTTP client against a server on 127.0.0.1 started here, which
answers with the embedded model's real numbers."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from quasispecies.bridge import OpenAIClient, serve
from tests.lm_support import PROMPT, embedded_lm

pytestmark = pytest.mark.lm


@pytest.fixture(scope="module")
def lm():
    return embedded_lm()


@pytest.fixture(scope="module")
def client(lm):
    server, url = serve(lm, "127.0.0.1", 0)
    try:
        yield OpenAIClient(url, model=lm.name, timeout=60)
    finally:
        server.shutdown()
        server.server_close()


def test_models(client, lm):
    assert client.models() == [lm.name]


def test_score_over_http_equals_local(client, lm):
    assert client.score(PROMPT, " Paris.") == lm.score(PROMPT, " Paris.")
    # the same lm-evaluation-harness whitespace rule on the client side
    assert client.score(PROMPT + " ", "Paris.") == lm.score(PROMPT, " Paris.")
    assert abs(client.score(PROMPT, " Paris.") - (-0.638)) < 1e-3


def test_prompt_logprobs_over_http(client, lm):
    text = "Héllo wörld 😀 is a greeting."
    rec = client.prompt_logprobs(text, top_k=3)
    local = lm.token_logprobs(text, top_k=3)
    assert rec.text == text  # byte-split emoji rebuilt from "bytes:\\x.." tokens
    assert rec.logprobs == local.logprobs
    assert rec.tokens == local.tokens and rec.token_bytes == local.token_bytes
    assert any(t.startswith("bytes:") for t in rec.tokens)
    assert rec.top_logprobs == local.top_logprobs


def test_vllm_prompt_logprobs_over_http(client, lm):
    rec = client.vllm_prompt_logprobs(PROMPT, top_k=2)
    ids = lm.encode(PROMPT)
    assert rec.token_ids == tuple(ids)
    local = lm.token_logprobs(ids)
    # the server computes these in one batch of 4 prefixes (float32; see test_bridge_tree)
    np.testing.assert_allclose(rec.logprobs[1:], local.logprobs[1:], rtol=0, atol=5e-5)


def test_next_token_and_chat(client, lm):
    top = client.next_token_logprobs(PROMPT, 5)
    local = lm.next_token_logprobs(PROMPT, 5)
    assert list(top) == list(local.tokens)
    assert list(top.values()) == list(local.logprobs)
    rec = client.chat_logprobs(
        [{"role": "user", "content": "What is the capital of France?"}], max_tokens=6, top_k=2
    )
    prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    ids = lm.encode(prompt)
    cont = lm.encode(rec.text)
    assert len(rec) == 6
    local = lm.continuation_logprobs(ids, cont)
    np.testing.assert_allclose(rec.logprobs, local, rtol=0, atol=5e-5)  # float32 batch shapes
    assert lm.greedy(prompt, 6) == cont


def test_server_errors_become_value_errors(client):
    with pytest.raises(ValueError, match="HTTP 400: prompt: expected a non-empty string"):
        client._request("completions", {"prompt": ""})
    with pytest.raises(ValueError, match="HTTP 400: max_tokens"):
        client.completion(PROMPT, max_tokens=-1)
    with pytest.raises(ValueError, match="HTTP 404"):
        client._request("nowhere", {"x": 1})
    with pytest.raises(ValueError, match="messages"):
        client.chat([], max_tokens=1)


def test_client_argument_checks():
    with pytest.raises(ValueError, match="base_url"):
        OpenAIClient("ftp://example")
    with pytest.raises(ValueError, match="timeout"):
        OpenAIClient("http://127.0.0.1:1/v1", timeout=0)
    c = OpenAIClient("http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="prompt"):
        c.score("", "x")
    with pytest.raises(ValueError, match="continuation"):
        c.score("x", "")


def test_connection_refused():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = OpenAIClient(f"http://127.0.0.1:{port}/v1", timeout=5)
    with pytest.raises(ConnectionError, match="cannot connect"):
        c.models()


class _Garbage(BaseHTTPRequestHandler):
    """Answers 200 with a truncated JSON body, or a JSON list."""

    def log_message(self, *args):
        return

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = (
            b'{"choices": [{"logprobs": {"tokens": ["a"'
            if "completions" in self.path
            else b"[1, 2]"
        )
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_malformed_server_answers():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        c = OpenAIClient(f"http://127.0.0.1:{server.server_address[1]}/v1", timeout=10)
        with pytest.raises(ValueError, match="not valid JSON"):
            c.prompt_logprobs("hello")
        with pytest.raises(ValueError, match="expected a JSON object"):
            c._request("other", {"a": 1})
    finally:
        server.shutdown()
        server.server_close()
