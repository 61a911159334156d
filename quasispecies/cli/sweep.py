"""``quasispecies sweep``: stationary growth/population (or finite-horizon path sums) across
temperatures.

Without --horizon: per T the quasispecies of W_T (T log rho, mass on the optimal cycle).
With --horizon H: per T the path sum from --start after H steps (T log n_H, the
path-integral value T log sum n_H, the population x_H). Temperatures run in chunks;
with --checkpoint a killed run resumes where it stopped.
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


def run(args) -> int:
    from quasispecies.dynamics.sweep import save_result, temperature_sweep
    from quasispecies.model.io import load_mdp

    temps = parse_temperatures(args.temperatures)
    if args.horizon is not None:
        check_at_least(args.horizon, "--horizon", 0)
    if args.out:
        check_suffix(args.out, "--out", (".npz", ".json"))
    if args.checkpoint:
        check_suffix(args.checkpoint, "--checkpoint", (".npz",))
    mdp, file_x0 = load_mdp(args.mdp_file)
    x0 = file_x0 if args.start is None else check_start(args.start, mdp.num_states)
    res = temperature_sweep(mdp, temps, horizon=args.horizon, x0=x0, checkpoint=args.checkpoint)
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
