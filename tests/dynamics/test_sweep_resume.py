"""Kill-and-resume: a checkpointed 1000-temperature sweep killed with SIGKILL resumes to
results identical to an uninterrupted run, and the kill leaves no partial output file.

The sweep runs through the command line (``quasispecies sweep ... --checkpoint --out``) in
a subprocess. So that the kill lands mid-sweep on any machine, the interrupted run sleeps
0.15 s after each chunk of temperatures (a wrapper around
``quasispecies.dynamics.sweep._rows_for``; the numbers are untouched); the parent kills it as soon
as the checkpoint shows partial progress.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import quasispecies as qs
from quasispecies.model.io import save_mdp

ROOT = Path(__file__).resolve().parents[2]
N_TEMPS = 1000
CHUNK = 32  # temperature_sweep's default chunk, used by the CLI

RUNNER = """
import sys, time
import quasispecies.dynamics.sweep as sw
from quasispecies.cli import main

mode = sys.argv[1]
inner = sw._rows_for
calls = []

def rows_for(*args):
    calls.append(1)
    out = inner(*args)
    if mode == "slow":
        time.sleep(0.15)
    return out

sw._rows_for = rows_for
rc = main(sys.argv[2:])
print("CHUNKS", len(calls), flush=True)
sys.exit(rc)
"""


def _cli(mode: str, args: list[str], **kw) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["JAX_PLATFORMS"] = "cpu"
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, mode, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        **kw,
    )


def _finish(proc: subprocess.Popen) -> int:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return int(out.split("CHUNKS")[-1].split()[0])


def test_killed_sweep_resumes_to_identical_results(tmp_path):
    rng = np.random.default_rng(0)
    S, A = 6, 3
    P = rng.dirichlet(np.ones(S), (S, A))
    P[P < 0.1] = 0.0
    P /= P.sum(axis=2, keepdims=True)
    mdp_file = save_mdp(tmp_path / "mdp.npz", qs.MDP(P, rng.standard_normal((S, A))))
    temps = f"geom:1e-4:10:{N_TEMPS}"
    n_chunks = -(-N_TEMPS // CHUNK)

    def args(tag: str) -> list[str]:
        return [
            "sweep",
            str(mdp_file),
            "--temperatures",
            temps,
            "--horizon",
            "15",
            "--start",
            "0",
            "--checkpoint",
            str(tmp_path / f"{tag}.ckpt.npz"),
            "--out",
            str(tmp_path / f"{tag}.out.npz"),
        ]

    # uninterrupted reference
    assert _finish(_cli("fast", args("ref"))) == n_chunks

    # interrupted run: SIGKILL once the checkpoint holds some but not all temperatures
    ckpt, out = tmp_path / "run.ckpt.npz", tmp_path / "run.out.npz"
    proc = _cli("slow", args("run"), start_new_session=True)
    n_killed = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists():
            with np.load(ckpt) as z:  # written atomically: always a complete file
                n_killed = int(z["n_done"])
            if n_killed >= 2 * CHUNK:
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    assert 0 < n_killed < N_TEMPS

    # nothing partial at any output path: no result file, a complete checkpoint
    assert not out.exists()
    with np.load(ckpt) as z:
        n_done = int(z["n_done"])
        assert CHUNK <= n_done < N_TEMPS and n_done % CHUNK == 0
        rows = {k: z[k] for k in z.files if k.startswith("row_")}
    assert rows and all(len(v) == n_done for v in rows.values())
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert visible == ["mdp.npz", "ref.ckpt.npz", "ref.out.npz", "run.ckpt.npz"]

    # resume: only the unfinished chunks run, and the result is bitwise the reference
    assert _finish(_cli("fast", args("run"))) == n_chunks - n_done // CHUNK
    with np.load(tmp_path / "ref.out.npz") as a, np.load(out) as b:
        assert sorted(a.files) == sorted(b.files)
        assert len(a["temperatures"]) == N_TEMPS
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
