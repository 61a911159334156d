"""Sweeps over a ``jax.distributed`` job of 2 and 3 CPU processes on 127.0.0.1.

Every job runs in subprocesses with a hard timeout (the launcher kills its processes at
``launch_local(timeout=...)``, and the test kills the launcher's whole session past
``subprocess`` timeouts), on a fresh free port. References are the one-process
:func:`quasispecies.dynamics.sweep.temperature_sweep`, run in this process; agreement is
bitwise (each temperature's numbers come from the same program whatever the process
count, and the gather is a copy).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.cli import main
from quasispecies.cli.options import parse_temperatures
from quasispecies.dynamics import distributed as dist, sweep as sw
from quasispecies.model.io import load_mdp, save_mdp

ROOT = Path(__file__).resolve().parents[2]
TEMPS = "geom:1e-3:5:23"  # 23 temperatures: blocks of 4 leave a short last block
CHUNK = 4

# One process of the job: counts the temperatures it computes (on stderr); in "stall"
# mode it hangs on its second shard, so that the parent kills the job mid-sweep. "RAN p d"
# says process p computed rows on device d; "SHARDS p m local held" that the global rows
# array of a round spans m devices and that process p's addressable shards lie on exactly
# its local devices.
RUNNER = """
import sys, time
import jax
import numpy as np
import quasispecies.dynamics.sweep as sw
import quasispecies.kernels.sharding as sh
from quasispecies.cli import main

mode = sys.argv[1]
inner, outer = sw._rows_for, sh.rows_over_devices
count = []

def rows_for(mdp, T, *args):
    count.append(len(T))
    dev = jax.config.jax_default_device
    print(f"RAN {jax.process_index()} {dev.id}", file=sys.stderr, flush=True)
    if mode == "stall" and len(count) > 1:
        time.sleep(600)  # stuck in round 2, before its gather: the checkpoint holds round 1
    return inner(mdp, T, *args)

def rows_over(*args, **kw):
    g = outer(*args, **kw)
    local = ",".join(str(d.id) for d in sorted(jax.local_devices(), key=lambda d: d.id))
    held = ",".join(str(i) for i in sorted(s.device.id for s in g.addressable_shards))
    full = [s.device.id for s in g.addressable_shards if np.isfinite(np.asarray(s.data)).any()]
    full = ",".join(str(i) for i in sorted(full)) or "-"
    m = g.sharding.mesh.devices.size
    print(f"SHARDS {jax.process_index()} {m} {local} {held} {full}", file=sys.stderr, flush=True)
    return g

sw._rows_for, sh.rows_over_devices = rows_for, rows_over
argv, rc, calls = sys.argv[2:], 0, 0
while argv and rc == 0:  # several sweeps in one job, separated by "--then"
    cut = argv.index("--then") if "--then" in argv else len(argv)
    rc = main(argv[:cut])
    print(f"ROWS{calls} {sum(count)}", file=sys.stderr, flush=True)
    count.clear()
    calls += 1
    argv = argv[cut + 1 :]
