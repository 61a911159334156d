"""``quasispecies limit``: the T -> 0 reinforcement-learning limit of selection on an MDP."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser(
        "limit",
        help="T log rho vs max cycle mean, path-sum values vs V* and V+, policy agreement",
        description=(
            "Per temperature: T log rho(W_T) against the maximum cycle mean and its bound, T log Z_H "
            "from the start state against Bellman's V*_H and the best-path value V+_H (and the "
            "bound), the agreement of the selected policy with Bellman's optimal actions, and the "
            "path entropy. With --out DIR also limit_report.json and the figures limit_growth.png, "
            "limit_policy.png, limit_gap.png (drawn on a dense temperature grid)."
        ),
    )
    p.add_argument("mdp_file", metavar="MDP_FILE", help=".npz, .json, .csv, .jsonl or .parquet")
    p.add_argument(
        "--temperatures",
        default="1,0.3,0.1,0.03,0.01,0",
        help="comma list (1,0.1,0.01,0) or geom:LO:HI:N (default 1,0.3,0.1,0.03,0.01,0)",
    )
    p.add_argument("--horizon", type=int, default=10, metavar="H", help="finite horizon (10)")
    p.add_argument("--start", type=int, default=0, metavar="S", help="start state (0)")
    p.add_argument("--out", default=None, metavar="DIR", help="write the report and figures here")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from quasispecies.cli.sweep import parse_temperatures
    from quasispecies.model.io import atomic_write, load_mdp
    from quasispecies.rl.core import limit_report

    temps = parse_temperatures(args.temperatures)
    mdp, _ = load_mdp(args.mdp_file)
    if args.horizon < 0:
        raise ValueError(f"--horizon: must be >= 0, got {args.horizon}")
    if not 0 <= args.start < mdp.num_states:
        raise ValueError(f"--start: state {args.start} is outside [0, {mdp.num_states})")
    if (temps < 0).any():
        raise ValueError(f"--temperatures: must be >= 0, got {float(temps[temps < 0][0])!r}")
    rep = limit_report(mdp, temps, horizon=args.horizon, start=args.start)
    doc = rep.to_dict()
    if args.out:
        from quasispecies.plot.limit import write_figures

        out = Path(args.out)
        with atomic_write(out / "limit_report.json", "w") as fh:
            json.dump(doc, fh, indent=1)
        pos = temps[temps > 0]
        lo = float(pos.min()) if pos.size else 1e-3
        hi = float(pos.max()) if pos.size else 10.0
        dense = np.unique(np.concatenate([np.geomspace(min(lo, 1e-3), max(hi, 1.0), 41), pos]))
        fine = limit_report(mdp, dense, horizon=args.horizon, start=args.start)
        name = Path(args.mdp_file).stem
        files = write_figures([(name, fine)], out)
        doc["files"] = [str(out / "limit_report.json"), *map(str, files)]
    if args.json:
        print(json.dumps(doc))
        return 0
    print(rep.table())
    if args.out:
        print("wrote " + ", ".join(doc["files"]))
    return 0
