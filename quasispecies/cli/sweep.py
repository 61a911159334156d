"""``quasispecies sweep``: stationary growth/population (or finite-horizon path sums) across
temperatures.

Without --horizon: per T the quasispecies of W_T (T log rho, mass on the optimal cycle).
With --horizon H: per T the path sum from --start after H steps (T log n_H, the
path-integral value T log sum n_H, the population x_H). Temperatures run in chunks;
with --checkpoint a killed run resumes where it stopped.

With --distributed the temperatures are split over one mesh of the devices of all the
processes of a jax.distributed job, each process computing its own devices' share
(--coordinator HOST:PORT --num-processes N --process-id I, else JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES, JAX_PROCESS_ID, else SLURM_NTASKS/SLURM_PROCID, else JAX's cluster
detection); process 0 writes --out and --checkpoint (keyed by temperature, so a run
resumes on another process or device count). --local-processes N starts N such processes on
127.0.0.1 (one machine, for trying it out).
"""

from __future__ import annotations

import numpy as np

from quasispecies.cli.options import (
    add_horizon,
    add_json,
    add_mdp_file,
    add_out,
    add_path,
    add_start,
    add_temperatures,
    check_at_least,
    check_start,
    check_suffix,
    flag_errors,
    parse_temperatures,
    print_json,
)


def arguments(p) -> None:
    add_mdp_file(p)
    add_temperatures(p)
    add_horizon(p)
    add_start(p, help="start state (x0 = delta_S); default: the file's x0, else uniform")
    add_out(p, "write all arrays to FILE (.npz or .json)")
    add_path(p, "--checkpoint", "checkpoint (.npz) updated after each chunk; rerun to resume")
    add_json(p)
    p.add_argument("--chunk", type=int, default=32, metavar="K", help="temperatures per chunk")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="split the temperatures over the devices of all processes of a jax.distributed job",
    )
    p.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address (--distributed)")
    p.add_argument("--num-processes", type=int, metavar="N", help="processes in the job")
    p.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1")
    p.add_argument(
        "--local-processes",
        type=int,
        metavar="N",
        help="start N --distributed processes on 127.0.0.1 and wait for them",
    )
    p.add_argument(
        "--launch-timeout",
        type=float,
        metavar="SEC",
        help="with --local-processes: kill the job after SEC seconds (exit 124)",
    )


def _child_argv(args) -> list[str]:
    """The command each of --local-processes runs: this sweep with --distributed."""
    import sys

    argv = [sys.executable, "-m", "quasispecies.cli", "sweep", str(args.mdp_file)]
    argv += ["--temperatures", args.temperatures, "--chunk", str(args.chunk), "--distributed"]
    for flag, v in (
        ("--horizon", args.horizon),
        ("--start", args.start),
        ("--out", args.out),
        ("--checkpoint", args.checkpoint),
    ):
        if v is not None:
            argv += [flag, str(v)]
    return argv + (["--json"] if args.json else [])


def run(args) -> int:
    from quasispecies.dynamics.sweep import save_result, temperature_sweep
    from quasispecies.model.io import load_mdp

    temps = parse_temperatures(args.temperatures)
    if args.horizon is not None:
        check_at_least(args.horizon, "--horizon", 0)
    check_at_least(args.chunk, "--chunk", 1)
    if args.out:
        check_suffix(args.out, "--out", (".npz", ".json"))
    if args.checkpoint:
        check_suffix(args.checkpoint, "--checkpoint", (".npz",))
    if args.local_processes is not None:
        from quasispecies.dynamics.distributed import launch_local

        check_at_least(args.local_processes, "--local-processes", 1)
        if args.launch_timeout is not None and not args.launch_timeout > 0:
            raise ValueError(f"--launch-timeout: must be > 0, got {args.launch_timeout}")
        return launch_local(_child_argv(args), args.local_processes, timeout=args.launch_timeout)
    first = True
    if args.distributed:
        from quasispecies.dynamics import distributed as dist

        names = {"coordinator": "--coordinator", "num_processes": "--num-processes"}
        with flag_errors({**names, "process_id": "--process-id"}):
            cluster = dist.cluster_from_env(args.coordinator, args.num_processes, args.process_id)
            first = dist.initialize(cluster)[0] == 0
        sweep = dist.distributed_sweep
    elif args.coordinator or args.num_processes is not None or args.process_id is not None:
        raise ValueError("--coordinator/--num-processes/--process-id: need --distributed")
    else:
        sweep = temperature_sweep
    mdp, file_x0 = load_mdp(args.mdp_file)
    x0 = file_x0 if args.start is None else check_start(args.start, mdp.num_states)
    res = sweep(
        mdp, temps, horizon=args.horizon, x0=x0, checkpoint=args.checkpoint, chunk=args.chunk
    )
    if not first:  # process 0 writes and prints for the job
        return 0
    if args.out:
        save_result(args.out, res)
    if args.json:
        return print_json(res)

    def top_state(i: int) -> str:
        top = int(np.argmax(res["population"][i]))
        name = mdp.labels[top] if mdp.labels is not None else top
        return f"{name} ({res['population'][i, top]:.3f})"

    if args.horizon is None:
        print(f"max cycle mean (max-plus eigenvalue) = {res['max_cycle_mean']:.6g}")
        print(f"{'T':>10}  {'T log rho':>12}  {'mass on best cycle':>18}  top state")
        for i, T in enumerate(res["temperatures"]):
            print(
                f"{T:>10.4g}  {res['scaled_log_growth'][i]:>12.6f}  "
                f"{res['critical_mass'][i]:>18.6f}  {top_state(i)}"
            )
    else:
        print(f"horizon H = {args.horizon}")
        print(f"{'T':>10}  {'T log sum n_H':>14}  top state")
        for i, T in enumerate(res["temperatures"]):
            print(f"{T:>10.4g}  {res['value'][i]:>14.6f}  {top_state(i)}")
    if args.out:
        print(f"wrote {args.out}")
    return 0
