"""Hypothesis fuzz of the API log-prob parsers (OpenAI legacy and chat, vLLM
``prompt_logprobs``, llama.cpp, and the format-detecting :func:`parse_logprobs`).

Two kinds of input, 1000 derandomised cases each, every case fed to every parser (as a
dict, as JSON text or as bytes): random JSON-like trees built from the field names the
parsers look for, and mutations of the recorded valid responses in
``tests/fixtures/lm`` and of the hand-made edge cases of ``tests/bridge/test_api.py``
(values swapped to other types, NaN/inf/huge numbers, keys dropped or added, lists cut,
grown or wrapped, then sometimes byte flips and truncations of the JSON text). The
contract: a :class:`TokenLogprobs` that passes its own invariants, or ``ValueError``
with a message; never another exception.
"""

from __future__ import annotations

import copy
import json
import math
import random

from hypothesis import HealthCheck, given, settings, strategies as st

from quasispecies.bridge.api import (
    parse_chat_logprobs,
    parse_completion_logprobs,
    parse_llamacpp_probabilities,
    parse_logprobs,
    parse_vllm_prompt_logprobs,
)
from quasispecies.bridge.records import TokenLogprobs
from tests.lm_support import FIXTURES

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PARSERS = (
    parse_logprobs,
    parse_completion_logprobs,
    parse_chat_logprobs,
    parse_vllm_prompt_logprobs,
    parse_llamacpp_probabilities,
)


def _fixtures() -> list:
    docs = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
    legacy = {  # test_api.py's byte-split UTF-8 and null entries, legacy completions
        "choices": [
            {
                "logprobs": {
                    "tokens": ["bytes:\\xe2\\x80", "bytes:\\x94", "a"],
                    "token_logprobs": [None, -0.5, "-inf"],
                    "top_logprobs": [None, {"x": -1.0}, {"a": -0.1}],
                }
            }
        ]
    }
    vllm_top = {"prompt_logprobs": [None, {"5": {"logprob": -1.0, "decoded_token": "a"}}]}
    return [*docs, legacy, vllm_top]


SEEDS = _fixtures()
FIELDS = (
    "choices", "logprobs", "content", "tokens", "token_logprobs", "top_logprobs", "token",
    "logprob", "bytes", "prompt_logprobs", "prompt_token_ids", "decoded_token", "rank",
    "completion_probabilities", "probs", "prob", "top_probs", "tok_str", "id", "text", "5",
)  # fmt: skip
ODD_NUMBERS = st.sampled_from(
    [10**400, -(10**400), 2**64, -(2**63), 1e308, -1e308, 1e-320, math.nan, math.inf, -math.inf,
     1.5, -0.0, 0, 1, -1, 7, True, None, "-inf", "0.5", 1.0000001, 10**20]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-300, 300),
    st.sampled_from([10**400, -(10**400), 2**64, 1e308, -1e308, 1e-320]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["-inf", "inf", "nan", "-Infinity", "bytes:\\xe2", "bytes:\\xZZ", "", "3"]),
    st.text(max_size=4),
)
ODD = [None, True, False, 0, 1, -1, 5, 10**400, -(10**400), 2**64, 1e308, -1e308, 1e-320,
       math.nan, math.inf, -math.inf, "-inf", "inf", "nan", "-Infinity", "bytes:\\xe2",
       "bytes:\\xZZ", "", "3", "x", "é"]  # fmt: skip


