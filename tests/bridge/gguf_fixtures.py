"""Tiny synthetic Qwen2 / Qwen3 GGUF files (random weights, any tensor type) and an
independent float64 NumPy forward pass of those architectures in the Hugging Face layout.

Nothing here imports the package under test: the files are written with
``gguf.GGUFWriter`` and the reference follows HF ``modeling_qwen2`` / ``modeling_qwen3``
(biases on q/k/v for Qwen2; RMSNorm of each query/key head before ``rotate_half`` RoPE
for Qwen3; Q/K rows stored unpermuted, llama.cpp's ``NEOX`` rope type).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.lm_support import TINY_MERGES, reference_logprobs, tiny_vocab

F16 = np.float16

# Byte offsets of the float16 scale fields inside one block, and the block size in bytes
# (ggml-common.h): d first for the legacy types, d/dmin at the start of Q4_K/Q5_K, at
# the end of Q2_K/Q3_K/Q6_K.
SCALE_FIELDS = {
    "Q4_0": ((0,), 18),
    "Q4_1": ((0, 2), 20),
    "Q5_0": ((0,), 22),
    "Q5_1": ((0, 2), 24),
    "Q8_0": ((0,), 34),
    "Q2_K": ((80, 82), 84),
    "Q3_K": ((108,), 110),
    "Q4_K": ((0, 2), 144),
    "Q5_K": ((0, 2), 176),
    "Q6_K": ((208,), 210),
    "IQ4_NL": ((0,), 18),  # not accepted by the backend: for the refusal tests
}
BLOCK_VALUES = {"Q4_0": 32, "Q4_1": 32, "Q5_0": 32, "Q5_1": 32, "Q8_0": 32, "IQ4_NL": 32}


def block_values(qtype: str) -> int:
    return BLOCK_VALUES.get(qtype, 256)


def random_blocks(rng, qtype: str, n_blocks: int, scale: float = 1.0) -> np.ndarray:
    """Random valid blocks of ``qtype`` (uint8, (n_blocks, bytes)): random bits with every
    float16 scale field set to a finite random value times ``scale``."""
    offsets, nbytes = SCALE_FIELDS[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, nbytes), dtype=np.uint8)
    for off in offsets:
        vals = (scale * rng.uniform(0.5, 1.5, size=n_blocks)).astype(F16)
        raw[:, off : off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
    return raw


def _scale_fields(raw: np.ndarray, qtype: str, factor: float) -> np.ndarray:
    out = raw.copy()
    for off in SCALE_FIELDS[qtype][0]:
        vals = out[:, off : off + 2].copy().view(F16)[:, 0].astype(np.float64) * factor
        out[:, off : off + 2] = vals.astype(F16).view(np.uint8).reshape(-1, 2)
    return out


def encode_matrix(rng, qtype: str, w: np.ndarray):
    """``w`` (out, in) as a GGUF tensor of ``qtype``: ``(data, raw_dtype)`` for
    ``GGUFWriter.add_tensor`` and the float64 matrix it decodes to (what a reader must
    return). Types ``gguf.quants`` can quantise are quantised; for K-quants random valid
    blocks are drawn, scaled so that the matrix has the RMS of ``w``."""
    from gguf import GGMLQuantizationType, quants

    t = GGMLQuantizationType[qtype]
    if qtype == "F32":
        return w.astype(np.float32), None, w.astype(np.float32).astype(np.float64)
    if qtype in ("F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"):
        data = quants.quantize(w.astype(np.float32), t)
        if qtype == "F16":
            return data, None, data.astype(np.float64)
        return data, t, quants.dequantize(data, t).astype(np.float64)
    out, inn = w.shape
    nb = inn // block_values(qtype)
    raw = random_blocks(rng, qtype, out * nb)
    dec = quants.dequantize(raw.reshape(out, -1), t)
    factor = float(np.sqrt(np.mean(w**2)) / np.sqrt(np.mean(dec.astype(np.float64) ** 2)))
    raw = _scale_fields(raw, qtype, factor).reshape(out, -1)
    return raw, t, quants.dequantize(raw, t).astype(np.float64)


# --------------------------------------------------------------------------- weights
def qwen_hf_weights(
    seed, arch, *, dim=64, n_layers=2, n_heads=4, n_kv=2, head_dim=16, ffn=96, tied=False
):
    """Random Qwen2 / Qwen3 weights in the HF layout ((out, in) matrices, float64)."""
    rng = np.random.default_rng(seed)
    V = len(qwen_vocab()[0])

    def mat(o, i, scale=0.3):
        return rng.normal(scale=scale / np.sqrt(i), size=(o, i))

    w = {"embed": rng.normal(size=(V, dim)), "norm": 1 + 0.1 * rng.normal(size=dim)}
    w["layers"] = []
    for _ in range(n_layers):
        lw = {
            "attn_norm": 1 + 0.1 * rng.normal(size=dim),
            "q": mat(n_heads * head_dim, dim, 1.5),
            "k": mat(n_kv * head_dim, dim, 1.5),
            "v": mat(n_kv * head_dim, dim),
            "o": mat(dim, n_heads * head_dim),
            "ffn_norm": 1 + 0.1 * rng.normal(size=dim),
            "gate": mat(ffn, dim),
            "up": mat(ffn, dim),
            "down": mat(dim, ffn),
        }
        if arch == "qwen2":
            lw |= {
                "q_bias": 0.5 * rng.normal(size=n_heads * head_dim),
                "k_bias": 0.5 * rng.normal(size=n_kv * head_dim),
                "v_bias": 0.5 * rng.normal(size=n_kv * head_dim),
            }
        if arch == "qwen3":
            lw |= {
                "q_norm": 1 + 0.3 * rng.normal(size=head_dim),
                "k_norm": 1 + 0.3 * rng.normal(size=head_dim),
            }
        w["layers"].append(lw)
    w["out"] = w["embed"] if tied else mat(V, dim, 3.0)
    cfg = {
        "arch": arch,
        "dim": dim,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "n_kv": n_kv,
        "head_dim": head_dim,
        "ffn": ffn,
        "base": 1_000_000.0,  # Qwen's rope_theta
        "eps": 1e-6,
        "tied": tied,
    }
    return w, cfg


# merges whose use depends on the pre-tokenizer: digit runs, a space before a digit, and
# an upper-case contraction ('LL)
EXTRA_MERGES = ["1 2", "12 3", "Ġ 1", "' L", "'L L"]
QWEN_MERGES = [*TINY_MERGES, *EXTRA_MERGES]


def qwen_vocab() -> tuple[list[str], list[int]]:
    """The tiny byte-level vocabulary, the results of :data:`EXTRA_MERGES`, and Qwen's
    chat tokens (control type)."""
    tokens, types = tiny_vocab()
    extra = ["12", "123", "Ġ1", "'L", "'LL"]
    return [*tokens, *extra, "<|im_start|>", "<|im_end|>"], [*types, *[1] * len(extra), 3, 3]


# ---------------------------------------------------------------------------- writer
_MATRICES = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output"}
_MATRICES |= {"gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}
_VECTORS = {"attn_norm": "attn_norm.weight", "ffn_norm": "ffn_norm.weight"}
_VECTORS |= {"q_bias": "attn_q.bias", "k_bias": "attn_k.bias", "v_bias": "attn_v.bias"}
_VECTORS |= {"q_norm": "attn_q_norm.weight", "k_norm": "attn_k_norm.weight"}


def write_qwen_gguf(
    path, w, cfg, *, qtypes=None, pre="qwen2", arch=None, seed=0, drop=(), extra=None
):
    """Write HF-layout weights as a ``qwen2``/``qwen3`` GGUF.

    ``qtypes`` maps a tensor kind (``"matrix"``, ``"embed"``, ``"out"`` or a layer
    matrix name such as ``"down"``) to a tensor type (default F32). Returns ``(path,
    decoded)``: ``decoded`` is ``w`` with every matrix replaced by what its stored bytes
    decode to (float64), the weights a correct reader must run.
    """
    import gguf

    qtypes = qtypes or {}
    rng = np.random.default_rng(seed)
    path = Path(path)
    arch = arch or cfg["arch"]
    tokens, types = qwen_vocab()
    wr = gguf.GGUFWriter(str(path), arch=arch)
    wr.add_name(f"tiny-{arch}")
    wr.add_block_count(cfg["n_layers"])
    wr.add_context_length(256)
    wr.add_embedding_length(cfg["dim"])
    wr.add_feed_forward_length(cfg["ffn"])
    wr.add_head_count(cfg["n_heads"])
    wr.add_head_count_kv(cfg["n_kv"])
    wr.add_key_length(cfg["head_dim"])
    wr.add_value_length(cfg["head_dim"])
    wr.add_rope_freq_base(cfg["base"])
    wr.add_layer_norm_rms_eps(cfg["eps"])
    wr.add_tokenizer_model("gpt2")
    wr.add_tokenizer_pre(pre)
    wr.add_token_list(tokens)
    wr.add_token_types(types)
    wr.add_token_merges(QWEN_MERGES)
    wr.add_eos_token_id(tokens.index("<|im_end|>"))
    wr.add_bos_token_id(tokens.index("<|end|>"))
    wr.add_add_bos_token(False)
    dec = {"norm": w["norm"], "layers": []}

    def put(name, m, kind):
        if name in drop:
            return m
        qt = qtypes.get(kind, qtypes.get("matrix", "F32")) if kind != "vector" else "F32"
        data, raw, decoded = encode_matrix(rng, qt, m) if m.ndim == 2 else (m, None, m)
        data = data.astype(np.float32) if m.ndim == 1 else data
        wr.add_tensor(name, data, raw_dtype=raw)
        return decoded

    dec["embed"] = put("token_embd.weight", w["embed"], "embed")
    for i, lw in enumerate(w["layers"]):
        dl = {}
        for key, m in lw.items():
            if key in _MATRICES:
                dl[key] = put(f"blk.{i}.{_MATRICES[key]}.weight", m, key)
            else:
                dl[key] = put(f"blk.{i}.{_VECTORS[key]}", m, "vector")
        dec["layers"].append(dl)
    put("output_norm.weight", w["norm"], "vector")
    if cfg["tied"]:
        dec["out"] = dec["embed"]
    else:
        dec["out"] = put("output.weight", w["out"], "out")
    if extra is not None:
        wr.add_tensor(extra, np.zeros(cfg["dim"], dtype=np.float32))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    return path, dec


# ------------------------------------------------------------------------- reference
def qwen_reference_logprobs(w, cfg, tokens) -> np.ndarray:
    """Float64 NumPy Qwen2/Qwen3 forward pass (HF layout): log-softmax (T, V). The Llama
    reference of ``tests/lm_support.py``, which applies the layers' biases and q/k norms."""
    return reference_logprobs(w, cfg, tokens)
