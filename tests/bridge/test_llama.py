"""The pure-JAX Llama forward pass and the GGUF reader, on tiny synthetic GGUF files,
against an independent float64 NumPy forward pass in the Hugging Face layout."""

from __future__ import annotations

import numpy as np
import pytest

from quasispecies.bridge import GGUFModel, token_tree
from tests.lm_support import (
    reference_logprobs,
    tiny_hf_weights,
    tiny_vocab,
    write_tiny_gguf,
)
from tests.reference import bridge as ref

# float32 forward vs float64 reference on O(1) logits over 2 layers: rounding ~1e-6
ATOL_F32 = 2e-5


@pytest.fixture(scope="module", params=[(0, False), (1, True)], ids=["untied", "tied"])
def tiny(request, tmp_path_factory):
    seed, tied = request.param
    w, cfg = tiny_hf_weights(seed, tied=tied)
    path = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / f"tiny{seed}.gguf", w, cfg)
    return GGUFModel(path), w, cfg


def test_config_read_from_gguf(tiny):
    lm, _w, cfg = tiny
    c = lm.config
    assert (c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_dim) == (
        cfg["dim"],
        cfg["n_layers"],
        cfg["n_heads"],
        cfg["n_kv"],
        cfg["head_dim"],
        cfg["ffn"],
    )
    assert c.vocab_size == len(tiny_vocab()[0])
    assert c.group_size == 2  # grouped-query attention is exercised


def test_forward_matches_hf_layout_reference(tiny):
    """Interleaved-pair RoPE on llama.cpp-permuted Q/K == HF rotate_half on the originals."""
    lm, w, cfg = tiny
    rng = np.random.default_rng(7)
    for T in (2, 5, 13, 40):
        toks = rng.integers(0, lm.vocab_size, size=T).tolist()
        ref = reference_logprobs(w, cfg, toks)
        want = ref[np.arange(T - 1), toks[1:]]
        got = lm.token_logprobs(toks).logprobs[1:]
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL_F32)


def test_unpermuted_gguf_would_be_wrong(tmp_path):
    """The check above is sensitive to the layout: Q/K stored without llama.cpp's
    permutation give clearly different log-probs."""
    w, cfg = tiny_hf_weights(0)
    lm = GGUFModel(write_tiny_gguf(tmp_path / "raw.gguf", w, cfg, permute=False))
    toks = list(range(10, 30))
    ref = reference_logprobs(w, cfg, toks)[np.arange(19), toks[1:]]
    got = np.array(lm.token_logprobs(toks).logprobs[1:])
    assert np.abs(got - ref).max() > 1000 * ATOL_F32


def test_next_token_kv_cache_matches_reference(tiny):
    """Shared-prefix batching (KV cache of the common prefix + padded suffixes)."""
    lm, w, cfg = tiny
    rng = np.random.default_rng(3)
    prefix = rng.integers(0, lm.vocab_size, size=9).tolist()
    rows = [prefix + rng.integers(0, lm.vocab_size, size=n).tolist() for n in (1, 2, 3, 3, 5)]
    logp = lm.vocab_logprobs(rows)
    for row, got in zip(rows, logp, strict=True):
        want = reference_logprobs(w, cfg, row)[-1]
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL_F32)
    # different-length rows with no common prefix: no cache, padding only
    rows2 = [rng.integers(0, lm.vocab_size, size=n).tolist() for n in (1, 4, 7)]
    for row, got in zip(rows2, lm.vocab_logprobs(rows2), strict=True):
        np.testing.assert_allclose(got, reference_logprobs(w, cfg, row)[-1], rtol=0, atol=ATOL_F32)


def test_batching_does_not_change_scores(tiny):
    lm, _w, _cfg = tiny
    rng = np.random.default_rng(11)
    pairs = [
        (
            rng.integers(0, lm.vocab_size, size=a).tolist(),
            rng.integers(0, lm.vocab_size, size=b).tolist(),
        )
        for a, b in [(1, 1), (3, 9), (17, 2), (5, 5)]
    ]
    together = lm.score_many(pairs)
    alone = [lm.score(p, c) for p, c in pairs]
    # float32: different padded shapes reorder nothing within a row, but XLA may pick other kernels
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)


def test_tokenizer_from_gguf_vocab(tiny):
    lm, _w, _cfg = tiny
    tokens, _ = tiny_vocab()
    ids = lm.encode("the the")
    # "the" -> t + he (merge 'h e'); " the" -> Ġt -> Ġt + he -> Ġthe (merges in rank order)
    assert [tokens[i] for i in ids] == ["t", "he", "Ġthe"]
    assert lm.encode("<|end|>x") == [tokens.index("<|end|>"), tokens.index("x")]
    for text in ["the the", "héllo wörld 😀", "a\n\n  b\tc", "<|end|>"]:
        assert lm.decode(lm.encode(text)) == text


