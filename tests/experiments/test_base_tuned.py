"""Base vs tuned on the embedded model: the tuned model is the embedded instruct model
tilted by a KNOWN per-token reward (TiltedLM: log p + r(v)/beta, renormalised over the
vocabulary), so the recovered beta and r are known; once in process and once with the
tuned model behind the project's OpenAI-compatible server (RemoteLM, re-tokenised text).
References: the tuned log-probs recomputed from the base's full next-token distributions
with scipy's logsumexp, entropies with scipy.stats."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.special
import scipy.stats

from quasispecies.experiments.base_tuned import (
    TiltedLM,
    base_tuned_study,
    prompt_study,
    read_prompts,
)
from tests.lm_support import embedded_lm

pytestmark = pytest.mark.lm

PROMPT = "The capital of France is"
BETA = 0.5
# Base edges come from the tree's batched next-token call, tuned edges from teacher-forced
# passes of other batch shapes: the same float32 log-prob differs by up to ~2e-5 between
# them (tests/bridge/test_tree.py BATCH_ATOL), which is the noise on the implied reward.
F32 = 5e-5


@pytest.fixture(scope="module")
def pair():
    base = embedded_lm()
    r = np.random.default_rng(7).normal(size=base.vocab_size)
    return base, TiltedLM(base, r, BETA), r


@pytest.fixture(scope="module")
def study(pair):
    base, tuned, r = pair
    return prompt_study(base, tuned, PROMPT, depth=2, top_k=4, token_reward=r)


def _tuned_leaf_logp(base, r, prompt_ids, paths):
    pre = [list(prompt_ids) + list(p[:t]) for p in paths for t in range(len(p))]
    full = base.vocab_logprobs(pre) + r / BETA
    full -= scipy.special.logsumexp(full, axis=1, keepdims=True)
    tok = [p[t] for p in paths for t in range(len(p))]
    lp = full[np.arange(len(tok)), tok]
    return lp.reshape(len(paths), -1).sum(axis=1)


def test_tilted_model_is_the_renormalised_tilt(pair):
    base, tuned, r = pair
    ids = base.encode(PROMPT)
    want = base.vocab_logprobs([ids])[0] + r / BETA
    want -= scipy.special.logsumexp(want)
    np.testing.assert_allclose(tuned.vocab_logprobs([ids])[0], want, rtol=0, atol=1e-9)
    _, lp = tuned.next_token_logprobs_batch([ids], 3)
    np.testing.assert_allclose(lp[0], np.sort(want)[::-1][:3], rtol=0, atol=1e-9)


def test_recovers_beta_and_reward(study):
    fit = study["token_fit"]
    assert fit["beta"] == pytest.approx(BETA, rel=1e-3)  # F32 noise on O(1) rewards
    assert fit["r2"] > 1 - 1e-6
    assert study["edges_scored"] == 4 + 16
    # fitted context-free reward rho = r / beta + one constant per set of siblings (here
    # each node's tokens are their own component of the token-node graph)
    d = np.asarray(fit["fitted_reward"]) - np.asarray(fit["known_reward"]) / BETA
    par = np.asarray(fit["edge_parent"])
    for p in np.unique(par):
        assert np.ptp(d[par == p]) < 4 * F32
    # implied reward (centred over siblings) = centred r / beta, edge by edge
    np.testing.assert_allclose(fit["implied_reward"], fit["predicted_implied"], atol=4 * F32)


def test_spreads_match_brute_force(pair, study):
    from quasispecies.bridge import token_tree

    base, _, r = pair
    tt = token_tree(base, PROMPT, 2, 4)
    paths = [tt.tokens[s] for s in tt.leaves]
    yb = tt.logprob[tt.leaves]
    yt = _tuned_leaf_logp(base, r, tt.prompt_ids, paths)
    for key, y in (("base", yb), ("tuned", yt)):
        q = np.exp(y - scipy.special.logsumexp(y))
        assert study[key]["entropy"] == pytest.approx(scipy.stats.entropy(q), abs=1e-4)
        assert study[key]["coverage"] == pytest.approx(np.exp(y).sum(), rel=1e-4)
        h = [
            scipy.stats.entropy(np.exp(y / t - scipy.special.logsumexp(y / t)))
            for t in study["tau"]
        ]
        np.testing.assert_allclose(study[f"{key}_entropy_vs_tau"], h, atol=1e-4)
    qt = np.exp(yt - scipy.special.logsumexp(yt))
    qb = np.exp(yb - scipy.special.logsumexp(yb))
    assert study["kl_tuned_base"] == pytest.approx(scipy.stats.entropy(qt, qb), abs=1e-4)
    gain = qt - qb
    best = tt.texts[tt.leaves[int(np.argmax(gain))]]
    assert study["attractors"][0]["text"] == best


def test_server_path_agrees_with_in_process(pair):
    from quasispecies.bridge.remote import RemoteLM
    from quasispecies.bridge.server import serve

    base, tuned, r = pair
    here = prompt_study(base, tuned, PROMPT, depth=2, top_k=2, token_reward=r)
    server, url = serve(tuned)
    try:
        remote = RemoteLM(url, timeout=60, retries=0)
        got = prompt_study(base, remote, PROMPT, depth=2, top_k=2, token_reward=r)
    finally:
        server.shutdown()
        server.server_close()
    assert got["base"] == here["base"]
    assert got["edges_scored"] >= 4  # of 6: the leaves the server re-tokenises alike
    assert got["tuned"]["entropy"] == pytest.approx(here["tuned"]["entropy"], abs=1e-4)
    assert got["token_fit"]["beta"] == pytest.approx(BETA, rel=1e-3)
    assert remote.requests >= 1


def test_study_summary_and_prompt_files(pair, tmp_path):
    base, tuned, _ = pair
    out = base_tuned_study(base, tuned, [PROMPT, "Once upon a time"], depth=1, top_k=3)
    s = out["summary"]
    assert s["prompts"] == 2 and s["tuned_entropy"] is not None
    assert json.loads(json.dumps(out))["summary"] == s
    p = tmp_path / "p.jsonl"
    p.write_text('{"prompt": "a b"}\n\n{"prompt": "c"}\n')
    assert read_prompts(p) == ["a b", "c"]
    t = tmp_path / "p.txt"
    t.write_text("one\ntwo\n")
    assert read_prompts(t) == ["one", "two"]
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(ValueError, match="line 1: not JSON"):
        read_prompts(tmp_path / "bad.jsonl")
    (tmp_path / "e.txt").write_text("\n")
    with pytest.raises(ValueError, match="holds no prompt"):
        read_prompts(tmp_path / "e.txt")
    with pytest.raises(ValueError, match="reward"):
        TiltedLM(base, np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="beta"):
        TiltedLM(base, np.zeros(base.vocab_size), 0.0)
