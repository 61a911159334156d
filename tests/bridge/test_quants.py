"""The GGUF tensor types the JAX backend accepts, each read through a written GGUF file
by our reader and checked three ways: against ``gguf.quants.dequantize`` directly,
against a hand-written scalar decoder of the block layout (ggml-common.h /
ggml-quants.c ``dequantize_row_*``), and, for the types ``gguf`` can quantise, against
the float matrix it came from within the type's rounding bound."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from quasispecies.bridge.gguf_arch import SUPPORTED_TENSOR_TYPES, dequantize_tensor
from tests.bridge.gguf_fixtures import block_values, random_blocks, write_qwen_gguf

QUANTISABLE = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")
K_QUANTS = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
f32 = np.float32


def _f16(b: bytes, off: int) -> np.float32:
    return f32(np.frombuffer(b[off : off + 2], dtype=np.float16)[0])


# ----------------------------------------------------------- hand-written decoders
def _q4_0(b):
    d = _f16(b, 0)
    qs = b[2:18]
    return [f32((qs[j] & 0xF) - 8) * d for j in range(16)] + [
        f32((qs[j] >> 4) - 8) * d for j in range(16)
    ]


def _q4_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    qs = b[4:20]
    return [f32(qs[j] & 0xF) * d + m for j in range(16)] + [
        f32(qs[j] >> 4) * d + m for j in range(16)
    ]


def _q5(b, with_min):
    d = _f16(b, 0)
    m = _f16(b, 2) if with_min else f32(0)
    o = 4 if with_min else 2
    (qh,) = struct.unpack("<I", b[o : o + 4])
    qs = b[o + 4 : o + 20]
    off = 0 if with_min else 16
    lo = [(((qs[j] & 0xF) | (((qh >> j) << 4) & 0x10)) - off) for j in range(16)]
    hi = [(((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - off) for j in range(16)]
    return [f32(q) * d + m for q in lo + hi]


def _q8_0(b):
    d = _f16(b, 0)
    return [f32(q) * d for q in np.frombuffer(b[2:34], dtype=np.int8)]


def _scale_min_k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def _q4_k(b):
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, q = b[4:16], b[16:144]
    y = []
    for j in range(4):
        s1, m1 = _scale_min_k4(2 * j, sc)
        s2, m2 = _scale_min_k4(2 * j + 1, sc)
        qq = q[32 * j : 32 * j + 32]
        y += [d * f32(s1) * f32(x & 0xF) - dmin * f32(m1) for x in qq]
        y += [d * f32(s2) * f32(x >> 4) - dmin * f32(m2) for x in qq]
    return y


def _q5_k(b):
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, qh, ql = b[4:16], b[16:48], b[48:176]
    y = []
    for j in range(4):
        s1, m1 = _scale_min_k4(2 * j, sc)
        s2, m2 = _scale_min_k4(2 * j + 1, sc)
        u1, u2 = 1 << (2 * j), 2 << (2 * j)
        qq = ql[32 * j : 32 * j + 32]
        y += [
            d * f32(s1) * f32((x & 0xF) + (16 if qh[l] & u1 else 0)) - dmin * f32(m1)
            for l, x in enumerate(qq)
        ]
        y += [
            d * f32(s2) * f32((x >> 4) + (16 if qh[l] & u2 else 0)) - dmin * f32(m2)
            for l, x in enumerate(qq)
        ]
    return y


def _q6_k(b):
    ql, qh = b[0:128], b[128:192]
    sc = np.frombuffer(b[192:208], dtype=np.int8)
    d = _f16(b, 208)
    y = [f32(0)] * 256
    for n in range(2):
        L, H, S = ql[64 * n :], qh[32 * n :], sc[8 * n :]
        for l in range(32):
            i = l // 16
            q1 = ((L[l] & 0xF) | (((H[l] >> 0) & 3) << 4)) - 32
            q2 = ((L[l + 32] & 0xF) | (((H[l] >> 2) & 3) << 4)) - 32
            q3 = ((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32
            q4 = ((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32
            for k, (s, q) in enumerate(((i, q1), (i + 2, q2), (i + 4, q3), (i + 6, q4))):
                y[128 * n + l + 32 * k] = d * f32(S[s]) * f32(q)
    return y


def _q2_k(b):
    sc, q = b[0:16], b[16:80]
    d, dmin = _f16(b, 80), _f16(b, 82)
    y, i = [], 0
    for n in range(2):
        qq = q[32 * n : 32 * n + 32]
        for shift in (0, 2, 4, 6):
            for half in (0, 16):
                s = sc[i]
                i += 1
                y += [
                    d * f32(s & 0xF) * f32((qq[half + l] >> shift) & 3) - dmin * f32(s >> 4)
                    for l in range(16)
                ]
    return y


def _q3_k(b):
    hm, q, raw = b[0:32], b[32:96], b[96:108]
    d = _f16(b, 108)
    a0, a1, tmp = struct.unpack("<III", raw)
    k1, k2 = 0x03030303, 0x0F0F0F0F
    aux = [
        (a0 & k2) | (((tmp >> 0) & k1) << 4),
        (a1 & k2) | (((tmp >> 2) & k1) << 4),
        ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4),
        ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4),
    ]
    scales = np.frombuffer(struct.pack("<IIII", *aux), dtype=np.int8)
    y, i, m = [], 0, 1
    for n in range(2):
        qq = q[32 * n : 32 * n + 32]
        for shift in (0, 2, 4, 6):
            for half in (0, 16):
                dl = d * f32(int(scales[i]) - 32)
                i += 1
                y += [
                    dl * f32(((qq[half + l] >> shift) & 3) - (0 if hm[half + l] & m else 4))
                    for l in range(16)
                ]
            m <<= 1
    return y


HAND = {
    "Q4_0": _q4_0,
    "Q4_1": _q4_1,
    "Q5_0": lambda b: _q5(b, False),
    "Q5_1": lambda b: _q5(b, True),
    "Q8_0": _q8_0,
    "Q2_K": _q2_k,
    "Q3_K": _q3_k,
    "Q4_K": _q4_k,
    "Q5_K": _q5_k,
    "Q6_K": _q6_k,
}


# ------------------------------------------------------------------------ the file
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One GGUF holding a (4, 512) tensor of every supported type: the source matrices,
    the stored bytes, and the reader's tensors."""
    import gguf
    from gguf import GGMLQuantizationType as Q, quants

    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("quants") / "all.gguf"
    wr = gguf.GGUFWriter(str(path), arch="llama")
    src, stored = {}, {}
    for name in SUPPORTED_TENSOR_TYPES:
        x = rng.normal(size=(4, 512)).astype(f32)
        x[0, :32] *= 40.0  # one block of large values: scales are per block
        src[name] = x
        if name == "F32":
            data, raw = x, None
        elif name == "F16":
            data, raw = x.astype(np.float16), None
        elif name in K_QUANTS:
            data, raw = random_blocks(rng, name, 4 * 2, scale=0.01).reshape(4, -1), Q[name]
        else:
            data, raw = quants.quantize(x, Q[name]), Q[name]
        stored[name] = data
        wr.add_tensor(f"t.{name}", data, raw_dtype=raw)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    reader = gguf.GGUFReader(path)
    return src, stored, {t.name.removeprefix("t."): t for t in reader.tensors}


