"""Token trees through the on-disk cache and the request budget (bridge.tree_cache): an
interrupted build resumes to the identical tree, a rebuild asks the model nothing, and
--max-requests stops a build with the finished answers kept. The reference is the same
tree built without a cache, and the toy model's dense next-token tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quasispecies.bridge import token_tree
from quasispecies.bridge.tree_cache import (
    CachedExpander,
    RequestBudgetExceeded,
    TreeCache,
    prefix_key,
)
from tests.reference import tuned as ref

PROMPT = "bad"
DEPTH, K = 3, 3
INTERNAL = sum(K**d for d in range(DEPTH))  # 13 prefixes to expand


def _same_tree(a, b):
    assert a.tokens == b.tokens and a.texts == b.texts
    np.testing.assert_array_equal(a.mdp.reward, b.mdp.reward)
    np.testing.assert_array_equal(a.mdp.next_state, b.mdp.next_state)
    np.testing.assert_array_equal(a.logprob, b.logprob)
    np.testing.assert_array_equal(a.next_bound, b.next_bound)


def test_tree_matches_dense_tables_and_rebuild_costs_nothing(tmp_path):
    lm = ref.ToyLM()
    plain = token_tree(lm, PROMPT, DEPTH, K)
    assert lm.queries == INTERNAL
    # reference: top-K of the dense table at every prefix, by recursion
    _, _, prefix = ref.brute_tree(lambda p: ref.toy_logp(p, 7, 0), (1, 0, 3), DEPTH, K)
    assert [tuple(t) for t in plain.tokens] == prefix
    lm2 = ref.ToyLM()
    first = token_tree(lm2, PROMPT, DEPTH, K, cache=tmp_path / "c", batch_size=4)
    assert lm2.queries == INTERNAL
    _same_tree(first, plain)
    lm3 = ref.ToyLM()
    again = token_tree(lm3, PROMPT, DEPTH, K, cache=tmp_path / "c")
    assert lm3.queries == 0
    _same_tree(again, plain)


def test_interrupted_build_resumes_to_the_identical_tree(tmp_path):
    plain = token_tree(ref.ToyLM(), PROMPT, DEPTH, K)
    lm = ref.ToyLM()
    real = lm._next_logprobs
    calls = {"n": 0}

    def flaky(prefixes):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(prefixes)

    lm._next_logprobs = flaky
    with pytest.raises(KeyboardInterrupt):
        token_tree(lm, PROMPT, DEPTH, K, cache=tmp_path / "c", batch_size=2)
    asked = lm.queries  # 1 (level 0) + 2 (first chunk of level 2... ) before the interrupt
    assert 0 < asked < INTERNAL
    lm_b = ref.ToyLM()
    resumed = token_tree(lm_b, PROMPT, DEPTH, K, cache=tmp_path / "c", batch_size=2)
    assert lm_b.queries == INTERNAL - asked
    _same_tree(resumed, plain)


def test_max_requests_stops_keeps_the_cache_and_resumes(tmp_path):
    plain = token_tree(ref.ToyLM(), PROMPT, DEPTH, K)
    lm = ref.ToyLM()
    with pytest.raises(RequestBudgetExceeded, match="max_requests: the budget of 5") as err:
        token_tree(lm, PROMPT, DEPTH, K, cache=tmp_path / "c", max_requests=5, batch_size=2)
    assert lm.queries == 5 and err.value.done == 5 and err.value.needed == 9 - (5 - 4)
    assert "kept in" in str(err.value)
    assert len(TreeCache(tmp_path / "c", lm.name)) == 5
    lm_b = ref.ToyLM()
    with pytest.raises(RequestBudgetExceeded):
        token_tree(lm_b, PROMPT, DEPTH, K, cache=tmp_path / "c", max_requests=7)
    lm_c = ref.ToyLM()
    done = token_tree(lm_c, PROMPT, DEPTH, K, cache=tmp_path / "c", max_requests=1)
    assert lm_b.queries == 7 and lm_c.queries == 1
    _same_tree(done, plain)
    # no cache: the budget still bounds the cost
    with pytest.raises(RequestBudgetExceeded, match="nothing is kept"):
        token_tree(ref.ToyLM(), PROMPT, DEPTH, K, max_requests=0)


def test_wider_and_deeper_trees_reuse_the_cache(tmp_path):
    token_tree(ref.ToyLM(), PROMPT, 2, K + 1, cache=tmp_path / "c")
    lm = ref.ToyLM()
    narrow = token_tree(lm, PROMPT, 2, K, cache=tmp_path / "c")  # top-K+1 answers serve K
    assert lm.queries == 0
    _same_tree(narrow, token_tree(ref.ToyLM(), PROMPT, 2, K))
    lm = ref.ToyLM()
    token_tree(lm, PROMPT, 3, K, cache=tmp_path / "c")
    assert lm.queries == K**2  # only the new level
    lm = ref.ToyLM()
    token_tree(lm, PROMPT, 2, K + 2, cache=tmp_path / "c")  # wider than cached: asks again
    assert lm.queries == 1 + (K + 2)


def test_cache_refuses_another_model_and_bad_arguments(tmp_path):
    token_tree(ref.ToyLM(), PROMPT, 1, K, cache=tmp_path / "c")
    with pytest.raises(ValueError, match="holds answers of model 'toy-7-0', not 'toy-7-5'"):
        token_tree(ref.ToyLM(seed=5), PROMPT, 1, K, cache=tmp_path / "c")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        TreeCache(tmp_path / "f", "m")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "meta.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a token-tree cache"):
        TreeCache(tmp_path / "bad", "m")
    with pytest.raises(ValueError, match="max_requests"):
        token_tree(ref.ToyLM(), PROMPT, 1, K, max_requests=-1)
    with pytest.raises(ValueError, match="batch_size"):
        token_tree(ref.ToyLM(), PROMPT, 1, K, batch_size=0)


class _TextExpand:
    """A text-prefix expander (what a remote model gets): tokens are letters."""

    def __init__(self):
        self.prompt = "ba"
        self.asked: list[str] = []

    def text(self, path):
        return "".join(path)

    def __call__(self, paths, n):
        texts = [self.prompt + self.text(p) for p in paths]
        self.asked += texts
        lps = [ref.toy_logp([ord(c) - 97 for c in t], 5, 1) for t in texts]
        order = [np.lexsort((np.arange(5), -lp))[:n] for lp in lps]
        return [[chr(97 + i) for i in o] for o in order], np.array(
            [lp[o] for lp, o in zip(lps, order, strict=True)]
        )


def test_text_prefixes_are_cached_by_their_text(tmp_path):
    cache = TreeCache(tmp_path / "t", "remote")
    ex = CachedExpander(_TextExpand(), cache, batch_size=1)
    toks, lps = ex([(), ("a",)], 2)
    assert ex.queries == 2 and len(cache) == 2
    assert prefix_key("ba") in cache._entries and prefix_key("baa") in cache._entries
    ex2 = CachedExpander(_TextExpand(), TreeCache(tmp_path / "t", "remote"))
    toks2, lps2 = ex2([(), ("a",)], 2)
    assert ex2.queries == 0 and ex2.expand.asked == []
    assert toks2 == toks
    np.testing.assert_array_equal(lps2, lps)
    assert isinstance(toks2[0][0], str)
