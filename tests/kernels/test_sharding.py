"""Sharded sweeps and state vectors agree exactly with one device.

``--xla_force_host_platform_device_count`` only takes effect before JAX initialises its
backends, so each check runs in a fresh interpreter with 4 CPU devices.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import jax
    import numpy as np

    import quasispecies as qs
    from quasispecies.kernels import pull
    from quasispecies.kernels import sharding
    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    S, A = 600, 3
    det = qs.MDP.from_transitions(rng.integers(0, S, (S, A)), rng.standard_normal((S, A)))
    ns = rng.integers(0, S, (S, A, 2))
    ns[:, 0, 0] = 0  # a sink with in-degree > 32: the segment-reduction tail
    sto = qs.MDP.from_successors(ns, rng.dirichlet(np.ones(2), (S, A)), rng.random((S, A)))
    temps = np.array([4.0, 1.0, 0.3, 0.05, 1e-3, 1e-8, 0.0])  # 7: uneven over 4 devices
    x0 = rng.dirichlet(np.ones(S))
    for mdp in (det, sto):
        ref = pull.horizon(mdp, temps, 25, x0)
        assert set(ref.kernel) == {"linear", "log", "pair"}, ref.kernel
        for m in (sharding.mesh(), sharding.mesh(jax.devices()[:1])):
            u, x = sharding.sweep_over_devices(mdp, temps, 25, x0, mesh=m)
            np.testing.assert_array_equal(u, ref.u)
            np.testing.assert_array_equal(x, ref.x)
        for i, T in enumerate(temps):
            for start in (x0, 3):
                want = pull.horizon(mdp, [T], 25, np.eye(S)[3] if isinstance(start, int) else x0)
                u, x = sharding.horizon_over_devices(mdp, T, 25, start)
                np.testing.assert_array_equal(u, want.u[0])
                # x is softmax(u / T) formed on the host from the (bitwise equal) u, while
                # the single-device kernel normalises n itself: the two differ by the
                # rounding of u (eps |u|) amplified by 1 / T, a few eps at T = 1 and
                # ~1e-6 relative at T = 1e-8.
                fin = np.isfinite(u)
                amp = np.max(np.abs(u[fin])) / T if T > 0 else 1.0
                rtol = 8 * np.finfo(float).eps * max(amp, 1.0)
                np.testing.assert_allclose(x, want.x[0], rtol=rtol, atol=1e-300)
    # the public API (pull form from PULL_MIN_STATES states on) agrees with both
    u = qs.scaled_log_population(det, temps, 25, x0, layout="pull")
    np.testing.assert_array_equal(u, sharding.sweep_over_devices(det, temps, 25, x0)[0])
    # rows_over_devices: a host row maker, items laid out evenly over the mesh, each shard
    # computed under its own device (uneven 7 over 4, fewer items than devices, 1 device)
    import jax.numpy as jnp
    seen = []
    def fn(v):
        dev = jax.config.jax_default_device
        seen.append((dev.id, len(v)))
        y = jnp.asarray(v) * 2.0  # exact, and JAX work placed on the shard's device
        assert y.devices() == {dev}, (y.devices(), dev)
        return np.stack([v, np.asarray(y), np.sin(v)], axis=1)
    for K, m in ((7, sharding.mesh()), (3, sharding.mesh()), (5, sharding.mesh(jax.devices()[:1]))):
        vals = np.linspace(-1.0, 2.0, K)
        seen.clear()
        g = sharding.rows_over_devices(fn, vals, 3, mesh=m)
        assert {s.device for s in g.addressable_shards} == set(m.devices.flat)
        got, at = sharding.fetch(g), sharding.rows_order(K, m)
        assert sorted(at[at >= 0]) == list(range(K)) and np.isnan(got[at < 0]).all()
        want = np.stack([vals, 2.0 * vals, np.sin(vals)], axis=1)
        np.testing.assert_array_equal(got[at >= 0], want[at[at >= 0]])
        parts = [len(p) for p in np.array_split(np.arange(K), m.devices.size)]
        assert sorted(n for _, n in seen) == sorted(n for n in parts if n), seen
        busy = {d.id for d, n in zip(m.devices.flat, parts) if n}
        assert {d for d, _ in seen} == busy and len(busy) == min(K, m.devices.size), seen
    print("SHARDING-OK")
    """
)


def test_sharded_results_equal_single_device_exactly():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0 and "SHARDING-OK" in proc.stdout, proc.stderr[-4000:]


def test_rows_over_devices_refuses_bad_input_by_name():
    import numpy as np
    import pytest

    from quasispecies.kernels import sharding

    with pytest.raises(ValueError, match="values: expected a 1-D array"):
        sharding.rows_over_devices(lambda v: v[:, None], np.zeros((2, 2)), 1)
    with pytest.raises(ValueError, match=r"fn: returned shape \(3, 1\), expected \(3, 2\)"):
        sharding.rows_over_devices(lambda v: v[:, None], np.zeros(3), 2)
    with pytest.raises(ValueError, match="width: must be >= 1"):
        sharding.rows_over_devices(lambda v: v[:, None], np.zeros(3), 0)
