"""A real third-party server: llama-cpp-python's OpenAI-compatible server (``make interop``
installs it; plain ``make test`` skips this file) serving the embedded GGUF on 127.0.0.1.
The remote backend's top-k next tokens, a depth-2 token tree (and its cached rebuild) and
the scores it can read agree with the JAX backend on the same file.

Tolerance ``TOL``: llama.cpp multiplies the Q4_1 weights against activations it quantises
to 8 bits (Q8_1) and accumulates in float32 with its own kernels; the JAX backend
dequantises the weights and multiplies float32 activations. On this 30-layer model the two
log-probs differ by up to ~0.25 nats (0.23 measured over 20 top-5 tokens of 4 prompts,
mean 0.08), so TOL = 0.4 nats, and token orders are compared only where JAX's gap between
neighbours exceeds 2 TOL.

Upstream bug pinned here: llama-cpp-python's ``echo=true`` log-probs are shifted by one
position (abetlen/llama-cpp-python#1983: entry ``i`` holds the distribution *after* token
``i``, and the one for token 1 is dropped), so an echoed score is not ``log p(y | c)``;
:func:`test_echo_rows_are_shifted_and_the_right_row_agrees` checks both facts, and
``RemoteLM.score`` refuses that layout with an error naming it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("uvicorn")

from quasispecies.bridge import token_tree
from quasispecies.bridge.gguf_file import default_gguf_path
from quasispecies.bridge.remote import RemoteLM
from tests.lm_support import embedded_lm

pytestmark = pytest.mark.lm

TOL = 0.4
PROMPTS = ["The capital of France is", "Once upon a time", "Water boils at", "I think that"]
START_TIMEOUT = 180  # seconds for the server to load the model and answer /v1/models


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w")
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path())]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "2"]
    cmd += ["--logits_all", "true"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode} (see {log.name})")
            try:
                urllib.request.urlopen(url + "/models", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer within {START_TIMEOUT} s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def remote(server):
    # llama-cpp-python answers a list of prompts with HTTP 500: one prompt per request
    return RemoteLM(server, batch_size=1, timeout=120, retries=0)


def _post(url: str, doc: dict) -> dict:
    req = urllib.request.Request(
        url + "/completions", json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def test_next_tokens_agree(remote):
    lm = embedded_lm()
    diffs = []
    for p in PROMPTS:
        got = remote.next_token_logprobs(p, 5)
        ref = lm.next_token_logprobs(p, 20)
        table = dict(zip(ref.tokens, ref.logprobs, strict=True))
        for t, v in zip(got.tokens, got.logprobs, strict=True):
            assert t in table, f"{p!r}: server's {t!r} not in JAX's top 20"
            diffs.append(abs(v - table[t]))
        if ref.logprobs[0] - ref.logprobs[1] > 2 * TOL:
            assert got.tokens[0] == ref.tokens[0]
    assert max(diffs) < TOL, f"max |diff| {max(diffs):.3f} nats"


def test_depth2_tree_agrees_and_rebuilds_from_cache(remote, tmp_path):
    lm = embedded_lm()
    prompt = PROMPTS[0]
    ref = token_tree(lm, prompt, 2, 3)
    before = remote.requests
    got = token_tree(remote, prompt, 2, 3, cache=tmp_path / "c", batch_size=2)
    sent = remote.requests - before
    assert sent == 1 + 3  # one next-token request per internal node (batch_size=1)
    by_text = {t: i for i, t in enumerate(ref.texts)}
    common = 0
    for s, text in enumerate(got.texts):
        if s and text in by_text:
            common += 1
            assert abs(got.logprob[s] - ref.logprob[by_text[text]]) < 2 * TOL, text
    assert got.texts[1] == ref.texts[1]  # " Paris": JAX's gap to the next token is 2.5 nats
    assert common >= 8  # of 12 non-root states; near-ties may reorder the rest
    again = token_tree(remote, prompt, 2, 3, cache=tmp_path / "c")
    assert remote.requests - before == sent  # the rebuild asked the server nothing
    assert again.texts == got.texts
    np.testing.assert_array_equal(again.logprob, got.logprob)


def test_echo_rows_are_shifted_and_the_right_row_agrees(server):
    lm = embedded_lm()
    text = "The capital of France is Paris."
    doc = _post(server, {"prompt": text, "max_tokens": 1, "echo": True, "logprobs": 5})
    lp = doc["choices"][0]["logprobs"]
    ids = lm.encode(text)
    assert lp["tokens"] == [lm.token_text(i) for i in ids]
    full = lm.vocab_logprobs([ids[: i + 1] for i in range(len(ids))])
    # the bug: entry i is log p(token_i | tokens[: i + 1]), i.e. read from the next row
    shifted = [full[i, ids[i]] for i in range(1, len(ids))]
    np.testing.assert_allclose(lp["token_logprobs"][1:], shifted, atol=TOL)
    # the right numbers sit one row earlier: row i predicts token i + 1 (for i >= 1)
    right = [lp["top_logprobs"][i][lp["tokens"][i + 1]] for i in range(3, len(ids) - 1)]
    want = [full[i, ids[i + 1]] for i in range(3, len(ids) - 1)]
    np.testing.assert_allclose(right, want, atol=TOL)
    # so "Paris." scored from the right rows agrees with the JAX score
    assert sum(right[-2:]) == pytest.approx(
        lm.score("The capital of France is", " Paris."), abs=2 * TOL
    )


def test_remote_score_refuses_the_shifted_echo(remote):
    # RemoteLM recognises the layout (text generated, no entry for it) and refuses to
    # return the shifted numbers as a score
    with pytest.raises(ValueError, match=r"shifted by one position.*#1983"):
        remote.score("The capital of France is", " Paris.")


def test_unreachable_port_is_a_clear_error():
    dead = RemoteLM(f"http://127.0.0.1:{_free_port()}/v1", timeout=2, retries=0)
    with pytest.raises(ValueError, match="is an OpenAI-compatible server running there"):
        dead.next_token_logprobs("Hello", 3)
