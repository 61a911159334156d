"""The embedded LM (SmolLM2-135M-Instruct, Q4_1 GGUF) through the pure-JAX forward pass."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from tests.lm_support import PROMPT, embedded_lm

pytestmark = pytest.mark.lm


@pytest.fixture(scope="module")
def lm():
    return embedded_lm()


def test_weights_file_is_pinned():
    from quasispecies.bridge import default_gguf_path
    from quasispecies.bridge.gguf_file import DEFAULT_GGUF_SHA256, DEFAULT_GGUF_SIZE

    path = default_gguf_path(verify=True)
    assert path.stat().st_size == DEFAULT_GGUF_SIZE == 98_362_432
    h = hashlib.sha256(path.read_bytes()).hexdigest()
    assert h == DEFAULT_GGUF_SHA256


def test_reference_value(lm):
    """log p(" Paris." | "The capital of France is") = -0.638: the issue's reference, given to
    3 decimals (transformers on the same Q4_1 file gives -0.63820, see test_bridge_hf)."""
    value = lm.score(PROMPT, " Paris.")
    assert isinstance(value, float)
    assert abs(value - (-0.638)) < 1e-3
    per_token = lm.continuation_logprobs(PROMPT, " Paris.")
    assert per_token.dtype == np.float64 and per_token.shape == (2,)
    assert np.isclose(per_token.sum(), value, rtol=0, atol=1e-12)


def test_architecture_read_from_gguf(lm):
    c = lm.config
    assert (c.n_layers, c.dim, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_dim, c.vocab_size) == (
        30,
        576,
        9,
        3,
        64,
        1536,
        49152,
    )
    assert c.rope_base == 100000.0
    assert lm.params["head"] is lm.params["embed"]  # tied embeddings


def test_tokenizer_ids(lm):
    # ids from transformers' own GGUF tokenizer for the same file (independent implementation)
    assert lm.encode("The capital of France is") == [504, 3575, 282, 4649, 314]
    assert lm.encode("The capital of France is Paris.") == [504, 3575, 282, 4649, 314, 7042, 30]
    # llama.cpp's "smollm" pre-tokenizer isolates every digit (\p{N}) before the GPT-2 split
    digits = lm.encode(" 2024")
    assert [lm.token_text(i) for i in digits] == [" ", "2", "0", "2", "4"]
    # control tokens are matched whole
    assert lm.encode("<|im_start|>user") == [1, 4093]
    for text in ["héllo wörld 😀 ünïcödé", "tabs\tand\n\nnewlines  ", "naïve café — 你好"]:
        assert lm.decode(lm.encode(text)) == text


def test_continuation_tokenised_in_context(lm):
    """lm-evaluation-harness: trailing spaces of the context move to the continuation."""
    ctx, cont = lm.encode_pair(PROMPT + " ", "Paris.")
    assert (ctx, cont) == lm.encode_pair(PROMPT, " Paris.")
    assert lm.score(PROMPT + " ", "Paris.") == lm.score(PROMPT, " Paris.")
    # the continuation is whole[len(encode(context)):], even when the boundary re-splits
    # a word; when that leaves nothing (" bl" + "ack" -> " black"), a clear error
    ctx, cont = lm.encode_pair("Hello wor", "ld peace")
    assert cont == lm.encode("Hello world peace")[len(lm.encode("Hello wor")) :]
    with pytest.raises(ValueError, match="adds no token"):
        lm.encode_pair("The cat is bl", "ack")


# Boundaries that merge: the continuation's first token fuses with the context's last
# one, so encode(context) is not a prefix of encode(context + continuation). Tokenisations
# measured on the embedded model; the -26.132 and the 0.45 gap are issue 13's numbers.
MERGING = [
    ("Hello", "world", ["H", "ellow", "orld"]),
    ("a", "b c d e f", ["ab", " c", " d", " e", " f"]),
    ("Hello wor", "ld peace", ["Hello", " world", " peace"]),
]


@pytest.mark.parametrize(("context", "continuation", "joint"), MERGING)
def test_merging_boundary_scores_the_joint_tokenisation(lm, context, continuation, joint):
    """Independent reference: token_logprobs of the joint text (one teacher-forced pass
    over encode(context + continuation)), summed after position len(encode(context))."""
    whole = lm.encode(context + continuation)
    assert [lm.token_text(i) for i in whole] == joint
    n = len(lm.encode(context))
    ctx, cont = lm.encode_pair(context, continuation)
    assert ctx + cont == whole and len(ctx) == n  # the scored ids spell the joint text
    assert lm.decode(ctx + cont) == context + continuation
    rec = lm.token_logprobs(context + continuation)
    want = sum(rec.logprobs[n:])
    assert abs(lm.score(context, continuation) - want) < 1e-9
    np.testing.assert_allclose(
        lm.continuation_logprobs(context, continuation), rec.logprobs[n:], rtol=0, atol=1e-12
    )
    batched = lm.score_many([(context, continuation), (PROMPT, " Paris.")])
    assert abs(batched[0] - want) < 5e-5  # float32 forward in another batch shape


def test_merging_boundary_issue_values(lm):
    """Issue 13: score("Hello", "world") is -26.132 by the joint tokenisation (it was
    -31.285 when conditioning on encode("Hello")); score("a", "b c d e f") moved by 0.45."""

    def before_fix(context, continuation):  # encode(context), then whole[len(ctx):]
        ctx = lm.encode(context)
        tail = lm.encode(context + continuation)[len(ctx) :]
        return float(np.sum(lm.continuation_logprobs(ctx, tail)))

    assert abs(lm.score("Hello", "world") - (-26.132)) < 1e-3
    assert abs(before_fix("Hello", "world") - (-31.285)) < 1e-3
    assert abs(abs(lm.score("a", "b c d e f") - before_fix("a", "b c d e f")) - 0.45) < 0.01


def test_empty_prompt_and_continuation_named_separately(lm):
    with pytest.raises(ValueError, match=r"^continuation: empty string; there is nothing"):
        lm.score("a", "")
    with pytest.raises(ValueError, match=r"^prompt: empty string; .*BOS/EOT"):
        lm.score("", "a")
    with pytest.raises(ValueError, match=r"^continuation: empty string"):
        lm.score("", "")  # the continuation is checked first: nothing to score at all
    with pytest.raises(ValueError, match=r"^prompt: expected a string"):
        lm.encode_pair(None, "a")
    with pytest.raises(ValueError, match=r"^continuation: expected a string"):
        lm.encode_pair("a", None)


def test_token_logprobs_record(lm):
    rec = lm.token_logprobs("The capital of France is Paris.", top_k=3)
    assert rec.logprobs[0] is None and rec.top_logprobs[0] is None
    assert len(rec) == 7 and rec.text == "The capital of France is Paris."
    assert abs(rec.total(5) - lm.score(PROMPT, " Paris.")) < 1e-12
    # the top-3 are the three largest of the full next-token distribution
    nxt = lm.next_token_logprobs(PROMPT, 3)
    assert list(rec.top_logprobs[5]) == list(nxt.tokens)
    np.testing.assert_allclose(list(rec.top_logprobs[5].values()), nxt.logprobs, rtol=0, atol=2e-5)
    assert nxt.tokens[0] == " Paris"


def test_next_token_distribution_normalised(lm):
    logp = lm.vocab_logprobs([lm.encode(PROMPT)])[0]
    assert logp.dtype == np.float64
    assert abs(np.logaddexp.reduce(logp)) < 1e-5  # float32 log-softmax over 49152 entries
    ids, lps = lm.next_token_logprobs_batch([lm.encode(PROMPT)], 10)
    order = np.argsort(-logp, kind="stable")[:10]
    assert ids[0].tolist() == order.tolist()
    assert np.all(np.diff(lps[0]) <= 0)


def test_kv_cache_path_matches_full_forward(lm):
    """Next-token log-probs via the cached prompt == log-probs from a from-scratch pass."""
    ids = lm.encode("Once upon a time, there was")
    ext = [[*ids, t] for t in (264, 1345, 2116)]
    logp = lm.vocab_logprobs(ext)
    for row, lp in zip(ext, logp, strict=True):
        target = lm.encode(" a")[0]
        full = lm.token_logprobs([*row, target]).logprobs[-1]
        assert abs(lp[target] - full) < 5e-5  # float32, different reduction orders


def test_import_is_light():
    code = (
        "import sys, quasispecies, quasispecies.bridge as b; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules; "
        "assert 'quasispecies.bridge.lm' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
