"""Qwen2 (q/k/v biases) and Qwen3 (q/k head RMSNorm) in the JAX GGUF backend, on tiny
random-weight GGUF files, against an independent float64 NumPy forward pass and against
transformers' own GGUF loader + Qwen2ForCausalLM / Qwen3ForCausalLM."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from quasispecies.bridge import GGUFModel
from tests.bridge.gguf_fixtures import qwen_hf_weights, qwen_reference_logprobs, write_qwen_gguf

# float32 forward vs float64 reference on O(1) logits over 2 layers: rounding ~2e-6
ATOL_F32 = 2e-5
# Qwen3's rope base is 1e6 and head_dim 128 here (transformers' GGUF loader does not read
# qwen3.attention.key_length and assumes Qwen3's default 128)
SHAPES = {"qwen2": {"head_dim": 16}, "qwen3": {"head_dim": 128, "n_heads": 2, "n_kv": 1}}


@pytest.fixture(
    scope="module",
    params=[("qwen2", False), ("qwen3", True)],  # untied head / tied (Qwen2.5-0.5B, Qwen3-0.6B)
    ids=["qwen2", "qwen3-tied"],
)
def tiny(request, tmp_path_factory):
    arch, tied = request.param
    w, cfg = qwen_hf_weights(3, arch, tied=tied, **SHAPES[arch])
    folder = tmp_path_factory.mktemp(arch)
    path, dec = write_qwen_gguf(folder / f"{arch}.gguf", w, cfg)
    return GGUFModel(path), dec, cfg


def _tokens(seed, n, vocab):
    return np.random.default_rng(seed).integers(0, vocab, size=n).tolist()


def test_config(tiny):
    lm, _dec, cfg = tiny
    c = lm.config
    assert c.arch == cfg["arch"] and c.rope_neox
    assert (c.qkv_bias, c.qk_norm) == ((True, False) if cfg["arch"] == "qwen2" else (False, True))
    assert (c.dim, c.n_heads, c.n_kv_heads, c.head_dim) == (
        cfg["dim"],
        cfg["n_heads"],
        cfg["n_kv"],
        cfg["head_dim"],
    )
    assert (c.rope_base, c.rms_eps) == (cfg["base"], pytest.approx(cfg["eps"]))


def test_forward_matches_numpy_reference(tiny):
    lm, dec, cfg = tiny
    for T in (2, 7, 33):
        toks = _tokens(T, T, lm.vocab_size)
        ref = qwen_reference_logprobs(dec, cfg, toks)[np.arange(T - 1), toks[1:]]
        got = lm.token_logprobs(toks).logprobs[1:]
        np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL_F32)


def test_kv_cache_path_matches_reference(tiny):
    lm, dec, cfg = tiny
    prefix = _tokens(5, 6, lm.vocab_size)
    rows = [prefix + _tokens(10 + n, n, lm.vocab_size) for n in (1, 2, 4)]
    for row, got in zip(rows, lm.vocab_logprobs(rows), strict=True):
        want = qwen_reference_logprobs(dec, cfg, row)[-1]
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL_F32)


def test_each_switch_matters(tiny):
    """The reference check can fail: turning off the architecture's bias / head norm or
    rotating adjacent pairs (the Llama layout) moves the log-probs far beyond ATOL_F32."""
    from quasispecies.bridge.llama import sequence_logprobs

    lm, dec, cfg = tiny
    toks = _tokens(1, 16, lm.vocab_size)
    ref = qwen_reference_logprobs(dec, cfg, toks)[np.arange(15), toks[1:]]
    switch = "qkv_bias" if cfg["arch"] == "qwen2" else "qk_norm"
    for change in ({"rope_neox": False}, {switch: False}):
        wrong = dataclasses.replace(lm.config, **change)
        lp, _, _ = sequence_logprobs(lm.params, wrong, np.asarray([toks], dtype=np.int32))
        assert np.abs(np.asarray(lp[0]) - ref).max() > 100 * ATOL_F32, change


def test_matches_transformers_gguf_loader(tiny):
    """transformers reads the same file with its own GGUF loader (its tensor-name map,
    its dequantiser call) and runs Qwen2ForCausalLM / Qwen3ForCausalLM."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    lm, _dec, cfg = tiny
    hf = AutoModelForCausalLM.from_pretrained(
        lm.path.parent, gguf_file=lm.path.name, dtype=torch.float32
    )
    assert (
        type(hf).__name__ == {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[cfg["arch"]]
    )
    toks = _tokens(2, 24, lm.vocab_size)
    with torch.no_grad():
        logits = hf(torch.tensor([toks])).logits[0].double()
    want = torch.log_softmax(logits, -1).numpy()[np.arange(23), toks[1:]]
    got = lm.token_logprobs(toks).logprobs[1:]
    # both float32, different kernels (torch vs XLA): rounding ~1e-6 on O(1) log-probs
    np.testing.assert_allclose(got, want, rtol=0, atol=5e-5)


# -------------------------------------------------------------- quantised Qwen files
@pytest.mark.parametrize(
    "qtypes",
    [
        {"matrix": "Q8_0", "embed": "Q4_0", "out": "Q5_1"},
        {"matrix": "Q4_1", "down": "Q5_0", "embed": "F16", "out": "BF16"},
    ],
    ids=["q8_0-q4_0-q5_1", "q4_1-q5_0-f16-bf16"],
)
def test_quantised_qwen2_matches_reference_on_decoded_weights(tmp_path, qtypes):
    w, cfg = qwen_hf_weights(4, "qwen2")
    path, dec = write_qwen_gguf(tmp_path / "q.gguf", w, cfg, qtypes=qtypes)
    lm = GGUFModel(path)
    toks = _tokens(8, 20, lm.vocab_size)
    ref = qwen_reference_logprobs(dec, cfg, toks)[np.arange(19), toks[1:]]
    np.testing.assert_allclose(lm.token_logprobs(toks).logprobs[1:], ref, rtol=0, atol=ATOL_F32)
    # the quantisation is real: the decoded weights are not the float ones
    up, up0 = dec["layers"][0]["up"], w["layers"][0]["up"]
    assert np.abs(up - up0).max() > 1e-3 * np.abs(up0).max()


def test_k_quant_qwen3_matches_reference_and_transformers(tmp_path):
    """K-quants need rows of 256 values: hidden 256, one layer; Q4_K / Q5_K / Q6_K /
    Q3_K / Q2_K blocks drawn at random (gguf cannot quantise them) and decoded by
    gguf.quants for the reference."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    qtypes = {"matrix": "Q4_K", "down": "Q5_K", "embed": "Q6_K", "v": "Q3_K", "out": "Q2_K"}
    w, cfg = qwen_hf_weights(
        5, "qwen3", dim=256, n_layers=1, n_heads=2, n_kv=1, head_dim=128, ffn=256
    )
    path, dec = write_qwen_gguf(tmp_path / "k.gguf", w, cfg, qtypes=qtypes)
    lm = GGUFModel(path)
    toks = _tokens(9, 16, lm.vocab_size)
    ref = qwen_reference_logprobs(dec, cfg, toks)
    got = lm.token_logprobs(toks).logprobs[1:]
    # hidden 256 and |log p| ~ 13: float32 rounding reaches ~2e-5 (measured 2.1e-5 at T = 32)
    atol = 1e-4
    np.testing.assert_allclose(got, ref[np.arange(15), toks[1:]], rtol=0, atol=atol)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="k.gguf", dtype=torch.float32)
    with torch.no_grad():
        logits = hf(torch.tensor([toks])).logits[0].double()
    want = torch.log_softmax(logits, -1).numpy()
    np.testing.assert_allclose(want, ref, rtol=0, atol=atol)  # float32 torch vs float64


# ------------------------------------------------------------------------ refusals
def test_unsupported_architecture_is_named(tmp_path):
    w, cfg = qwen_hf_weights(0, "qwen3")
    path, _ = write_qwen_gguf(tmp_path / "phi.gguf", w, cfg, arch="phi3")
    with pytest.raises(ValueError, match=r"unsupported architecture 'phi3'.*qwen2, qwen3"):
        GGUFModel(path)


def test_wrong_tensors_for_architecture(tmp_path):
    w, cfg = qwen_hf_weights(0, "qwen2")
    path, _ = write_qwen_gguf(tmp_path / "nobias.gguf", w, cfg, drop=("blk.1.attn_k.bias",))
    with pytest.raises(ValueError, match=r"missing tensors \['blk.1.attn_k.bias'\].*'qwen2'"):
        GGUFModel(path)
    w3, cfg3 = qwen_hf_weights(0, "qwen3")
    path, _ = write_qwen_gguf(tmp_path / "as2.gguf", w3, cfg3, arch="qwen2")
    with pytest.raises(ValueError, match=r"unsupported tensors \['blk.0.attn_k_norm'"):
        GGUFModel(path)
    path, _ = write_qwen_gguf(tmp_path / "x.gguf", w, cfg, extra="blk.0.attn_output.bias")
    with pytest.raises(ValueError, match=r"unsupported tensors \['blk.0.attn_output.bias'\]"):
        GGUFModel(path)