def random_tree(seed: int, keys=FIELDS, top_dict: bool = False):
    """A random JSON-like tree (at most 12 leaves, depth 5) from ``seed``: built with
    :class:`random.Random`, which is far cheaper per case than ``st.recursive``."""
    rng = random.Random(seed)
    budget = [rng.randint(1, 12)]

    def node(depth: int, force_dict: bool = False):
        r = rng.random()
        if not force_dict and (depth > 4 or budget[0] <= 0 or r < 0.45):
            budget[0] -= 1
            c = rng.random()
            if c < 0.6:
                return rng.choice(ODD)
            return rng.uniform(-50, 1) if c < 0.8 else rng.randint(-300, 300)
        if r < 0.7 and not force_dict:
            return [node(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(keys): node(depth + 1) for _ in range(rng.randint(0, 5))}

    return node(0, top_dict)


TREES = st.integers(0, 2**32 - 1).map(random_tree)


def _slots(doc, out):
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for k, v in items:
        out.append((doc, k))
        _slots(v, out)
    return out


@st.composite
def mutated(draw):
    """A recorded response with 1-4 value-level mutations."""
    doc = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(doc, [])
        if not slots:
            break
        numbers = [sl for sl in slots if type(sl[0][sl[1]]) in (int, float)]
        if numbers and draw(st.booleans()):  # half the time: a number made odd
            parent, key = draw(st.sampled_from(numbers))
            parent[key] = draw(ODD_NUMBERS)
            continue
        parent, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["scalar", "tree", "drop", "add", "cut", "grow", "wrap"]))
        val = parent[key]
        if op == "scalar":
            parent[key] = draw(SCALARS)
        elif op == "tree":
            parent[key] = draw(TREES)
        elif op == "drop":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELDS))] = draw(TREES)
        elif op == "cut" and isinstance(val, list):
            parent[key] = val[: draw(st.integers(0, max(len(val) - 1, 0)))]
        elif op == "grow" and isinstance(val, list) and val:
            parent[key] = val + val[:1]
        else:
            parent[key] = [val]
    return doc


@st.composite
def encoded(draw, docs):
    """The document as a dict, as JSON text, or as (possibly damaged) UTF-8 bytes."""
    doc = draw(docs)
    form = draw(st.sampled_from(["dict", "text", "bytes", "damaged"]))
    if form == "dict":
        return doc
    text = json.dumps(doc, allow_nan=True)
    if form == "text":
        return text
    data = bytearray(text.encode("utf-8"))
    if form == "damaged" and data:
        for _ in range(draw(st.integers(1, 3))):
            pos = draw(st.integers(0, len(data) - 1))
            op = draw(st.sampled_from(["flip", "cut", "insert", "digits", "nest"]))
            if op == "digits":  # Python's int() refuses > 4300 digits
                data[pos:pos] = b"9" * 5000
            elif op == "nest":  # deeper than the recursion limit
                data[pos:pos] = b"[" * 5000
            elif op == "flip":
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "cut":
                del data[pos:]
                if not data:
                    break
            else:
                data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


def check_all(response) -> None:
    for parse in PARSERS:
        try:
            rec = parse(response)
        except ValueError as err:
            assert str(err).strip(), f"{parse.__name__}: empty ValueError message"
            continue
        assert isinstance(rec, TokenLogprobs), parse.__name__
        assert all(isinstance(t, str) for t in rec.tokens)
        for lp in rec.logprobs:
            assert lp is None or (isinstance(lp, float) and not math.isnan(lp) and lp != math.inf)
        if rec.top_logprobs is not None:
            for d in rec.top_logprobs:
                assert d is None or all(
                    isinstance(v, float) and not math.isnan(v) and v != math.inf for v in d.values()
                )
        if rec.token_ids is not None:
            assert all(isinstance(i, int) and not isinstance(i, bool) for i in rec.token_ids)
        assert isinstance(rec.text, str)
        json.dumps(rec.to_dict(), allow_nan=True)


def test_fuzz_parsers_random_trees():
    @FUZZ
    @given(
        response=encoded(
            st.integers(0, 2**32 - 1).map(lambda n: random_tree(n, top_dict=n % 4 > 0))
        )
    )
    def run(response):
        check_all(response)

    run()


def test_fuzz_parsers_mutated_responses():
    @FUZZ
    @given(response=encoded(mutated()))
    def run(response):
        check_all(response)

    run()


def test_seeds_parse():
    """The unmutated seeds are valid (so the mutations start from real responses)."""
    for doc in SEEDS:
        assert isinstance(parse_logprobs(doc), TokenLogprobs)
