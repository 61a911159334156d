"""Hypothesis fuzz of every user-facing file loader: MDP ``.npz``/``.json``
(:func:`load_mdp`), fitness tables (``.csv``, ``.jsonl``, ``.parquet``), result files
(:func:`read_json`, :func:`load_result`), sweep checkpoints (:func:`read_checkpoint`) and
the GGUF header (:func:`gguf_extent`, :func:`read_gguf`).

Each test mutates valid files (byte flips, truncations, insertions, deletions, random
bytes, empty files; and, one level up, swapped JSON value types, dropped or added keys,
wrong shapes and dtypes, NaN/inf, huge numbers) over 1000 derandomised cases and asserts
the contract: the loader either returns a sane object or raises ``ValueError`` with a
message naming the file. Any other exception (or a hang) fails the test.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import random
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from quasispecies.dynamics.sweep import load_result, read_checkpoint
from quasispecies.model.files import read_json
from quasispecies.model.io import load_mdp, save_mdp
from quasispecies.model.mdp import MDP
from quasispecies.model.tables import mdp_to_table, read_table, write_table

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def case_dir(tmp_path):
    """Where the cases are written: a RAM-backed folder (``/dev/shm``) when there is one,
    since each case opens its file several times and a disk-backed ``/tmp`` can cost
    milliseconds per open; else pytest's ``tmp_path``."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="qs-fuzz-") as d:
            yield Path(d)
    else:
        yield tmp_path


# ---------------------------------------------------------------- the contract
def expect_value_error_or(load, path: Path, check=None, *, names_file: bool = True):
    """``load(path)``: a ``ValueError`` naming ``path`` with a message, or a result that
    passes ``check``. Anything else propagates and fails the test."""
    try:
        out = load(path)
    except ValueError as err:
        msg = str(err)
        assert msg.strip(), f"empty ValueError message from {load.__name__}"
        assert not names_file or path.name in msg, (
            f"{load.__name__}: message does not name the file: {msg}"
        )
        return None
    if check is not None:
        check(out)
    return out


def sane_mdp(out) -> None:
    mdp, x0 = out
    assert isinstance(mdp, MDP)
    assert np.isfinite(np.asarray(mdp.pi0)).all()
    assert not np.isnan(np.asarray(mdp.reward)).any()
    assert not np.isposinf(np.asarray(mdp.reward)).any()
    if x0 is not None:
        x0 = np.asarray(x0)
        assert x0.shape == (mdp.num_states,) and (x0 >= 0).all()
        assert abs(x0.sum() - 1) < 1e-6


def sane_table(t) -> None:
    assert len(t) > 0
    assert not np.isnan(t.reward).any()
    for c in ("prob", "pi0", "x0"):
        v = getattr(t, c)
        assert v is None or not np.isnan(v).any()


# ---------------------------------------------------------------- mutations
#: 1-3 byte-level mutations: (operation, position, bytes, bit or length).
BYTE_OPS = st.lists(
    st.tuples(
        st.sampled_from(
            (
                "flip",
                "truncate",
                "insert",
                "delete",
                "overwrite",
                "empty",
                "random",
                "dup",
                "digits",
            )
        ),
        st.integers(0, 1 << 20),
        st.binary(min_size=1, max_size=8),
        st.integers(0, 31),
    ),
    min_size=1,
    max_size=3,
)


def apply_ops(base: bytes, ops, limit: int | None = None) -> bytes:
    """``base`` with the byte mutations ``ops`` (positions below ``limit`` when given)."""
    data = bytearray(base)
    for op, p, chunk, n in ops:
        pos = p % max(min(len(data), limit or len(data)), 1)
        if op == "flip" and data:
            data[min(pos, len(data) - 1)] ^= 1 << (n % 8)
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = chunk
        elif op == "delete":
            del data[pos : pos + n + 1]
        elif op == "overwrite":
            data[pos : pos + len(chunk)] = chunk
        elif op == "empty":
            data = bytearray()
        elif op == "random":
            data = bytearray(chunk * (n + 1))
        elif op == "dup":
            data[pos:pos] = data[pos : pos + n + 1]
        elif op == "digits":  # Python's int() refuses > 4300 digits; deep nesting
            data[pos:pos] = b"9" * 5000 if n % 2 else b"[" * 5000
    return bytes(data)