def test_tree_on_tiny_model_is_exact(tiny):
    """T = 1 population over the leaves equals p(leaf) / Z computed from the reference."""
    import quasispecies as qs

    lm, w, cfg = tiny
    tree = token_tree(lm, "the", 2, 3)
    x = qs.evolve(tree.mdp, 1.0, 2, tree.x0)[-1][tree.leaves]
    lp = ref.leaf_logprobs_from_forward(
        lambda seq: reference_logprobs(w, cfg, seq),
        tree.prompt_ids,
        [tree.tokens[s] for s in tree.leaves],
    )
    want = ref.sequence_level_probs(lp, 1.0)
    np.testing.assert_allclose(x, want, rtol=1e-4, atol=0)  # float32 log-probs


# ------------------------------------------------------------------ malformed files
def test_unsupported_architecture(tmp_path):
    w, cfg = tiny_hf_weights(0)
    path = write_tiny_gguf(tmp_path / "gpt2.gguf", w, cfg, arch="gpt2")
    with pytest.raises(ValueError, match="unsupported architecture 'gpt2'"):
        GGUFModel(path)


def test_unsupported_tensor(tmp_path):
    w, cfg = tiny_hf_weights(0)
    path = write_tiny_gguf(tmp_path / "bias.gguf", w, cfg, extra_tensor="blk.0.attn_q.bias")
    with pytest.raises(ValueError, match="unsupported tensors"):
        GGUFModel(path)


def test_unsupported_pre_tokenizer(tmp_path):
    w, cfg = tiny_hf_weights(0)
    path = write_tiny_gguf(tmp_path / "pre.gguf", w, cfg, pre="deepseek-coder")
    with pytest.raises(ValueError, match="pre-tokenizer 'deepseek-coder' is not supported"):
        GGUFModel(path)


def test_not_a_gguf_and_truncated(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04 not a gguf at all")
    with pytest.raises(ValueError, match="not a GGUF file"):
        GGUFModel(junk)
    w, cfg = tiny_hf_weights(0)
    good = write_tiny_gguf(tmp_path / "good.gguf", w, cfg)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ValueError, match="cut.gguf"):
        GGUFModel(cut)
    with pytest.raises(ValueError, match="no such file"):
        GGUFModel(tmp_path / "missing.gguf")
    with pytest.raises(ValueError, match="path"):
        GGUFModel(123)


def test_bad_inputs(tiny):
    lm, _w, _cfg = tiny
    with pytest.raises(ValueError, match="prompt: empty"):
        lm.score("", "the")
    with pytest.raises(ValueError, match="continuation: empty"):
        lm.score("the", "")
    with pytest.raises(ValueError, match="only whitespace"):
        lm.score("   ", "the")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        lm.score([1, 2], [10**6])
    with pytest.raises(ValueError, match="top_k"):
        lm.next_token_logprobs("the", 0)
    with pytest.raises(ValueError, match="top_k"):
        lm.next_token_logprobs("the", lm.vocab_size + 1)
    with pytest.raises(ValueError, match="context length"):
        lm.score([1] * 300, [2])
    with pytest.raises(ValueError, match="depth"):
        token_tree(lm, "the", 0, 2)
    with pytest.raises(ValueError, match="top_k"):
        token_tree(lm, "the", 2, 0)
    with pytest.raises(ValueError, match="prompt: empty"):
        token_tree(lm, "", 2, 2)
    with pytest.raises(ValueError, match="lm: expected"):
        token_tree("not a model", "the", 2, 2)


def test_public_backend_access(tiny):
    """vocab_logprobs / sequence_logprobs / token_bytes: the validated front end of the
    backend hooks (the server and the token tree use only these)."""
    lm, w, cfg = tiny
    rows = [[5, 6, 7], [5, 6, 7, 8]]
    logp = lm.vocab_logprobs(rows)
    assert logp.dtype == np.float64 and logp.shape == (2, lm.vocab_size)
    for row, got in zip(rows, logp, strict=True):
        np.testing.assert_allclose(got, reference_logprobs(w, cfg, row)[-1], rtol=0, atol=ATOL_F32)
    ((lp, vals, idx),) = lm.sequence_logprobs([[5, 6, 7, 8]], top_k=3)
    want = reference_logprobs(w, cfg, [5, 6, 7, 8])
    np.testing.assert_allclose(lp, want[np.arange(3), [6, 7, 8]], rtol=0, atol=ATOL_F32)
    assert vals.shape == idx.shape == (3, 3) and np.all(np.diff(vals, axis=1) <= 0)
    ((_, none_v, none_i),) = lm.sequence_logprobs([[5, 6]])
    assert none_v is None and none_i is None
    tokens, _ = tiny_vocab()
    the = tokens.index("Ġthe")
    assert lm.token_bytes([the, 104]) == (b" the", b"h")
    with pytest.raises(ValueError, match="prefixes: empty list"):
        lm.vocab_logprobs([])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        lm.vocab_logprobs([[lm.vocab_size]])
    with pytest.raises(ValueError, match="seqs: empty token sequence"):
        lm.sequence_logprobs([[]])
    with pytest.raises(ValueError, match="top_k"):
        lm.sequence_logprobs([[1, 2]], top_k=lm.vocab_size + 1)
    with pytest.raises(ValueError, match="ids: expected a 1-D"):
        lm.token_bytes([[1]])
