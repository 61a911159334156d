"""benchmarks/: the low-temperature log-domain baseline, the GPU script's dry run, the README's GPU section."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import _common as C  # noqa: E402
import bench_gpu  # noqa: E402
import bench_scale  # noqa: E402
import run_all  # noqa: E402


def _reference_sweep(mdp, T: float, steps: int, x0) -> np.ndarray:
    """``T log n_steps`` by plain Python over (state, action, successor) triples."""
    lk, R, nxt = mdp.log_kernel, mdp.reward, mdp.next_state
    S = mdp.num_states
    u = [T * math.log(v) if v > 0 else -math.inf for v in x0]
    for _ in range(steps):
        terms: list[list[float]] = [[] for _ in range(S)]
        for idx in np.ndindex(lk.shape):
            if np.isfinite(lk[idx]) and u[idx[0]] > -math.inf:
                terms[int(nxt[idx])].append((u[idx[0]] + float(R[idx])) / T + float(lk[idx]))
        new = []
        for t in terms:
            if not t:
                new.append(-math.inf)
                continue
            m = max(t)
            new.append(T * (m + math.log(math.fsum(math.exp(v - m) for v in t))))
        u = new
    return np.array(u)


@pytest.mark.parametrize("kind", ["det", "stoch"])
def test_log_domain_sweep_matches_a_plain_python_loop(kind):
    mdp = bench_scale.make_mdp(kind, 25, seed=3)
    M, lk, r = bench_scale.csr_parts(mdp)
    x0 = np.zeros(25)
    x0[:5] = 0.2  # some states start empty: -inf entries must stay exact
    Ts = np.array([1e-3, 3e-2, 1.0])
    u = bench_scale.log_domain_sweep(M, lk, r, Ts, 12, x0)
    for i, T in enumerate(Ts):
        ref = _reference_sweep(mdp, float(T), 12, x0)
        assert (np.isfinite(u[i]) == np.isfinite(ref)).all()
        fin = np.isfinite(ref)
        np.testing.assert_allclose(u[i][fin], ref[fin], rtol=0, atol=1e-11)


def test_log_domain_sweep_is_exact_where_the_linear_loop_underflows():
    # at T = 1e-3 every exp(R/T) over- or underflows in float64; the log-domain values
    # stay finite and agree with the plain-Python reference
    mdp = bench_scale.make_mdp("det", 20, seed=1)
    M, lk, r = bench_scale.csr_parts(mdp)
    x0 = np.full(20, 1 / 20)
    u = bench_scale.log_domain_sweep(M, lk, r, [1e-3], 30, x0)[0]
    ref = _reference_sweep(mdp, 1e-3, 30, x0)
    fin = np.isfinite(ref)
    assert fin.any() and np.all(np.abs(u[fin]) > 1.0)
    np.testing.assert_allclose(u[fin], ref[fin], rtol=0, atol=1e-11)


def test_gpu_dry_run_end_to_end_writes_nothing_under_results():
    target = C.RESULTS / "gpu.json"
    before = target.stat().st_mtime_ns if target.exists() else None
    # about 80 s on the shared 2-core CPU (LM part included: ~25 s of it)
    proc = subprocess.run(
        ["bash", str(BENCH / "gpu.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = Path(re.search(r"^wrote (\S+)", proc.stdout, re.M).group(1))
    try:
        doc = json.loads(out.read_text())
    finally:
        out.unlink()
    bench_gpu.check_schema(doc)
    assert doc["dry_run"] is True and doc["errors"] == {}
    assert {r["part"] for r in doc["rows"]} == {"mdp", "kron", "lm"}
    assert {r["dtype"] for r in doc["rows"] if r["part"] == "mdp"} == {"float64", "float32"}
    assert all(r["reference_error"] <= 1e-9 for r in doc["rows"] if "reference_error" in r)
    f32 = [r for r in doc["rows"] if r.get("dtype") == "float32"]
    assert all(r["f32_sweep_rel_error"] <= bench_gpu.F32_TOL for r in f32)
    assert C.RESULTS not in out.resolve().parents
    after = target.stat().st_mtime_ns if target.exists() else None
    assert before == after


def test_dry_run_refuses_to_write_under_results():
    with pytest.raises(ValueError, match="--out"):
        bench_gpu.main(["--dry-run", "--out", str(C.RESULTS / "gpu-dry.json")])


def test_check_schema_names_what_is_missing():
    with pytest.raises(ValueError, match="missing key"):
        bench_gpu.check_schema({"schema": 1, "benchmark": "gpu", "dry_run": True})
    doc = {"schema": 1, "benchmark": "gpu", "dry_run": True, "errors": {}}
    doc["machine"] = {"device": "gpu: X"}
    doc["rows"] = [{"part": "kron", "L": 24}]
    with pytest.raises(ValueError, match="matvec_s"):
        bench_gpu.check_schema(doc)


def test_gpu_section_says_not_measured_without_a_file(tmp_path):
    text = "\n".join(run_all.gpu_section(tmp_path / "gpu.json"))
    assert "**Not measured**" in text


def test_gpu_section_names_the_device(tmp_path):
    doc = {
        "schema": 1,
        "benchmark": "gpu",
        "dry_run": False,
        "machine": {"device": "gpu: NVIDIA Test", "jax": "0"},
        "total_s": 10.0,
        "rows": [
            {"part": "mdp", "S": 10, "dtype": "float64", "sweep_s": 1.0, "sweep_compile_s": 2.0}
            | {"steady_s": 0.5, "steady_compile_s": 1.0},
            {"part": "mdp", "S": 10, "dtype": "float32", "sweep_s": 0.5, "sweep_compile_s": 2.0}
            | {"f32_sweep_rel_error": 1e-6, "steady_error": "LinAlgError: x"},
            {"part": "kron", "L": 24, "matvec_s": 0.1, "copy_s": 0.05, "compile_s": 1.0}
            | {"bandwidth_fraction": 0.5, "copy_gbs": 100.0},
            {"part": "lm", "batch": 8, "length": 64, "forward_s": 0.1, "compile_s": 3.0}
            | {"tokens_per_second": 5120.0},
        ],
        "errors": {},
    }
    bench_gpu.check_schema(doc)
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(doc))
    text = "\n".join(run_all.gpu_section(path))
    assert "gpu: NVIDIA Test" in text and "5,120 tokens/s" in text
    assert "| 24 |" in text and "0.50 |" in text and "steady state failed" in text