@pytest.mark.parametrize("name", SUPPORTED_TENSOR_TYPES)
def test_reader_equals_gguf_dequantize(written, name):
    from gguf import GGMLQuantizationType as Q, quants

    _src, stored, tensors = written
    got = dequantize_tensor(tensors[name])
    assert got.dtype == np.float32 and got.shape == (4, 512)
    if name in ("F32", "F16"):
        want = np.asarray(stored[name], dtype=f32)
    else:
        want = quants.dequantize(stored[name], Q[name])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", [n for n in SUPPORTED_TENSOR_TYPES if n in HAND])
def test_reader_equals_hand_written_block_decoder(written, name):
    """Two blocks per type (the first, which holds the scaled-up values, and the last)
    decoded value by value as ggml's dequantize_row_* does, in float32."""
    _src, stored, tensors = written
    got = dequantize_tensor(tensors[name]).reshape(-1)
    raw = np.asarray(stored[name], dtype=np.uint8).reshape(-1)
    nv = block_values(name)
    nb = raw.size // (got.size // nv)
    for k in (0, got.size // nv - 1):
        want = np.array(HAND[name](raw[k * nb : (k + 1) * nb].tobytes()), dtype=np.float64)
        block = got[k * nv : (k + 1) * nv]
        # float32 products in ggml's order; numpy may round (d*sc)*q vs d*(sc*q): 1 ulp
        np.testing.assert_allclose(block, want, rtol=0, atol=2e-7 * np.abs(want).max())


def test_float_types_by_hand(written):
    src, stored, tensors = written
    np.testing.assert_array_equal(dequantize_tensor(tensors["F32"]), src["F32"])
    np.testing.assert_array_equal(dequantize_tensor(tensors["F16"]), src["F16"].astype(np.float16))
    bf16 = np.asarray(stored["BF16"]).view(np.uint16).astype(np.uint32) << 16
    np.testing.assert_array_equal(dequantize_tensor(tensors["BF16"]), bf16.view(f32))
    # BF16 keeps 8 significant bits: relative error <= 2^-8
    x = src["BF16"]
    assert np.all(np.abs(dequantize_tensor(tensors["BF16"]) - x) <= 2.0**-8 * np.abs(x))


@pytest.mark.parametrize("name", QUANTISABLE)
def test_round_trip_within_rounding_bound(written, name):
    """Per block of 32: |x - decode(quantize(x))| <= one quantisation step, the step
    being amax/8 (Q4_0), amax/16 (Q5_0), amax/127 (Q8_0), (max-min)/15 or /31 (Q4_1,
    Q5_1): a generous bound (round-to-nearest gives half a step except at the clipped end)."""
    src, _stored, tensors = written
    x = src[name].reshape(-1, 32).astype(np.float64)
    err = np.abs(dequantize_tensor(tensors[name]).reshape(-1, 32) - x).max(axis=1)
    amax, span = np.abs(x).max(axis=1), x.max(axis=1) - x.min(axis=1)
    step = {
        "Q4_0": amax / 8,
        "Q5_0": amax / 16,
        "Q8_0": amax / 127,
        "Q4_1": span / 15,
        "Q5_1": span / 31,
    }[name]
    assert np.all(err <= step * 1.01)  # 1%: the scale itself is stored as float16
    assert err.max() > 0  # really quantised


def test_unsupported_tensor_type_is_named(tmp_path):
    """IQ4_NL (which gguf can decode) is outside the checked list: refused with its
    name, by the tensor reader and by the model loader."""
    import gguf
    from gguf import GGMLQuantizationType as Q

    rng = np.random.default_rng(1)
    path = tmp_path / "iq.gguf"
    wr = gguf.GGUFWriter(str(path), arch="llama")
    raw = random_blocks(rng, "IQ4_NL", 4 * 8, scale=0.01).reshape(4, -1)
    wr.add_tensor("blk.0.ffn_up.weight", raw, raw_dtype=Q.IQ4_NL)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    (t,) = gguf.GGUFReader(path).tensors
    with pytest.raises(ValueError, match=r"'blk.0.ffn_up.weight' has unsupported type IQ4_NL"):
        dequantize_tensor(t)

    from quasispecies.bridge import GGUFModel
    from tests.bridge.gguf_fixtures import qwen_hf_weights

    w, cfg = qwen_hf_weights(0, "qwen2", ffn=256, dim=256, n_layers=1)
    model, _ = write_qwen_gguf(tmp_path / "m.gguf", w, cfg, qtypes={"down": "IQ4_NL"})
    with pytest.raises(ValueError, match=r"'blk.0.ffn_down.weight' has unsupported type IQ4_NL"):
        GGUFModel(model)
