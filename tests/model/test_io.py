"""Saving and loading MDPs (quasispecies.model.io): round trips, atomic writes, and damaged
files, which raise ValueError naming the file, whatever the damage."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import quasispecies as qs


@pytest.mark.parametrize("suffix", [".npz", ".json"])
@pytest.mark.parametrize("kind", ["dense", "deterministic"])
def test_save_load_round_trip(tmp_path, suffix, kind):
    mdp = qs.random_mdp(6, 3, seed=3, stochastic=kind == "dense", density=0.7)
    x0 = np.eye(6)[2]
    path = qs.save_mdp(tmp_path / f"m{suffix}", mdp, x0)
    back, x0b = qs.load_mdp(path)
    np.testing.assert_array_equal(x0b, x0)
    np.testing.assert_allclose(back.P, mdp.P)
    np.testing.assert_allclose(back.pi0, mdp.pi0)
    np.testing.assert_allclose(
        qs.scaled_log_population(back, 0.3, 5, x0), qs.scaled_log_population(mdp, 0.3, 5, x0)
    )
    assert [p.name for p in tmp_path.iterdir()] == [f"m{suffix}"]  # no temp file left behind


def test_json_file_keeps_minus_inf(tmp_path):
    R = np.array([[0.0, -np.inf], [1.0, 0.5]])
    mdp = qs.MDP.from_transitions(np.array([[1, 0], [0, 1]]), R)
    qs.save_mdp(tmp_path / "m.json", mdp)
    back, _ = qs.load_mdp(tmp_path / "m.json")
    np.testing.assert_array_equal(back.R, R)


def test_corrupt_and_incomplete_files(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .npz"):
        qs.load_mdp(tmp_path / "bad.npz")
    np.savez(tmp_path / "partial.npz", P=np.ones((2, 1, 2)) / 2)
    with pytest.raises(ValueError, match=r"missing key\(s\) \['R'\]"):
        qs.load_mdp(tmp_path / "partial.npz")
    (tmp_path / "trunc.json").write_text('{"P": [[[1.0]]], "R": [[0')
    with pytest.raises(ValueError, match="not valid JSON"):
        qs.load_mdp(tmp_path / "trunc.json")
    (tmp_path / "ragged.json").write_text(json.dumps({"P": [[[1.0]], [[0.5, 0.5]]], "R": [[0.0]]}))
    with pytest.raises(ValueError, match="ragged.json"):
        qs.load_mdp(tmp_path / "ragged.json")
    (tmp_path / "rows.json").write_text(
        json.dumps({"P": [[[0.5, 0.4]], [[0.0, 1.0]]], "R": [[0.0], [0.0]]})
    )
    with pytest.raises(ValueError, match="rows.json: P: row"):
        qs.load_mdp(tmp_path / "rows.json")
    with pytest.raises(ValueError, match="does not exist"):
        qs.load_mdp(tmp_path / "nope.npz")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="unknown file type"):
        qs.load_mdp(tmp_path / "x.txt")


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    from quasispecies.model.io import atomic_write

    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_gives_plain_open_permissions(tmp_path):
    import os
    import stat

    from quasispecies.model.io import atomic_write

    with open(tmp_path / "plain.txt", "w") as fh:
        fh.write("x")
    with atomic_write(tmp_path / "atomic.txt") as fh:
        fh.write("x")
    mode = [stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in ("plain.txt", "atomic.txt")]
    assert mode[0] == mode[1], [oct(m) for m in mode]


# ------------------------------------------------------------- damaged .npz files
def _npz(tmp_path, compressed=True):
    mdp = qs.grid_world(2, 3, goal=(1, 2))
    path = tmp_path / "good.npz"
    if compressed:
        return qs.save_mdp(path, mdp, x0=np.eye(6)[0]).read_bytes()
    np.savez(path, P=mdp.P, R=mdp.R)
    return path.read_bytes()


def _central_entry(raw: bytes) -> int:
    """Offset of the first central-directory record of a zip archive."""
    return raw.index(b"PK\x01\x02")


def _patch(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value) :]


def _damaged(raw: bytes) -> dict[str, bytes]:
    cd = _central_entry(raw)
    local = raw.index(b"PK\x03\x04")
    name_len, extra_len = (
        int.from_bytes(raw[local + k : local + k + 2], "little") for k in (26, 28)
    )
    data = local + 30 + name_len + extra_len  # the first member's deflate stream
    return {
        # zipfile: NotImplementedError("That compression method is not supported")
        "compression method": _patch(raw, cd + 10, (99).to_bytes(2, "little")),
        # zipfile: NotImplementedError("zip file version 9.9")
        "version needed": _patch(raw, cd + 6, (99).to_bytes(2, "little")),
        # zipfile: RuntimeError("File ... is encrypted, password required")
        "encrypted flag": _patch(raw, cd + 8, b"\x01\x00"),
        # zlib.error("Error -3 while decompressing data: invalid code lengths set")
        "deflate header": _patch(raw, data, bytes([raw[data] ^ 0xFF])),
        # zipfile.BadZipFile("Bad CRC-32 for file 'next_state.npy'")
        "deflate data": _patch(raw, data + 5, bytes([raw[data + 5] ^ 0xFF])),
        # zipfile.BadZipFile("File is not a zip file")
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
    }


@pytest.mark.parametrize(
    "damage",
    [
        "compression method",
        "version needed",
        "encrypted flag",
        "deflate header",
        "deflate data",
        "truncated",
        "empty",
    ],
)
def test_damaged_npz_raises_value_error_naming_the_file(tmp_path, damage):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_damaged(_npz(tmp_path))[damage])
    with pytest.raises(ValueError, match="not a readable .npz") as err:
        qs.load_mdp(bad)
    assert str(bad) in str(err.value)


def test_every_single_byte_damage_of_an_npz_is_a_value_error(tmp_path):
    """Flip each byte of a compressed and an uncompressed archive in turn: loading either
    succeeds (the damage hit a number that still makes a valid MDP) or raises ValueError
    naming the file; nothing else escapes, and no file handle is left open."""
    bad = tmp_path / "bad.npz"
    for raw in (_npz(tmp_path, compressed=True), _npz(tmp_path, compressed=False)):
        for i in range(len(raw)):
            bad.write_bytes(_patch(raw, i, bytes([raw[i] ^ 0xFF])))
            try:
                qs.load_mdp(bad)
            except ValueError as err:
                assert str(bad) in str(err), (i, err)


def test_npz_that_is_not_an_archive_or_not_numbers(tmp_path):
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.ones(3))  # a bare .npy under an .npz name
    with pytest.raises(ValueError, match="array.npz: not a readable .npz file"):
        qs.load_mdp(npy)
    text = tmp_path / "text.npz"
    np.savez(text, next_state=np.array([["a", "b"]]), R=np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"text.npz: key 'next_state' holds <U1 data"):
        qs.load_mdp(text)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, P=np.array([None], dtype=object), R=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="pickled.npz: not a readable .npz file"):
        qs.load_mdp(pickled)
    complex_ = tmp_path / "complex.npz"
    np.savez(complex_, P=np.ones((1, 1, 1), dtype=complex), R=np.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"complex.npz: key 'P' holds complex128 data"):
        qs.load_mdp(complex_)
    assert zipfile.is_zipfile(complex_)


def test_json_next_state_must_be_numbers(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"next_state": [["a", "b"]], "R": [[0.0, 0.0]]}))
    with pytest.raises(ValueError, match=r"m.json: key 'next_state' holds <U1 data"):
        qs.load_mdp(bad)
