"""API log-prob parsers: recorded fixtures (checked against the embedded model's own
numbers) and hand-made edge cases (null entries, byte-split UTF-8, missing top-k, -inf,
malformed or truncated JSON, missing fields)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from quasispecies.bridge import (
    parse_chat_logprobs,
    parse_completion_logprobs,
    parse_llamacpp_probabilities,
    parse_logprobs,
    parse_vllm_prompt_logprobs,
)
from quasispecies.bridge.records import TokenLogprobs
from tests.lm_support import FIXTURES, PROMPT, embedded_lm

# the fixtures store float32 log-probs computed in other batch shapes (see test_bridge_tree)
BATCH_ATOL = 5e-5


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


# ------------------------------------------------------------ recorded fixtures
@pytest.mark.lm
def test_openai_completions_echo_fixture():
    lm = embedded_lm()
    doc = load("openai_completions_echo.json")
    rec = parse_completion_logprobs(doc)
    assert rec.source == "openai.completions"
    assert rec.logprobs[0] is None and rec.top_logprobs[0] is None  # echo: first entry null
    assert rec.tokens[:5] == ("The", " capital", " of", " France", " is")
    assert rec.text == doc["choices"][0]["text"]
    ref = lm.token_logprobs(lm.encode(rec.text), top_k=3)
    np.testing.assert_allclose(rec.logprobs[1:], ref.logprobs[1:], rtol=0, atol=BATCH_ATOL)
    assert list(rec.top_logprobs[5]) == list(ref.top_logprobs[5])
    assert abs(rec.total(5, 7) - lm.score(PROMPT, " Paris.")) < BATCH_ATOL
    assert parse_logprobs(doc) == rec


def test_openai_chat_fixture():
    doc = load("openai_chat.json")
    rec = parse_chat_logprobs(doc)
    content = doc["choices"][0]["logprobs"]["content"]
    assert rec.tokens == tuple(e["token"] for e in content)
    assert rec.logprobs == tuple(e["logprob"] for e in content)
    assert rec.text == doc["choices"][0]["message"]["content"]
    assert all(len(d) == 2 for d in rec.top_logprobs)
    assert rec.top_logprobs[0][rec.tokens[0]] == rec.logprobs[0]
    assert parse_logprobs(doc) == rec


@pytest.mark.lm
def test_vllm_prompt_logprobs_fixture():
    lm = embedded_lm()
    doc = load("vllm_prompt_logprobs.json")
    rec = parse_vllm_prompt_logprobs(doc)
    ids = lm.encode(PROMPT)
    assert rec.token_ids == tuple(ids)
    assert rec.logprobs[0] is None and rec.tokens[1:] == (" capital", " of", " France", " is")
    ref = lm.token_logprobs(ids)
    np.testing.assert_allclose(rec.logprobs[1:], ref.logprobs[1:], rtol=0, atol=BATCH_ATOL)
    # " capital" is rank 2923: the entry lists it besides the top 2
    assert len(rec.top_logprobs[1]) == 3 and " capital" in rec.top_logprobs[1]
    # without prompt_token_ids: vLLM lists the prompt token first
    rec2 = parse_vllm_prompt_logprobs(load("vllm_prompt_logprobs_no_ids.json"))
    assert rec2.logprobs == rec.logprobs and rec2.tokens == rec.tokens
    assert rec2.token_ids is None
    assert parse_logprobs(load("vllm_prompt_logprobs_no_ids.json")) == rec2


@pytest.mark.lm
def test_llamacpp_fixtures():
    lm = embedded_lm()
    new = parse_llamacpp_probabilities(load("llamacpp_completion_probabilities.json"))
    post = parse_llamacpp_probabilities(load("llamacpp_post_sampling_probs.json"))
    old = parse_llamacpp_probabilities(load("llamacpp_probs_legacy.json"))
    assert (new.source, post.source, old.source) == (
        "llama.cpp",
        "llama.cpp.post_sampling",
        "llama.cpp.probs",
    )
    assert new.text == post.text == old.text == " Paris.\n"
    assert new.tokens == post.tokens == old.tokens
    cont = lm.continuation_logprobs(PROMPT, list(new.token_ids))
    np.testing.assert_allclose(new.logprobs, cont, rtol=0, atol=BATCH_ATOL)
    # probabilities -> log: exact up to exp/log round-off
    np.testing.assert_allclose(post.logprobs, new.logprobs, rtol=0, atol=1e-12)
    for a, b in zip(post.top_logprobs, new.top_logprobs, strict=True):
        assert list(a) == list(b)
        np.testing.assert_allclose(list(a.values()), list(b.values()), rtol=0, atol=1e-12)
    # legacy: the last chosen token is missing from its probs list -> no log-prob
    np.testing.assert_allclose(old.logprobs[:-1], new.logprobs[:-1], rtol=0, atol=1e-12)
    assert old.logprobs[-1] is None and old.token_ids is None
    with pytest.raises(ValueError, match="token 2 .* has no log-probability"):
        old.total()
    assert parse_logprobs(load("llamacpp_probs_legacy.json")) == old


@pytest.mark.lm
def test_llamacpp_readme_probs_fixture():
    """The /completion shape the llama.cpp server README documents: token objects under a
    top-level "probs" (hand-written from the README; numbers copied from
    llamacpp_completion_probabilities.json, top-2 instead of top-3)."""
    doc = load("llamacpp_readme_probs.json")
    rec = parse_llamacpp_probabilities(doc)
    assert parse_logprobs(doc) == rec
    sent = parse_llamacpp_probabilities(load("llamacpp_completion_probabilities.json"))
    assert rec.source == "llama.cpp" and rec.text == " Paris.\n"
    assert (rec.tokens, rec.token_ids, rec.logprobs) == (
        sent.tokens,
        sent.token_ids,
        sent.logprobs,
    )
    for a, b in zip(rec.top_logprobs, sent.top_logprobs, strict=True):
        assert a == dict(list(b.items())[:2])
    cont = embedded_lm().continuation_logprobs(PROMPT, list(rec.token_ids))
    np.testing.assert_allclose(rec.logprobs, cont, rtol=0, atol=BATCH_ATOL)


def test_llamacpp_top_level_probs_variants():
    legacy = {"content": "a", "probs": [{"content": "a", "probs": [{"tok_str": "a", "prob": 0.5}]}]}
    rec = parse_logprobs(legacy)
    assert rec.source == "llama.cpp.probs" and rec.logprobs == (math.log(0.5),)
    with pytest.raises(ValueError, match=r"response\.probs\[0\]: has neither"):
        parse_logprobs({"probs": [{"token": "a"}]})
    with pytest.raises(ValueError, match=r"response\.probs: expected a list"):
        parse_logprobs({"probs": {"a": 1}})


# ------------------------------------------------------------ hand-made edge cases
def _legacy(tokens, lps, tops=None, **extra):
    return {
        "choices": [
            {
                "text": "".join(tokens),
                "logprobs": {
                    "tokens": tokens,
                    "token_logprobs": lps,
                    "top_logprobs": tops,
                    **extra,
                },
            }
        ]
    }


def test_byte_split_utf8_legacy():
    # "😀" = f0 9f 98 80 split over two tokens, as OpenAI renders partial tokens
    doc = _legacy(
        ["Hi", " bytes:\\xf0\\x9f", "bytes:\\xf0\\x9f", "bytes:\\x98\\x80"],
        [None, -1.0, -2.0, -0.5],
    )
    rec = parse_completion_logprobs(doc)
    assert rec.token_bytes[2] == b"\xf0\x9f" and rec.token_bytes[3] == b"\x98\x80"
    # a token that merely *starts* with "bytes:" but is not an escape list stays text
    assert rec.token_bytes[1] == b" bytes:\\xf0\\x9f"
    assert rec.text.endswith("😀")
    assert rec.total(1) == -3.5


def test_byte_split_utf8_chat():
    doc = {
        "choices": [
            {
                "logprobs": {
                    "content": [
                        {
                            "token": "\\xf0\\x9f",
                            "logprob": -0.1,
                            "bytes": [240, 159],
                            "top_logprobs": [],
                        },
                        {
                            "token": "\\x98\\x80",
                            "logprob": -0.2,
                            "bytes": [152, 128],
                            "top_logprobs": [],
                        },
                    ]
                }
            }
        ]
    }
    rec = parse_chat_logprobs(doc)
    assert rec.text == "😀" and rec.top_logprobs == ({}, {})


def test_null_entries_missing_topk_and_neg_inf():
    doc = _legacy(
        ["a", "b", "c", "d"],
        [None, "-inf", -1e-3, -math.inf],
        [None, None, {"c": -1e-3, "x": "-Infinity"}, {}],
    )
    rec = parse_completion_logprobs(doc)
    assert rec.logprobs == (None, -math.inf, -1e-3, -math.inf)
    assert rec.top_logprobs == (None, None, {"c": -1e-3, "x": -math.inf}, {})
    assert rec.total(1) == -math.inf
    # JSON text with -Infinity (what Python's json writes) parses too
    text = json.dumps(doc)
    assert "-Infinity" in text
    assert parse_logprobs(text) == rec
    # no top_logprobs at all
    rec2 = parse_completion_logprobs(_legacy(["a", "b"], [None, -0.5]))
    assert rec2.top_logprobs is None
    assert rec.to_dict()["logprobs"][1] == "-inf"


def test_llamacpp_edge_cases():
    doc = {
        "completion_probabilities": [
            {"id": 5, "token": "\ufffd", "bytes": [240, 159], "logprob": -0.7},  # no top_logprobs
            {"id": 6, "token": "\ufffd", "bytes": [152, 128], "logprob": -0.1, "top_logprobs": []},
        ]
    }
    rec = parse_llamacpp_probabilities(doc)
    assert rec.text == "😀" and rec.token_ids == (5, 6)
    assert rec.top_logprobs == (None, {})
    post = parse_llamacpp_probabilities(
        {
            "completion_probabilities": [
                {
                    "id": 1,
                    "token": "a",
                    "prob": 0.0,
                    "top_probs": [{"id": 1, "token": "a", "prob": 0.0}],
                }
            ]
        }
    )
    assert post.logprobs == (-math.inf,)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            '{"choices": [{"logprobs": {"tokens": ["a"], "token_logprobs": [nul',
            "malformed or truncated JSON",
        ),
        ("", "malformed or truncated JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("{}", "no 'choices', 'completion_probabilities' or 'probs'"),
        ('{"choices": []}', "no choice 0"),
        ('{"choices": [{"text": "x", "logprobs": null}]}', "logprobs: missing or null"),
        ('{"choices": [{"logprobs": {"tokens": ["a", "b"]}}]}', "token_logprobs: missing field"),
        (
            '{"choices": [{"logprobs": {"tokens": ["a", "b"], "token_logprobs": [null]}}]}',
            "1 entries for 2 tokens",
        ),
        (
            '{"choices": [{"logprobs": {"tokens": ["a"], "token_logprobs": ["x"]}}]}',
            "expected a number",
        ),
        (
            '{"choices": [{"logprobs": {"tokens": ["a"], "token_logprobs": [NaN]}}]}',
            "not a log-probability",
        ),
        (
            '{"choices": [{"logprobs": {"content": [{"token": "a"}]}}]}',
            r"content\[0\].logprob: missing field",
        ),
        ('{"choices": [{"logprobs": {"content": null}}]}', "content: null"),
        ('{"completion_probabilities": [{"token": "a"}]}', "neither 'logprob', 'prob' nor 'probs'"),
        (
            '{"completion_probabilities": [{"token": "a", "prob": 1.5}]}',
            r"probability 1.5 outside \[0, 1\]",
        ),
        (
            '{"completion_probabilities": [{"content": "a", "probs": [{"prob": 0.5}]}]}',
            "tok_str: missing field",
        ),
        ('{"completion_probabilities": {"a": 1}}', "expected a list"),
        (
            '{"choices": [{"logprobs": {"content": [{"token": "a", "logprob": -1, "bytes": [300]}]}}]}',
            "byte values",
        ),
    ],
)
def test_malformed_responses(payload, message):
    with pytest.raises(ValueError, match=message):
        parse_logprobs(payload)


def test_vllm_errors():
    entry = {"7": {"logprob": -1.0, "rank": 1, "decoded_token": "x"}}
    with pytest.raises(ValueError, match="prompt token 9 is not among"):
        parse_vllm_prompt_logprobs(
            {"choices": [{"prompt_logprobs": [None, entry]}]}, prompt_token_ids=[3, 9]
        )
    with pytest.raises(ValueError, match="2 ids for 3"):
        parse_vllm_prompt_logprobs(
            {"choices": [{"prompt_logprobs": [None, entry, entry]}]}, prompt_token_ids=[3, 9]
        )
    with pytest.raises(ValueError, match="is not a token id"):
        parse_vllm_prompt_logprobs({"prompt_logprobs": [None, {"abc": {"logprob": -1.0}}]})
    with pytest.raises(ValueError, match="prompt_logprobs: missing or null"):
        parse_vllm_prompt_logprobs({"choices": [{"text": "x"}]})


def test_record_validation():
    with pytest.raises(ValueError, match="logprobs: has 1 entries for 2 tokens"):
        TokenLogprobs(tokens=("a", "b"), logprobs=(None,))
    with pytest.raises(ValueError, match="entry 0 is nan"):
        TokenLogprobs(tokens=("a",), logprobs=(math.nan,))
