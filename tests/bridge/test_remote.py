"""RemoteLM (the LM protocol over an OpenAI-compatible server) against the in-process JAX
backend on the same model, served by the package's own server on 127.0.0.1; batching
counted by a server hook; retries, missing capabilities and unreachable servers against
tiny fake servers written here."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from quasispecies.bridge import LM, RemoteLM, TokenizedLM, serve, token_tree
from tests.lm_support import PROMPT, embedded_lm

pytestmark = pytest.mark.lm


@pytest.fixture(scope="module")
def lm():
    return embedded_lm()


@pytest.fixture(scope="module")
def served(lm):
    """The embedded model on a free port; ``seen`` lists the prompt count of every POST."""
    server, url = serve(lm, "127.0.0.1", 0)
    seen: list[int] = []
    base = server.RequestHandlerClass

    class Counting(base):  # type: ignore[misc, valid-type]
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            prompt = json.loads(body).get("prompt")
            seen.append(len(prompt) if isinstance(prompt, list) else 1)
            self.rfile = io.BytesIO(body)
            super().do_POST()

    server.RequestHandlerClass = Counting
    try:
        yield url, seen
    finally:
        server.shutdown()
        server.server_close()


def remote(served, **kw) -> RemoteLM:
    # echo_max_tokens=0: this server allows it, and it saves a forward pass per request
    return RemoteLM(served[0], "smol", echo_max_tokens=0, **kw)


def test_protocol(lm, served):
    r = remote(served)
    assert isinstance(r, LM) and not isinstance(r, TokenizedLM)
    assert isinstance(lm, LM) and isinstance(lm, TokenizedLM)


def test_score_equals_in_process(lm, served):
    r = remote(served)
    pairs = [(PROMPT, " Paris."), (PROMPT + " ", "Paris."), ("Hello", "world"), ("a", "b c d e f")]
    before = len(served[1])
    got = r.score_many(pairs)
    # "Hello" + "world" merges across the boundary: the context is echoed alone as well
    assert len(served[1]) - before == 2
    # the server runs the same float32 forward pass on the same token ids: equal floats
    np.testing.assert_array_equal(got, [lm.score(p, c) for p, c in pairs])
    assert abs(got[0] - (-0.638)) < 1e-3
    np.testing.assert_array_equal(
        r.continuation_logprobs(PROMPT, " Paris."), lm.continuation_logprobs(PROMPT, " Paris.")
    )


def test_prompt_logprobs_scoring_equals_echo(lm, served):
    r = remote(served, scoring="prompt_logprobs")
    got = r.score(PROMPT, " Paris.")
    # this server computes prompt_logprobs from full next-token rows (vocab_logprobs of
    # every prefix in one batch): the reference is that computation, done here
    ids, n = lm.encode(PROMPT + " Paris."), len(lm.encode(PROMPT))
    rows = lm.vocab_logprobs([ids[:i] for i in range(1, len(ids))])
    assert got == float(np.sum([rows[i - 1, ids[i]] for i in range(n, len(ids))]))
    # and the teacher-forced score agrees to float32 rounding (other kernels)
    assert abs(got - lm.score(PROMPT, " Paris.")) < 1e-5


def test_token_logprobs_with_split_characters(lm, served):
    text = "Héllo wörld 😀 is a greeting."
    rec = remote(served).token_logprobs(text, top_k=2)
    local = lm.token_logprobs(text, top_k=2)
    assert rec.logprobs == local.logprobs and rec.token_bytes == local.token_bytes
    assert rec.top_logprobs == local.top_logprobs


def test_next_tokens_batched(lm, served):
    r = remote(served)
    prefixes = [PROMPT, "Once upon a time", "1, 2, 3,"]
    before = len(served[1])
    got = r.next_token_logprobs_many(prefixes, 4)
    assert served[1][before:] == [3]  # one request carrying three prompts
    for p, nt in zip(prefixes, got, strict=True):
        ids, lps = lm.next_token_logprobs_batch([lm.encode(p)], 4)  # one row, as served
        assert nt.token_ids is None
        assert nt.tokens == tuple(lm.token_key(int(i)) for i in ids[0])
        np.testing.assert_array_equal(nt.logprobs, lps[0])


def test_depth2_tree_equals_in_process(lm, served):
    r = remote(served, batch_size=2)
    before = len(served[1])
    tree = token_tree(r, PROMPT, 2, 3)
    # level 0: 1 prefix -> 1 request; level 1: 3 prefixes at 2 per request -> 2 requests
    assert served[1][before:] == [1, 2, 1]
    local = token_tree(lm, PROMPT, 2, 3)
    ids = lm.encode(PROMPT)
    for s in range(tree.num_states):
        path = list(local.tokens[s])
        # precondition of the equality: the prefix text tokenises back to the same ids
        assert lm.encode(PROMPT + local.texts[s]) == ids + path
        assert tree.texts[s] == local.texts[s]
        assert tree.tokens[s] == tuple(lm.token_key(t) for t in path)
    assert tree.mdp.labels == local.mdp.labels and tree.token_texts == local.token_texts
    # Reference: each node's top-4 from the in-process backend, one prefix per call
    # (the server's batch shape); exact. The in-process tree batches a level in one
    # call, whose float32 kernels differ by <= 2e-5 (tests/bridge/test_tree.py).
    for s in range(tree.num_states):
        if tree.depth[s] == 2:
            continue
        _, lps = lm.next_token_logprobs_batch([ids + list(local.tokens[s])], 4)
        np.testing.assert_array_equal(tree.mdp.reward[s, :, 0], lps[0, :3])
        assert tree.next_bound[s] == lps[0, 3]
    np.testing.assert_allclose(tree.logprob, local.logprob, atol=5e-5, rtol=0)


def test_complete_is_greedy(lm, served):
    rec = remote(served).complete([PROMPT], 3)[0]
    ids = lm.encode(PROMPT)
    gen, lps = [], []
    for _ in range(3):
        tok, lp = lm.next_token_logprobs_batch([ids + gen], 1)
        gen.append(int(tok[0, 0]))
        lps.append(float(lp[0, 0]))
    assert rec.tokens == tuple(lm.token_key(t) for t in gen)
    assert rec.logprobs == tuple(lps)


def test_text_only(served):
    r = remote(served)
    with pytest.raises(ValueError, match="no local tokenizer"):
        r.score([1, 2], [3])
    with pytest.raises(ValueError, match="prompt.*text"):
        token_tree(r, [1, 2, 3], 1, 2)


# ----------------------------------------------------------------- fake servers
def _next_token_doc(n: int, k: int = 1) -> dict:
    tops = {f" t{j}": -0.1 * (j + 1) for j in range(k)}
    choice = {
        "text": " t0",
        "logprobs": {
            "tokens": [" t0"],
            "token_logprobs": [-0.1],
            "top_logprobs": [tops],
            "text_offset": [0],
        },
    }
    return {"choices": [{**choice, "index": i} for i in range(n)]}


class Fake:
    """A server answering POSTs with ``answer(request) -> (status, doc)``."""

    def __init__(self, answer):
        self.hits = 0
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                return

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.hits += 1
                code, doc = answer(req, fake.hits)
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    made = []

    def make(answer):
        made.append(Fake(answer))
        return made[-1]

    yield make
    for f in made:
        f.close()


def _n(req) -> int:
    return len(req["prompt"]) if isinstance(req["prompt"], list) else 1


def test_retry_429_then_ok(fake):
    f = fake(
        lambda req, hit: (
            (429, {"error": {"message": "slow down"}})
            if hit == 1
            else (200, _next_token_doc(_n(req)))
        )
    )
    r = RemoteLM(f.url, retries=2, backoff=0.01)
    assert r.next_token_logprobs("x", 1).tokens == (" t0",)
    assert r.requests == 2 and f.hits == 2


def test_500_n_times_is_a_clear_error(fake):
    f = fake(lambda req, hit: (500, {"error": {"message": "boom"}}))
    r = RemoteLM(f.url, retries=3, backoff=0.01, max_backoff=0.02)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"HTTP 500 \(after 4 attempts\): boom"):
        r.next_token_logprobs("x", 1)
    assert f.hits == 4 and r.requests == 4 and time.perf_counter() - t0 < 5
    f400 = fake(lambda req, hit: (400, {"error": {"message": "bad"}}))
    r = RemoteLM(f400.url, retries=3, backoff=0.01)
    with pytest.raises(ValueError, match="HTTP 400: bad"):
        r.next_token_logprobs("x", 1)
    assert f400.hits == 1  # a 4xx other than 429 is not retried
    # scoring: a failing server is reported as such, not as a missing capability
    with pytest.raises(ValueError, match=r"HTTP 500 \(after 2 attempts\)") as err:
        RemoteLM(f.url, retries=1, backoff=0.01).score("a", " b")
    assert "lacks" not in str(err.value)


def test_server_without_echo(fake):
    # ignores echo (answers the generated token only) and knows no prompt_logprobs
    f = fake(lambda req, hit: (200, _next_token_doc(_n(req))))
    r = RemoteLM(f.url)
    with pytest.raises(ValueError, match=f"{f.url}: the server lacks .*echo=true.*prompt_logprobs"):
        r.score("The capital", " is")
    with pytest.raises(ValueError, match=f"{f.url}.*lacks completions with echo=true"):
        RemoteLM(f.url, scoring="echo").score("The capital", " is")


def test_server_echoing_text_but_not_prompt_logprobs(fake):
    # llama-server's shape (llama.cpp issue #27174): the text comes back with echo, the
    # log-probs only for the generated token, and no offsets
    def answer(req, hit):
        if "prompt_logprobs" in req:
            return 400, {"error": {"message": "unknown field prompt_logprobs"}}
        ch = {
            "text": req["prompt"][0] + " x",
            "logprobs": {"tokens": [" x"], "token_logprobs": [-0.5], "top_logprobs": None},
        }
        return 200, {"choices": [{**ch, "index": 0}]}

    f = fake(answer)
    with pytest.raises(ValueError, match="echo=true gave no prompt log-probabilities") as err:
        RemoteLM(f.url).score("The capital", " is")
    assert "unknown field prompt_logprobs" in str(err.value)  # both routes were tried


def test_server_without_logprobs(fake):
    f = fake(
        lambda req, hit: (
            200,
            {"choices": [{"index": i, "text": "a", "logprobs": None} for i in range(_n(req))]},
        )
    )
    with pytest.raises(ValueError, match=f"{f.url}: the server lacks completions with logprobs"):
        RemoteLM(f.url).next_token_logprobs("x", 2)


def test_server_capping_top_k(fake):
    f = fake(lambda req, hit: (200, _next_token_doc(_n(req), k=2)))
    with pytest.raises(ValueError, match=f"{f.url}.*top-5.*returned 2 alternatives"):
        RemoteLM(f.url).next_token_logprobs("x", 5)


def test_server_not_batching(fake):
    f = fake(lambda req, hit: (200, _next_token_doc(1)))
    with pytest.raises(ValueError, match="sent 2 prompts.*got 1 choices.*batch_size=1"):
        RemoteLM(f.url).next_token_logprobs_many(["a", "b"], 1)
    got = RemoteLM(f.url, batch_size=1).next_token_logprobs_many(["a", "b"], 1)
    assert len(got) == 2 and f.hits == 3


def test_unreachable_server():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=f"127.0.0.1:{port}/v1/completions: cannot connect"):
        RemoteLM(f"http://127.0.0.1:{port}/v1").score("a", " b")


def test_bad_arguments():
    for kw, msg in (
        ({"batch_size": 0}, "batch_size"),
        ({"scoring": "x"}, "scoring"),
        ({"retries": -1}, "retries"),
        ({"backoff": float("inf")}, "backoff"),
        ({"echo_max_tokens": 2}, "echo_max_tokens"),
    ):
        with pytest.raises(ValueError, match=msg):
            RemoteLM("http://127.0.0.1:9/v1", **kw)
    with pytest.raises(ValueError, match="base_url"):
        RemoteLM("ftp://x")