@st.composite
def mutated_bytes(draw, base: bytes):
    return apply_ops(base, draw(BYTE_OPS))


HUGE = st.sampled_from([10**400, -(10**400), 1e308, -1e308, 2**63, -(2**63) - 1, 10**20])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    HUGE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["-inf", "inf", "nan", "Infinity", "-Infinity", "1e999", "", "x", "0"]),
    st.text(max_size=4),
)
KEYS = ("P", "R", "pi0", "x0", "next_state", "state", "action", "reward", "prob", "u")
ODD = [None, True, False, 0, 1, -1, 5, 10**400, -(10**400), 2**64, 1e308, -1e308, 1e-320,
       math.nan, math.inf, -math.inf, "-inf", "inf", "nan", "-Infinity", "bytes:\\xe2",
       "bytes:\\xZZ", "", "3", "x", "é"]  # fmt: skip


def random_tree(seed: int, keys=KEYS, top_dict: bool = False):
    """A random JSON-like tree (at most 12 leaves, depth 5) from ``seed``: built with
    :class:`random.Random`, which is far cheaper per case than ``st.recursive``."""
    rng = random.Random(seed)
    budget = [rng.randint(1, 12)]

    def node(depth: int, force_dict: bool = False):
        r = rng.random()
        if not force_dict and (depth > 4 or budget[0] <= 0 or r < 0.45):
            budget[0] -= 1
            c = rng.random()
            if c < 0.6:
                return rng.choice(ODD)
            return rng.uniform(-50, 1) if c < 0.8 else rng.randint(-300, 300)
        if r < 0.7 and not force_dict:
            return [node(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(keys): node(depth + 1) for _ in range(rng.randint(0, 5))}

    return node(0, top_dict)


TREES = st.integers(0, 2**32 - 1).map(random_tree)


def _slots(doc, out):
    """Every (container, key) pair inside ``doc``."""
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for k, v in items:
        out.append((doc, k))
        _slots(v, out)
    return out


@st.composite
def mutated_json(draw, base):
    """A deep copy of ``base`` with 1-3 value-level mutations: a value replaced by a
    scalar of another type or a random tree, a key dropped or added, a list cut, grown
    or wrapped; sometimes the whole document replaced."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(doc, [])
        if not slots or draw(st.integers(0, 19)) == 0:
            doc = draw(TREES)
            continue
        parent, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["scalar", "tree", "drop", "add", "cut", "grow", "wrap"]))
        val = parent[key]
        if op == "scalar":
            parent[key] = draw(SCALARS)
        elif op == "tree":
            parent[key] = draw(TREES)
        elif op == "drop":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(TREES)
        elif op == "cut" and isinstance(val, list):
            parent[key] = val[: draw(st.integers(0, max(len(val) - 1, 0)))]
        elif op == "grow" and isinstance(val, list) and val:
            parent[key] = val + val[:1]
        else:
            parent[key] = [val]
    return doc


def dumps(doc) -> str:
    return json.dumps(doc, allow_nan=True)


def maybe_bytes(draw, text: str) -> bytes:
    data = text.encode("utf-8")
    return draw(mutated_bytes(data)) if draw(st.booleans()) else data


# ---------------------------------------------------------------- valid seeds
def _mdps():
    rng = np.random.default_rng(0)
    P = rng.random((3, 2, 3))
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(3, 2))
    R[0, 1] = -np.inf
    stoch = MDP(P, R)
    det = MDP.from_transitions(np.array([[1, 2], [0, 2], [2, 1]]), rng.normal(size=(3, 2)))
    return [(stoch, np.array([0.5, 0.25, 0.25])), (det, None)]


MDPS = _mdps()


def _npz_arrays(mdp, x0, tmp: Path) -> dict[str, np.ndarray]:
    save_mdp(tmp, mdp, x0)
    with np.load(tmp) as z:
        return {k: z[k] for k in z.files}


def _seeds_npz(tmp: Path) -> list[dict[str, np.ndarray]]:
    seeds = [_npz_arrays(m, x0, tmp / f"seed{i}.npz") for i, (m, x0) in enumerate(MDPS)]
    T = np.array([0.5, 1.0, 2.0])
    seeds.append(  # a sweep checkpoint (fingerprint "fp"), as temperature_sweep writes it
        {
            "fingerprint": np.asarray("fp"),
            "n_done": np.asarray(2),
            "row_log_growth": np.array([0.1, 0.2]),
            "row_population": np.full((2, 3), 1 / 3),
        }
    )
    seeds.append({"temperatures": T, "log_growth": np.array([1.0, np.inf, -np.inf])})  # result
    return seeds


def _checkpoint(path):
    n, done = read_checkpoint(path, "fp", 3)
    assert 0 <= n <= 3
    assert all(len(v[0]) == n for v in done.values())
    return n


@st.composite
def mutated_arrays(draw, seeds):
    """One seed's arrays with 0-3 array-level mutations (dropped/added keys, wrong shape
    or dtype, NaN/inf/huge entries, out-of-range indices, strings, pickled objects)."""
    arrays = dict(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*sorted(arrays), "P", "x0", "next_state", "n_done"]))
        op = draw(st.sampled_from(["drop", "shape", "dtype", "value", "scalar", "str", "obj"]))
        a = arrays.get(key, np.zeros(3))
        if op == "drop":
            arrays.pop(key, None)
        elif op == "shape":
            shape = draw(st.lists(st.integers(0, 4), max_size=3))
            arrays[key] = np.resize(a.ravel() if a.size else np.zeros(1), shape)
        elif op == "dtype":
            dt = draw(
                st.sampled_from([np.int8, np.int64, np.uint8, bool, np.complex64, np.float16])
            )
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arrays[key] = np.asarray(a).astype(dt) if a.dtype.kind in "biufc" else a
        elif op == "value" and a.size and a.dtype.kind in "f":
            b = a.copy()
            b.flat[draw(st.integers(0, b.size - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -np.inf, 1e308, -1e308, -1.0, 0.0])
            )
            arrays[key] = b
        elif op == "scalar":
            arrays[key] = np.asarray(draw(st.sampled_from([0, -1, 7, 10**9, 2.5, np.nan])))
        elif op == "str":
            arrays[key] = np.asarray(["a", "b"])
        else:
            arrays[key] = np.asarray([{"x": 1}, None], dtype=object)  # pickled on save
    buf = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(buf, **arrays)
    data = buf.getvalue()
    return draw(mutated_bytes(data)) if draw(st.booleans()) else data


# ---------------------------------------------------------------- the tests
def test_fuzz_npz_loaders(case_dir):
    """``.npz``: MDP files, sweep checkpoints and results, each mutated, fed to all three
    readers (load_mdp, read_checkpoint, load_result)."""
    seeds = _seeds_npz(case_dir)
    path = case_dir / "case.npz"

    @FUZZ
    @given(data=mutated_arrays(seeds))
    def run(data):
        path.write_bytes(data)
        expect_value_error_or(load_mdp, path, sane_mdp)
        expect_value_error_or(_checkpoint, path)
        out = expect_value_error_or(load_result, path)
        assert out is None or all(isinstance(v, np.ndarray) for v in out.values())

    run()


def _json_seeds(tmp: Path) -> list:
    docs = []
    for i, (m, x0) in enumerate(MDPS):
        save_mdp(tmp / f"seed{i}.json", m, x0)
        docs.append(json.loads((tmp / f"seed{i}.json").read_text()))
    docs.append({"temperatures": [0.5, 1.0], "log_growth": [1.0, "inf"], "x": [[0.5, None]]})
    return docs


def test_fuzz_json_loaders(case_dir):
    """``.json``: MDP files and result files, mutated at the value level and then
    (half the time) at the byte level, fed to load_mdp, read_json and load_result."""
    seeds = _json_seeds(case_dir)
    path = case_dir / "case.json"

    @st.composite
    def cases(draw):
        return maybe_bytes(draw, dumps(draw(mutated_json(draw(st.sampled_from(seeds))))))

    @FUZZ
    @given(data=cases())
    def run(data):
        path.write_bytes(data)
        expect_value_error_or(load_mdp, path, sane_mdp)
        expect_value_error_or(read_json, path)
        out = expect_value_error_or(load_result, path)
        assert out is None or all(isinstance(v, np.ndarray) for v in out.values())

    run()


def _table_load(path):
    t = read_table(path)
    sane_table(t)
    return load_mdp(path)


def _table_seeds(tmp: Path, suffix: str) -> list[bytes]:
    out = []
    for i, (m, x0) in enumerate(MDPS):
        p = write_table(tmp / f"seed{i}{suffix}", m, x0=x0)
        out.append(p.read_bytes())
    return out


CSV_CELLS = st.sampled_from(
    [
        "",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "+inf",
        "1e999",
        "-1e999",
        "abc",
        '"',
        "1,2",
        " 3 ",
        "-0",
        "99999999999999999999999",
        "0x10",
        "\x00",
        "é",
        "1.5",
        "-1",
        "True",
    ]
)


def test_fuzz_csv_tables(case_dir):
    """``.csv``: valid tables with cells replaced by odd text, lines dropped or doubled,
    then (half the time) byte mutations."""
    seeds = [s.decode() for s in _table_seeds(case_dir, ".csv")]
    path = case_dir / "case.csv"

    @st.composite
    def cases(draw):
        lines = [line.split(",") for line in draw(st.sampled_from(seeds)).splitlines()]
        for _ in range(draw(st.integers(0, 3))):
            i = draw(st.integers(0, len(lines) - 1))
            op = draw(st.sampled_from(["cell", "drop_line", "dup_line", "drop_cell", "add_cell"]))
            if op == "cell" and lines[i]:
                lines[i][draw(st.integers(0, len(lines[i]) - 1))] = draw(CSV_CELLS)
            elif op == "drop_line":
                del lines[i]
                if not lines:
                    break
            elif op == "dup_line":
                lines.insert(i, list(lines[i]))
            elif op == "drop_cell" and lines[i]:
                lines[i].pop()
            else:
                lines[i].append(draw(CSV_CELLS))
        return maybe_bytes(draw, "\n".join(",".join(r) for r in lines) + "\n")

    @FUZZ
    @given(data=cases())
    def run(data):
        path.write_bytes(data)
        expect_value_error_or(_table_load, path, sane_mdp)

    run()


def test_fuzz_jsonl_tables(case_dir):
    """``.jsonl``: the rows mutated as JSON values, then (half the time) byte mutations."""
    seeds = [
        [json.loads(line) for line in s.decode().splitlines()]
        for s in _table_seeds(case_dir, ".jsonl")
    ]
    path = case_dir / "case.jsonl"

    @st.composite
    def cases(draw):
        rows = draw(mutated_json(draw(st.sampled_from(seeds))))
        rows = rows if isinstance(rows, list) else [rows]
        return maybe_bytes(draw, "".join(dumps(r) + "\n" for r in rows))

    @FUZZ
    @given(data=cases())
    def run(data):
        path.write_bytes(data)
        expect_value_error_or(_table_load, path, sane_mdp)

    run()


def test_fuzz_parquet_tables(case_dir):
    """``.parquet``: columns swapped to other types (strings, ints, nulls, NaN, lists,
    booleans), dropped or duplicated, then (half the time) byte mutations."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    seeds = [mdp_to_table(m, x0=x0) for m, x0 in MDPS]
    path = case_dir / "case.parquet"
    columns = st.sampled_from(["state", "action", "next_state", "reward", "prob", "pi0", "x0"])

    def column_values(draw, n):
        kind = draw(st.sampled_from(["str", "int", "float", "null", "bool", "list", "huge"]))
        if kind == "str":
            return pa.array(
                draw(
                    st.lists(st.sampled_from(["a", "b", "-inf", "nan", ""]), min_size=n, max_size=n)
                )
            )
        if kind == "int":
            return pa.array(draw(st.lists(st.integers(-3, 5), min_size=n, max_size=n)), pa.int64())
        if kind == "float":
            vals = st.floats(allow_nan=True, allow_infinity=True)
            return pa.array(draw(st.lists(vals, min_size=n, max_size=n)), pa.float64())
        if kind == "null":
            return pa.array([None] * n, pa.float64())
        if kind == "bool":
            return pa.array([True] * n)
        if kind == "list":
            return pa.array([[1.0]] * n)
        return pa.array([2**62] * n, pa.int64())

    @st.composite
    def cases(draw):
        t = draw(st.sampled_from(seeds))
        names = t.columns
        arrays = []
        for c in names:
            v = getattr(t, c)
            arrays.append(
                pa.array(v) if c in ("state", "action", "next_state") else pa.array(np.asarray(v))
            )
        for _ in range(draw(st.integers(0, 3))):
            op = draw(st.sampled_from(["swap", "drop", "dup", "add"]))
            c = draw(columns)
            if op == "swap" and c in names:
                arrays[names.index(c)] = column_values(draw, len(t))
            elif op == "drop" and c in names and len(names) > 1:
                i = names.index(c)
                names, arrays = names[:i] + names[i + 1 :], arrays[:i] + arrays[i + 1 :]
            elif op == "dup" and c in names:
                names, arrays = [*names, c], [*arrays, arrays[names.index(c)]]
            elif c not in names:
                names, arrays = [*names, c], [*arrays, column_values(draw, len(t))]
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_arrays(arrays, names=names), sink)
        data = sink.getvalue().to_pybytes()
        return draw(mutated_bytes(data)) if draw(st.booleans()) else data

    @FUZZ
    @given(data=cases())
    def run(data):
        path.write_bytes(data)
        expect_value_error_or(_table_load, path, sane_mdp)

    run()


