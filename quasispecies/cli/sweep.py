"""``quasispecies sweep``: stationary or finite-horizon quantities over temperatures."""

from __future__ import annotations

import json

import numpy as np


def parse_temperatures(text: str) -> np.ndarray:
    """``1,0.1,0`` or ``geom:LO:HI:N`` (log-spaced) or ``lin:LO:HI:N``."""
    text = text.strip()
    try:
        if text.startswith(("geom:", "lin:")):
            kind, lo_text, hi_text, n_text = text.split(":")
            lo, hi, n = float(lo_text), float(hi_text), int(n_text)
            if n < 1:
                raise ValueError
            if kind == "geom":
                if lo <= 0 or hi <= 0:
                    raise ValueError
                return np.geomspace(lo, hi, n)
            return np.linspace(lo, hi, n)
        vals = np.array([float(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise ValueError(
            f"--temperatures: cannot parse {text!r} (use 1,0.1,0 or geom:LO:HI:N)"
        ) from None
    if vals.size == 0:
        raise ValueError("--temperatures: no temperature given")
    return vals


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="stationary growth/population (or finite-horizon path sums) across temperatures",
        description=(
            "Without --horizon: per T the quasispecies of W_T (T log rho, mass on the optimal cycle). "
            "With --horizon H: per T the path sum from --start after H steps (T log n_H, the "
            "path-integral value T log sum n_H, the population x_H)."
        ),
    )
    p.add_argument("mdp_file", metavar="MDP_FILE", help=".npz, .json, .csv, .jsonl or .parquet")
    p.add_argument(
        "--temperatures", required=True, help="comma list (1,0.1,0.01,0) or geom:LO:HI:N"
    )
    p.add_argument("--horizon", type=int, default=None, metavar="H", help="finite horizon H")
    p.add_argument(
        "--start",
        type=int,
        default=None,
        metavar="S",
        help="start state (x0 = delta_S); default: the file's x0, else uniform",
    )
    p.add_argument(
        "--out", default=None, metavar="FILE", help="write all arrays to FILE (.npz or .json)"
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="checkpoint (.npz) updated after each chunk; rerun to resume",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def run(args) -> int:
    from quasispecies.dynamics.sweep import save_result, temperature_sweep
    from quasispecies.model.files import jsonable
    from quasispecies.model.io import load_mdp

    temps = parse_temperatures(args.temperatures)
    mdp, x0 = load_mdp(args.mdp_file)
    if args.start is not None:
        if not 0 <= args.start < mdp.num_states:
            raise ValueError(f"--start: state {args.start} is outside [0, {mdp.num_states})")
        x0 = args.start
    if args.horizon is not None and args.horizon < 0:
        raise ValueError(f"--horizon: must be >= 0, got {args.horizon}")
    res = temperature_sweep(mdp, temps, horizon=args.horizon, x0=x0, checkpoint=args.checkpoint)
    if args.out:
        save_result(args.out, res)
    if args.json:
        print(json.dumps({k: jsonable(v) for k, v in res.items()}))
        return 0
    labels = mdp.labels
    if args.horizon is None:
        print(f"max cycle mean (max-plus eigenvalue) = {res['max_cycle_mean']:.6g}")
        print(f"{'T':>10}  {'T log rho':>12}  {'mass on best cycle':>18}  top state")
        for i, T in enumerate(res["temperatures"]):
            top = int(np.argmax(res["population"][i]))
            name = labels[top] if labels is not None else top
            print(
                f"{T:>10.4g}  {res['scaled_log_growth'][i]:>12.6f}  {res['critical_mass'][i]:>18.6f}  "
                f"{name} ({res['population'][i, top]:.3f})"
            )
    else:
        print(f"horizon H = {args.horizon}")
        print(f"{'T':>10}  {'T log sum n_H':>14}  top state")
        for i, T in enumerate(res["temperatures"]):
            top = int(np.argmax(res["population"][i]))
            name = labels[top] if labels is not None else top
            print(f"{T:>10.4g}  {res['value'][i]:>14.6f}  {name} ({res['population'][i, top]:.3f})")
    if args.out:
        print(f"wrote {args.out}")
    return 0
