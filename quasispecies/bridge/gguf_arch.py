"""What the JAX GGUF backend accepts: architectures, tensor names and tensor types.

Three decoder architectures share one forward pass (:mod:`quasispecies.bridge.llama`);
they differ in a few switches, read from ``general.architecture``:

=========  ===============================  ============================================
``arch``   extra tensors per layer          rotary pairs (llama.cpp rope type)
=========  ===============================  ============================================
llama      none                             adjacent ``(2i, 2i+1)`` (``NORM``: the
                                            converter permuted the Q/K rows)
qwen2      ``attn_{q,k,v}.bias``            halves ``(i, i + d/2)`` (``NEOX``, no
           (Qwen2, Qwen2.5)                 permutation)
qwen3      ``attn_{q,k}_norm`` (RMSNorm of  halves ``(i, i + d/2)`` (``NEOX``)
           each head before the rotation)
=========  ===============================  ============================================

Tensor types: every tensor is dequantised to float32 by :func:`gguf.quants.dequantize`;
only the types listed in :data:`SUPPORTED_TENSOR_TYPES` (the ones a user downloads, each
checked in ``tests/bridge/test_quants.py`` against a hand-written block decoder) are
accepted. Anything else is a ``ValueError`` naming the architecture or the type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "SUPPORTED_TENSOR_TYPES",
    "ArchSpec",
    "arch_spec",
    "dequantize_tensor",
    "layer_tensor_names",
]

SUPPORTED_TENSOR_TYPES = (
    "F32",
    "F16",
    "BF16",
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q8_0",
    "Q2_K",
    "Q3_K",
    "Q4_K",
    "Q5_K",
    "Q6_K",
)

_BASE_TENSORS = (
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
)


@dataclass(frozen=True)
class ArchSpec:
    """The switches that distinguish a supported architecture."""

    name: str
    rope_neox: bool  # rotary pairs (i, i + d/2) instead of adjacent (2i, 2i+1)
    qkv_bias: bool  # attn_q/k/v carry a bias
    qk_norm: bool  # per-head RMSNorm of queries and keys before the rotation


_ARCHS = {
    "llama": ArchSpec("llama", rope_neox=False, qkv_bias=False, qk_norm=False),
    "qwen2": ArchSpec("qwen2", rope_neox=True, qkv_bias=True, qk_norm=False),
    "qwen3": ArchSpec("qwen3", rope_neox=True, qkv_bias=False, qk_norm=True),
}
SUPPORTED_ARCHITECTURES = tuple(_ARCHS)


def arch_spec(arch: Any, where: str = "GGUF") -> ArchSpec:
    """The :class:`ArchSpec` of ``general.architecture``; ``ValueError`` naming it if unknown."""
    spec = _ARCHS.get(arch) if isinstance(arch, str) else None
    if spec is None:
        raise ValueError(
            f"GGUF: unsupported architecture {arch!r} in {where}; supported: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)} (Llama/SmolLM/Mistral-style, Qwen2/Qwen2.5, "
            "Qwen3 decoders)"
        )
    return spec


def layer_tensor_names(spec: ArchSpec) -> tuple[str, ...]:
    """Names (without ``blk.{i}.``) of the tensors every layer of ``spec`` must have.

    Weights are stored without their ``.weight`` suffix; biases keep ``.bias``.
    """
    names = list(_BASE_TENSORS)
    if spec.qkv_bias:
        names += ["attn_q.bias", "attn_k.bias", "attn_v.bias"]
    if spec.qk_norm:
        names += ["attn_q_norm", "attn_k_norm"]
    return tuple(names)


def dequantize_tensor(tensor) -> np.ndarray:
    """A :class:`gguf.ReaderTensor` as a contiguous float32 array in GGUF's row-major
    shape (``(ne1, ne0)`` for a matrix: ``(out_features, in_features)``).

    ``ValueError`` naming the tensor and its type when the type is not one of
    :data:`SUPPORTED_TENSOR_TYPES`.
    """
    from gguf import quants

    ttype = tensor.tensor_type
    name = getattr(ttype, "name", str(ttype))
    if name not in SUPPORTED_TENSOR_TYPES:
        raise ValueError(
            f"GGUF: tensor {tensor.name!r} has unsupported type {name}; supported: "
            f"{', '.join(SUPPORTED_TENSOR_TYPES)}"
        )
    arr = quants.dequantize(tensor.data, ttype)
    want = tuple(int(n) for n in reversed(tensor.shape))
    arr = np.ascontiguousarray(arr, dtype=np.float32).reshape(want)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"GGUF: tensor {tensor.name!r} ({name}) holds non-finite values")
    return arr