def test_fuzz_gguf_header(case_dir, monkeypatch):
    """GGUF: a tiny valid file (4-token vocabulary, one layer of width 8) with 1-3 byte
    mutations inside its header (magic, version, counts, metadata keys and values, tensor
    infos), fed to gguf_extent and read_gguf."""
    gguf = pytest.importorskip("gguf")
    from quasispecies.bridge.gguf_file import GGUFContents, gguf_extent, read_gguf
    from tests import lm_support

    monkeypatch.setattr(
        lm_support, "tiny_vocab", lambda: (["a", "b", "Ġt", "<|end|>"], [1, 1, 1, 3])
    )
    w, cfg = lm_support.tiny_hf_weights(0, dim=8, n_layers=1, n_heads=2, n_kv=1, ffn=8, tied=True)
    good = lm_support.write_tiny_gguf(case_dir / "good.gguf", w, cfg)
    blob = good.read_bytes()
    assert isinstance(read_gguf(good), GGUFContents)
    header = int(gguf.GGUFReader(good).data_offset)
    path = case_dir / "case.gguf"

    @FUZZ
    @given(ops=BYTE_OPS)
    def run(ops):
        data = apply_ops(blob, ops, limit=header)
        path.write_bytes(data)
        n = expect_value_error_or(gguf_extent, path)
        assert n is None or 0 < n <= len(data)
        out = expect_value_error_or(read_gguf, path)
        assert out is None or isinstance(out, GGUFContents)

    run()


def test_corrupt_checkpoint_names_the_file(case_dir):
    """A damaged ``--checkpoint`` file: ``ValueError`` naming the argument and the file
    (it used to be numpy's bare "pickled data" message), before any work is done."""
    from quasispecies.dynamics.sweep import temperature_sweep

    ckpt = case_dir / "sweep.npz"
    for data in (b"not a zip archive at all", b"PK\x03\x04" + bytes(40), b""):
        ckpt.write_bytes(data)
        with pytest.raises(ValueError, match=r"^checkpoint: .*sweep\.npz: not a readable sweep"):
            temperature_sweep(MDPS[1][0], [0.5, 1.0], checkpoint=ckpt)
