"""A cut GGUF file is refused as "truncated at byte N of M", found from the header alone
(:func:`quasispecies.bridge.gguf_file.gguf_extent`), never as a numpy IndexError."""

from __future__ import annotations

import re

import pytest

from quasispecies.bridge import GGUFModel
from quasispecies.bridge.gguf_file import gguf_extent, read_gguf
from tests.lm_support import tiny_hf_weights, write_tiny_gguf

gguf = pytest.importorskip("gguf")


def _reader_extent(path) -> tuple[int, int]:
    """Independent reference: the gguf package's own reader (data start, end of data)."""
    r = gguf.GGUFReader(path)
    return int(r.data_offset), max(int(t.data_offset) + int(t.n_bytes) for t in r.tensors)


def _cuts(data_start: int, size: int) -> list[int]:
    return [1, 3, 4, 12, 23, 24, 100, data_start // 2, data_start - 1, data_start,
            data_start + 7, (data_start + size) // 2, size - 1]  # fmt: skip


def _check_cuts(blob: bytes, data_start: int, tmp_path, load, cuts=None) -> None:
    size = len(blob)
    for n in cuts or _cuts(data_start, size):
        cut = tmp_path / f"cut{n}.gguf"
        cut.write_bytes(blob[:n])
        with pytest.raises(ValueError) as err:
            load(cut)
        msg = str(err.value)
        assert msg.startswith("path: ") and str(cut) in msg, msg
        exact = f"truncated at byte {n} of {size}" in msg
        if n >= data_start:  # header intact: the exact size it needs is known
            assert exact, msg
        elif exact:  # cut in the padding that aligns the data section (32 bytes)
            assert n > data_start - 32, msg
        else:  # cut inside the header: a lower bound past the cut
            m = re.search(rf"truncated at byte {n} of at least (\d+)", msg)
            assert m is not None and n < int(m.group(1)) <= data_start, msg
        cut.unlink()


def test_tiny_gguf_extent_and_cuts(tmp_path):
    w, cfg = tiny_hf_weights(0)
    good = write_tiny_gguf(tmp_path / "good.gguf", w, cfg)
    data_start, end = _reader_extent(good)
    blob = good.read_bytes()
    assert gguf_extent(good) == end == len(blob)
    _check_cuts(blob, data_start, tmp_path, read_gguf)
    _check_cuts(blob, data_start, tmp_path, GGUFModel, [20, data_start - 40, data_start + 64])


@pytest.mark.lm
def test_embedded_gguf_extent_and_cuts(tmp_path):
    """The embedded file's header says exactly its pinned size; prefixes of it (cut in
    the magic, the counts, the vocabulary arrays, the tensor infos and the Q4_1 data)
    are each refused by the header check, before any tensor is dequantised."""
    from quasispecies.bridge import default_gguf_path
    from quasispecies.bridge.gguf_file import DEFAULT_GGUF_SIZE

    path = default_gguf_path(verify=False)
    data_start, end = _reader_extent(path)
    assert gguf_extent(path) == end == DEFAULT_GGUF_SIZE
    with open(path, "rb") as fh:
        blob = fh.read()
    _check_cuts(blob, data_start, tmp_path, read_gguf)
