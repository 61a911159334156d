"""Shared helpers for the LM-bridge tests: the embedded model, a tiny synthetic Llama GGUF
and an independent NumPy (float64, HF-layout) reference forward pass."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures" / "lm"
PROMPT = "The capital of France is"


@functools.lru_cache(maxsize=1)
def embedded_lm():
    """The embedded model, loaded once per test worker process."""
    from quasispecies.bridge import default_lm

    return default_lm()


# ----------------------------------------------------------------- GPT-2 bytes alphabet
def gpt2_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values, indexed by byte."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs, strict=True))
    return [chr(table[b]) for b in range(256)]


TINY_MERGES = ["Ġ t", "h e", "Ġt he"]


def tiny_vocab() -> tuple[list[str], list[int]]:
    tokens = [*gpt2_alphabet(), "Ġt", "he", "Ġthe", "<|end|>"]
    types = [1] * (len(tokens) - 1) + [3]
    return tokens, types


# ------------------------------------------------------------------ tiny Llama weights
def tiny_hf_weights(seed: int, *, dim=32, n_layers=2, n_heads=4, n_kv=2, ffn=48, tied=False):
    """Random Llama weights in the Hugging Face layout ((out, in) matrices)."""
    rng = np.random.default_rng(seed)
    V = len(tiny_vocab()[0])
    d = dim // n_heads

    def mat(o, i, scale=0.3):
        return rng.normal(scale=scale / np.sqrt(i), size=(o, i))

    w = {
        "embed": rng.normal(scale=1.0, size=(V, dim)),
        "norm": 1 + 0.1 * rng.normal(size=dim),
        "layers": [],
    }
    for _ in range(n_layers):
        w["layers"].append(
            {
                "attn_norm": 1 + 0.1 * rng.normal(size=dim),
                "q": mat(n_heads * d, dim, 1.5),
                "k": mat(n_kv * d, dim, 1.5),
                "v": mat(n_kv * d, dim),
                "o": mat(dim, n_heads * d),
                "ffn_norm": 1 + 0.1 * rng.normal(size=dim),
                "gate": mat(ffn, dim),
                "up": mat(ffn, dim),
                "down": mat(dim, ffn),
            }
        )
    w["out"] = w["embed"] if tied else mat(V, dim, 3.0)
    cfg = {
        "dim": dim,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "n_kv": n_kv,
        "ffn": ffn,
        "head_dim": d,
        "base": 10000.0,
        "eps": 1e-5,
        "tied": tied,
    }
    return w, cfg


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's HF -> GGUF row permutation of attn_q / attn_k (convert_hf_to_gguf.py)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def write_tiny_gguf(
    path, w, cfg, *, arch="llama", pre="default", extra_tensor=None, permute=True
) -> Path:
    """Write HF-layout weights ``w`` as a GGUF (F32 tensors, Q/K permuted as llama.cpp does
    unless ``permute=False``)."""
    import gguf

    path = Path(path)
    tokens, types = tiny_vocab()
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_block_count(cfg["n_layers"])
    writer.add_context_length(256)
    writer.add_embedding_length(cfg["dim"])
    writer.add_feed_forward_length(cfg["ffn"])
    writer.add_head_count(cfg["n_heads"])
    writer.add_head_count_kv(cfg["n_kv"])
    writer.add_rope_freq_base(cfg["base"])
    writer.add_layer_norm_rms_eps(cfg["eps"])
    writer.add_rope_dimension_count(cfg["head_dim"])
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(TINY_MERGES)
    f32 = np.float32
    writer.add_tensor("token_embd.weight", w["embed"].astype(f32))
    for i, lw in enumerate(w["layers"]):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", lw["attn_norm"].astype(f32))
        q, k = lw["q"], lw["k"]
        if permute:
            q, k = llama_cpp_permute(q, cfg["n_heads"]), llama_cpp_permute(k, cfg["n_kv"])
        writer.add_tensor(p + "attn_q.weight", q.astype(f32))
        writer.add_tensor(p + "attn_k.weight", k.astype(f32))
        writer.add_tensor(p + "attn_v.weight", lw["v"].astype(f32))
        writer.add_tensor(p + "attn_output.weight", lw["o"].astype(f32))
        writer.add_tensor(p + "ffn_norm.weight", lw["ffn_norm"].astype(f32))
        writer.add_tensor(p + "ffn_gate.weight", lw["gate"].astype(f32))
        writer.add_tensor(p + "ffn_up.weight", lw["up"].astype(f32))
        writer.add_tensor(p + "ffn_down.weight", lw["down"].astype(f32))
    writer.add_tensor("output_norm.weight", w["norm"].astype(f32))
    if not cfg["tied"]:
        writer.add_tensor("output.weight", w["out"].astype(f32))
    if extra_tensor is not None:
        writer.add_tensor(extra_tensor, np.zeros(cfg["dim"], dtype=f32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def reference_logprobs(w, cfg, tokens) -> np.ndarray:
    """Float64 NumPy Llama forward in the HF layout (rotate_half pairs (i, i + d/2)); the
    layers' optional ``q_bias``/``k_bias``/``v_bias`` (Qwen2) and ``q_norm``/``k_norm``
    (Qwen3) are applied as in HF's modeling_qwen2/qwen3.

    Returns log-softmax (T, V) at every position. Independent of the package: written
    from the HF modeling_llama equations, with Q/K rows *not* permuted.
    """
    x = w["embed"][np.asarray(tokens)].astype(np.float64)
    T = len(tokens)
    H, KV, d = cfg["n_heads"], cfg["n_kv"], cfg["head_dim"]
    inv = cfg["base"] ** (-np.arange(0, d, 2) / d)
    ang = np.arange(T)[:, None] * inv[None, :]
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]

    def rms(h, g):
        return h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + cfg["eps"]) * g

    def rot_half(v):
        return np.concatenate([-v[..., d // 2 :], v[..., : d // 2]], axis=-1)

    mask = np.tril(np.ones((T, T), dtype=bool))
    for lw in w["layers"]:
        a = rms(x, lw["attn_norm"])
        q, k, v = a @ lw["q"].T, a @ lw["k"].T, a @ lw["v"].T
        if "q_bias" in lw:  # Qwen2: q/k/v biases
            q, k, v = q + lw["q_bias"], k + lw["k_bias"], v + lw["v_bias"]
        q, k, v = q.reshape(T, H, d), k.reshape(T, KV, d), v.reshape(T, KV, d)
        if "q_norm" in lw:  # Qwen3: RMSNorm of each query and key head
            q, k = rms(q, lw["q_norm"]), rms(k, lw["k_norm"])
        q = q * cos + rot_half(q) * sin
        k = k * cos + rot_half(k) * sin
        k = np.repeat(k, H // KV, axis=1)
        v = np.repeat(v, H // KV, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(d)
        s = np.where(mask[None], s, -np.inf)
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, H * d)
        x = x + o @ lw["o"].T
        b = rms(x, lw["ffn_norm"])
        gate = b @ lw["gate"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (b @ lw["up"].T)) @ lw["down"].T
    logits = rms(x, w["norm"]) @ w["out"].T
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
