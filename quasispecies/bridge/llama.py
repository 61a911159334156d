r"""The Llama decoder forward pass in pure JAX (float32), with the Qwen2/Qwen3 variants.

For token embeddings :math:`h^{(0)} = E[x]` each of the ``L`` layers computes

.. math::

    a &= \mathrm{RMSNorm}(h) = \frac{h}{\sqrt{\overline{h^2} + \epsilon}} \odot g_{\text{attn}},\\
    h &\leftarrow h + W_o \,\mathrm{Attn}\big(\mathrm{RoPE}(W_q a), \mathrm{RoPE}(W_k a), W_v a\big),\\
    b &= \mathrm{RMSNorm}(h) \odot g_{\text{ffn}}, \qquad
    h \leftarrow h + W_{\text{down}}\big(\mathrm{SiLU}(W_{\text{gate}} b) \odot W_{\text{up}} b\big),

and the next-token log-probabilities are the log-normalised logits
:math:`\log p(\cdot \mid x_{\le t}) = z - \log\sum_v e^{z_v}`,
:math:`z = W_{\text{out}}\,\mathrm{RMSNorm}(h_t)` (``semiring.log_probabilities``).
Attention is causal with grouped queries: ``n_heads / n_kv_heads`` query heads share a
key/value head, scores are scaled by :math:`1/\sqrt{d_{\text{head}}}`, and the weights
are ``semiring.probabilities(scores)`` over the keys (normalised in probability space, as
llama.cpp and transformers do).

**Rotary embeddings in the GGUF layout.** llama.cpp's converter permutes the rows of
``W_q`` and ``W_k`` so the rotated pairs are adjacent, ``(2i, 2i+1)`` inside each head
(``LLAMA_ROPE_TYPE_NORM``). At position ``m`` with
:math:`\theta_i = \text{base}^{-2i/d_{\text{head}}}`:

.. math::

    x'_{2i} = x_{2i}\cos m\theta_i - x_{2i+1}\sin m\theta_i, \qquad
    x'_{2i+1} = x_{2i}\sin m\theta_i + x_{2i+1}\cos m\theta_i .

(HF's ``rotate_half`` pairs ``(i, i + d/2)`` instead; the two agree because the
permutation is applied to ``q`` and ``k`` alike. The tests check this against an
independent HF-layout NumPy implementation and against transformers.)

**Qwen2 and Qwen3** (``cfg.arch``) run the same layer with three switches: ``qwen2``
adds biases to :math:`W_q a, W_k a, W_v a`; ``qwen3`` applies an RMSNorm (own gains,
same :math:`\epsilon`) to each query and key head before the rotation; both rotate the
halves ``(i, i + d/2)`` of each head (llama.cpp ``NEOX``: their Q/K rows are stored
unpermuted), exactly HF's ``rotate_half``.

**Shared-prefix batching with a KV cache.** :func:`extend` runs ``B`` rows of new
tokens that all continue one cached prefix (keys/values ``(L, P, n_kv, d)``, of which
the first ``past_len`` are valid). Each row attends to the valid prefix and causally
to its own new tokens, so a token tree costs ``prompt + sum over nodes of depth``
token evaluations instead of ``nodes * (prompt + depth)``.

Everything is float32 for speed on CPU (the package turns on x64 globally; this module
pins float32 explicitly). Callers convert results to float64.

References: Touvron et al. 2023 (LLaMA); Su et al. 2021 (RoFormer); Ainslie et al. 2023 (GQA);
Shazeer 2020 (SwiGLU); Zhang & Sennrich 2019 (RMSNorm).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from quasispecies.bridge.gguf_file import LlamaConfig
from quasispecies.semiring import log_probabilities, probabilities

__all__ = ["extend", "sequence_logprobs", "stack_params"]

F32 = jnp.float32


def stack_params(weights: dict[str, np.ndarray], cfg: LlamaConfig) -> dict:
    """Arrange GGUF weights for the forward pass: per-layer matrices stacked on a
    leading layer axis and transposed to ``(in, out)`` so that ``y = x @ W``."""

    def stack(name: str, transpose: bool) -> jax.Array:
        arrs = [weights[f"blk.{i}.{name}"] for i in range(cfg.n_layers)]
        if transpose:
            arrs = [a.T for a in arrs]
        return jnp.asarray(np.stack(arrs), dtype=F32)

    hq, hkv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    layers = {
        "attn_norm": stack("attn_norm", False),
        "wq": stack("attn_q", True),
        "wk": stack("attn_k", True),
        "wv": stack("attn_v", True),
        "wo": stack("attn_output", True),
        "ffn_norm": stack("ffn_norm", False),
        "w_gate": stack("ffn_gate", True),
        "w_up": stack("ffn_up", True),
        "w_down": stack("ffn_down", True),
    }
    if cfg.qkv_bias:
        layers |= {"bq": stack("attn_q.bias", False), "bk": stack("attn_k.bias", False)}
        layers["bv"] = stack("attn_v.bias", False)
    if cfg.qk_norm:
        layers |= {"q_norm": stack("attn_q_norm", False), "k_norm": stack("attn_k_norm", False)}
    expect: dict[str, tuple[int, ...]] = {
        "wq": (cfg.dim, hq),
        "wk": (cfg.dim, hkv),
        "wv": (cfg.dim, hkv),
        "wo": (hq, cfg.dim),
        "w_gate": (cfg.dim, cfg.ffn_dim),
        "w_up": (cfg.dim, cfg.ffn_dim),
        "w_down": (cfg.ffn_dim, cfg.dim),
    }
    if cfg.qkv_bias:
        expect |= {"bq": (hq,), "bk": (hkv,), "bv": (hkv,)}
    if cfg.qk_norm:
        expect |= {"q_norm": (cfg.head_dim,), "k_norm": (cfg.head_dim,)}
    for name, shape in expect.items():
        if layers[name].shape[1:] != shape:
            raise ValueError(
                f"GGUF: layer weight {name} has shape {layers[name].shape[1:]}, expected {shape}"
            )
    embed = jnp.asarray(weights["token_embd"], dtype=F32)
    tied = weights["output"] is weights["token_embd"]
    head = embed if tied else jnp.asarray(weights["output"], dtype=F32)
    return {
        "embed": embed,
        "head": head,
        "out_norm": jnp.asarray(weights["output_norm"], dtype=F32),
        "layers": layers,
    }


def _rms_norm(x: jax.Array, g: jax.Array, eps: float) -> jax.Array:
    g = g.reshape((1,) * (x.ndim - 1) + g.shape)  # explicit ranks (rank promotion may be "raise")
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * g


def _rope(x: jax.Array, pos: jax.Array, base: float, neox: bool = False) -> jax.Array:
    """Rotate ``x`` (B, T, heads, d) at positions ``pos`` (T,): adjacent pairs
    ``(2i, 2i+1)`` (llama.cpp ``NORM``), or halves ``(i, i + d/2)`` when ``neox``."""
    d = x.shape[-1]
    inv = base ** (-jnp.arange(0, d, 2, dtype=F32) / d)  # (d/2,)
    ang = pos.astype(F32)[:, None] * inv[None, :]  # (T, d/2)
    cos = jnp.cos(ang)[None, :, None, :]  # (1, T, 1, d/2)
    sin = jnp.sin(ang)[None, :, None, :]
    if neox:
        x0, x1 = x[..., : d // 2], x[..., d // 2 :]
        return jnp.concatenate([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)
    pairs = x.reshape(*x.shape[:-1], d // 2, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    out = jnp.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1)
    return out.reshape(x.shape)


def _hidden(params, cfg: LlamaConfig, tokens, past_k, past_v, past_len):
    """Final-normed hidden states (B, T, D) and the new keys/values (L, B, T, n_kv, d)."""
    B, T = tokens.shape
    P = past_k.shape[1]
    H, KV, d, G = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.group_size
    pos = past_len + jnp.arange(T, dtype=jnp.int32)
    past_ok = jnp.arange(P, dtype=jnp.int32) < past_len  # (P,)
    causal = jnp.tril(jnp.ones((T, T), dtype=bool))  # [t, s]: s <= t
    scale = 1.0 / float(np.sqrt(d))
    neg = jnp.array(-jnp.inf, dtype=F32)

    def layer(h, xs):
        lw, pk, pv = xs
        a = _rms_norm(h, lw["attn_norm"], cfg.rms_eps)
        q, k, v = a @ lw["wq"], a @ lw["wk"], a @ lw["wv"]
        if cfg.qkv_bias:  # qwen2
            q, k, v = q + lw["bq"][None, None], k + lw["bk"][None, None], v + lw["bv"][None, None]
        q, k, v = q.reshape(B, T, H, d), k.reshape(B, T, KV, d), v.reshape(B, T, KV, d)
        if cfg.qk_norm:  # qwen3: RMSNorm of each head before the rotation
            q, k = _rms_norm(q, lw["q_norm"], cfg.rms_eps), _rms_norm(k, lw["k_norm"], cfg.rms_eps)
        q = _rope(q, pos, cfg.rope_base, cfg.rope_neox)
        k = _rope(k, pos, cfg.rope_base, cfg.rope_neox)
        qg = q.reshape(B, T, KV, G, d)
        s_past = jnp.einsum("btkgd,pkd->bkgtp", qg, pk) * scale
        s_new = jnp.einsum("btkgd,bskd->bkgts", qg, k) * scale
        s_past = jnp.where(past_ok[None, None, None, None, :], s_past, neg)
        s_new = jnp.where(causal[None, None, None, :, :], s_new, neg)
        # attention weights: softmax over the keys (probability space)
        w = probabilities(jnp.concatenate([s_past, s_new], axis=-1), axis=-1)
        o = jnp.einsum("bkgtp,pkd->btkgd", w[..., :P], pv) + jnp.einsum(
            "bkgts,bskd->btkgd", w[..., P:], v
        )
        h = h + o.reshape(B, T, H * d) @ lw["wo"]
        b = _rms_norm(h, lw["ffn_norm"], cfg.rms_eps)
        h = h + (jax.nn.silu(b @ lw["w_gate"]) * (b @ lw["w_up"])) @ lw["w_down"]
        return h, (k, v)

    h0 = params["embed"][tokens]
    h, (k_new, v_new) = jax.lax.scan(layer, h0, (params["layers"], past_k, past_v))
    return _rms_norm(h, params["out_norm"], cfg.rms_eps), k_new, v_new


@partial(jax.jit, static_argnames=("cfg",))
def extend(params, cfg: LlamaConfig, tokens, past_k, past_v, past_len, last):
    """Run ``tokens`` (B, T) after a shared cached prefix; return next-token log-probs.

    Parameters
    ----------
    tokens : int32 (B, T)
        New tokens per row, right-padded (padding is never attended to by real tokens).
    past_k, past_v : float32 (L, P, n_kv, d)
        Cached keys/values of the shared prefix; ``P = 0`` for no prefix.
    past_len : int32 scalar
        How many cached positions are valid (``<= P``).
    last : int32 (B,)
        Index in ``[0, T)`` of each row's last real token.

    Returns
    -------
    logp : float32 (B, V)
        :math:`\\log p(\\cdot \\mid \\text{prefix}, \\text{tokens}[b, :last_b+1])`.
    k_new, v_new : float32 (L, B, T, n_kv, d)
        Keys/values of the new tokens (to extend the cache).
    """
    h, k_new, v_new = _hidden(params, cfg, tokens, past_k, past_v, past_len)
    h_last = jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0, :]
    logits = h_last @ params["head"].T
    return log_probabilities(logits, axis=-1), k_new, v_new


@partial(jax.jit, static_argnames=("cfg", "top_k"))
def sequence_logprobs(params, cfg: LlamaConfig, tokens, top_k: int = 0):
    """Log-probability of every next token of ``tokens`` (B, T), from scratch.

    Returns ``lp`` (B, T-1) with ``lp[b, t] = log p(tokens[b, t+1] | tokens[b, :t+1])``,
    and, when ``top_k > 0``, the ``top_k`` best log-probs and token ids at each of those
    positions, (B, T-1, top_k) each.
    """
    _B, _T = tokens.shape
    L, KV, d = cfg.n_layers, cfg.n_kv_heads, cfg.head_dim
    empty = jnp.zeros((L, 0, KV, d), dtype=F32)
    h, _, _ = _hidden(params, cfg, tokens, empty, empty, jnp.int32(0))
    logp = log_probabilities(h[:, :-1, :] @ params["head"].T, axis=-1)
    lp = jnp.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]
    if top_k:
        vals, idx = jax.lax.top_k(logp, top_k)
        return lp, vals, idx
    return lp, None, None