sys.exit(rc)
"""


def _env(devices: int = 2) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"  # per process
    return env


def _launch(argv: list[str], n: int, timeout: float = 240, devices: int = 2) -> subprocess.Popen:
    """``launch_local(argv, n)`` in its own session (so the test can kill the whole job)."""
    code = (
        "import sys; from quasispecies.dynamics.distributed import launch_local; "
        f"sys.exit(launch_local({argv!r}, {n}, timeout={timeout}))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(devices),
        cwd=ROOT,
        start_new_session=True,
    )


def _wait(proc: subprocess.Popen, timeout: float = 300) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return out, err


def _rows(err: str, call: int) -> int:
    """Temperatures computed by all processes in sweep number ``call`` of a RUNNER job."""
    lines = err.splitlines()
    return sum(int(line.split()[1]) for line in lines if line.startswith(f"ROWS{call} "))


@pytest.fixture(scope="module")
def mdp_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    S, A = 6, 3
    P = rng.dirichlet(np.ones(S), (S, A))
    P[P < 0.1] = 0.0
    P /= P.sum(axis=2, keepdims=True)
    return save_mdp(
        tmp_path_factory.mktemp("d") / "mdp.npz", qs.MDP(P, rng.standard_normal((S, A)))
    )


def _reference(mdp_file, horizon):
    """The one-process sweep of what the CLI runs (x0 = delta_0 with a horizon)."""
    mdp, _ = load_mdp(mdp_file)
    T = parse_temperatures(TEMPS)
    x0 = None if horizon is None else 0
    return mdp, T, sw.temperature_sweep(mdp, T, horizon=horizon, x0=x0, chunk=CHUNK)


def _same(ref: dict, got, keys=None) -> None:
    keys = sorted(ref) if keys is None else keys
    assert sorted(got) == sorted(ref)
    for k in keys:
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(ref[k]), err_msg=k)


def _devices_used(err: str) -> dict[int, tuple[set[int], set[int], set[int]]]:
    """Per process: (its local device ids, the devices whose shards held computed rows, the
    devices its rows were computed on), after checking that every round's rows array
    spans the global mesh of 2 x 2 devices and that the process's addressable shards lie
    exactly on its local devices."""
    out: dict[int, tuple[set[int], set[int], set[int]]] = {}
    # searched, not split by line: process 0's progress bar shares the stream
    for pid, m, local, held, full in re.findall(
        r"SHARDS (\d+) (\d+) ([\d,]+) ([\d,]+) ([\d,]+|-)", err
    ):
        assert int(m) == 4 and local == held and len(local.split(",")) == 2, (m, local, held)
        rec = out.setdefault(int(pid), ({int(d) for d in local.split(",")}, set(), set()))
        rec[1].update(int(d) for d in full.split(",") if d != "-")
    for pid, dev in re.findall(r"RAN (\d+) (\d+)", err):
        out[int(pid)][2].add(int(dev))
    return out


def test_jobs_of_three_and_two_processes_equal_one_process(mdp_file, tmp_path):
    """A horizon sweep on 3 processes x 1 device is killed; 2 processes x 2 devices (one
    global mesh of 4) resume it, then run a steady-state sweep in the same job; 1 process
    resumes the same checkpoint."""
    mdp, T, ref = _reference(mdp_file, 7)
    _, _, ref_steady = _reference(mdp_file, None)
    ckpt, out = tmp_path / "run.ckpt.npz", tmp_path / "run.out.npz"
    steady_out = tmp_path / "steady.npz"

    def argv(mode: str) -> list[str]:
        a = [sys.executable, "-c", RUNNER, mode, "sweep", str(mdp_file), "--temperatures", TEMPS]
        a += ["--horizon", "7", "--start", "0", "--chunk", str(CHUNK), "--distributed"]
        return [*a, "--checkpoint", str(ckpt), "--out", str(out)]

    # 3 processes, killed (the launcher and every process) once some rounds are saved
    proc = _launch(argv("stall"), 3, devices=1)
    n_killed, deadline = 0, time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists():
            with np.load(ckpt) as z:  # written atomically: always a complete file
                n_killed = len(z["temperatures"])
            if n_killed >= 3 * CHUNK:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.02)
    _wait(proc)
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not out.exists()
    with np.load(ckpt) as z:
        done_T = z["temperatures"]
        assert len(done_T) == 3 * CHUNK  # round 1: a block on each of the 3 processes
        for k in ("scaled_log_population", "population", "value"):
            want = ref[k][np.searchsorted(T, done_T)]
            np.testing.assert_array_equal(z[f"row_{k}"], want, err_msg=k)
    partial = tmp_path / "partial.npz"
    partial.write_bytes(ckpt.read_bytes())

    # 2 processes resume: only the missing temperatures run; the result is bitwise the
    # reference. Then the steady states of every temperature, split over the same 2.
    steady = ["sweep", str(mdp_file), "--temperatures", TEMPS, "--chunk", str(CHUNK)]
    steady += ["--distributed", "--out", str(steady_out)]
    proc = _launch([*argv("fast"), "--then", *steady], 2)
    _, err = _wait(proc)
    assert proc.returncode == 0, err[-3000:]
    assert _rows(err, 0) == len(T) - len(done_T)
    assert _rows(err, 1) == len(T)
    used = _devices_used(err)  # each process computed rows on each of its own devices
    assert sorted(used) == [0, 1], used
    assert all(loc == held == ran for loc, held, ran in used.values()), used
    assert used[0][0].isdisjoint(used[1][0])
    with np.load(out) as z:
        _same(ref, {k: z[k] for k in z.files})
    with np.load(steady_out) as z:
        _same(ref_steady, {k: z[k] for k in z.files})

    # 1 process (this one, no jax.distributed) resumes the same partial checkpoint
    calls: list[int] = []
    inner = sw._rows_for

    def counting(m, temps, *args):
        calls.append(len(temps))
        return inner(m, temps, *args)

    sw._rows_for = counting
    try:
        got = dist.distributed_sweep(mdp, T, horizon=7, x0=0, checkpoint=partial, chunk=CHUNK)
        assert sum(calls) == len(T) - len(done_T)
        _same(ref, got)
        # keyed by temperature: another grid from the finished checkpoint computes nothing
        calls.clear()
        sub = dist.distributed_sweep(mdp, T[::3], horizon=7, x0=0, checkpoint=ckpt, chunk=5)
        assert calls == []
        for k in ("scaled_log_population", "population", "value"):
            np.testing.assert_array_equal(sub[k], ref[k][::3], err_msg=k)
    finally:
        sw._rows_for = inner


def test_damaged_checkpoint_is_refused_by_name(mdp_file, tmp_path):
    mdp, _ = load_mdp(mdp_file)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="checkpoint: .*bad.npz: not a readable sweep checkpoint"):
        dist.distributed_sweep(mdp, [1.0, 0.5], checkpoint=bad)
    good = tmp_path / "good.npz"
    dist.distributed_sweep(mdp, [1.0, 0.5], checkpoint=good)
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["temperatures"] = np.array([1.0, 0.5, 0.25])  # one more temperature than rows
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="checkpoint: .*2 rows for 3 temperatures"):
        dist.distributed_sweep(mdp, [1.0, 0.5], checkpoint=bad)


def test_distributed_without_a_job_is_refused_by_name(mdp_file):
    code = (
        "from quasispecies.cli import main; import sys; "
        f"sys.exit(main(['sweep', {str(mdp_file)!r}, '--temperatures', '1', '--distributed']))"
    )
    env = {
        k: v for k, v in _env().items() if not k.startswith(("JAX_C", "JAX_N", "JAX_PR", "SLURM"))
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2 and "--coordinator: " in proc.stderr, proc.stderr[-2000:]


def test_cluster_from_env_precedence_and_errors():
    env = {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "4", "SLURM_NTASKS": "8"}
    assert dist.cluster_from_env(env=env) == dist.Cluster("h:1", 4, None)
    assert dist.cluster_from_env(env={"SLURM_NTASKS": "8", "SLURM_PROCID": "3"}) == (None, 8, 3)
    assert dist.cluster_from_env("a.b:9", 2, 1, env=env) == ("a.b:9", 2, 1)
    assert dist.cluster_from_env(env={}) == (None, None, None)
    for kw, msg in [
        ({"coordinator": "nohost"}, "coordinator: expected HOST:PORT"),
        ({"coordinator": "h:99999"}, "coordinator: expected HOST:PORT"),
        ({"num_processes": 0}, "num_processes: must be >= 1"),
        ({"num_processes": 2, "process_id": 2}, "process_id: must be < num_processes"),
        ({"process_id": -1}, "process_id: must be >= 0"),
    ]:
        with pytest.raises(ValueError, match=msg):
            dist.cluster_from_env(env={}, **kw)
    with pytest.raises(ValueError, match="SLURM_PROCID: expected an integer"):
        dist.cluster_from_env(env={"SLURM_PROCID": "x"})


def test_launcher_stops_the_job_on_failure_and_on_timeout():
    py = [sys.executable, "-c"]
    fail = "import os, sys, time; i = os.environ['JAX_PROCESS_ID']; time.sleep(60 * (i != '1')); sys.exit(3)"
    t0 = time.monotonic()
    assert dist.launch_local([*py, fail], 3, timeout=50) == 3
    assert dist.launch_local([*py, "import time; time.sleep(60)"], 2, timeout=1.0) == 124
    assert time.monotonic() - t0 < 30  # neither waited for the sleepers
    with pytest.raises(ValueError, match="num_processes"):
        dist.launch_local([*py, "pass"], 0)


def test_local_processes_run_the_same_sweep_distributed(mdp_file):
    """--local-processes N starts N copies of this very sweep with --distributed."""
    from quasispecies.cli import build_parser
    from quasispecies.cli.sweep import _child_argv

    line = ["sweep", str(mdp_file), "--temperatures", TEMPS, "--horizon", "3", "--start", "1"]
    line += ["--chunk", "5", "--out", "o.npz", "--checkpoint", "c.npz", "--json"]
    args = build_parser().parse_args([*line, "--local-processes", "2"])
    child = _child_argv(args)
    assert child[:3] == [sys.executable, "-m", "quasispecies.cli"]
    again = build_parser().parse_args(child[3:])
    assert again.distributed and again.local_processes is None
    for k in ("mdp_file", "temperatures", "horizon", "start", "chunk", "out", "checkpoint", "json"):
        assert getattr(again, k) == getattr(args, k), k


def test_cli_flags_checked_before_any_process_starts(mdp_file, capsys):
    base = ["sweep", str(mdp_file), "--temperatures", "1,0.1"]
    assert main([*base, "--distributed", "--coordinator", "nohost"]) == 2
    assert "--coordinator: expected HOST:PORT" in capsys.readouterr().err
    assert main([*base, "--num-processes", "2"]) == 2
    assert "need --distributed" in capsys.readouterr().err
    assert main([*base, "--local-processes", "0"]) == 2
    assert "--local-processes: must be >= 1" in capsys.readouterr().err
    assert main([*base, "--chunk", "0"]) == 2
