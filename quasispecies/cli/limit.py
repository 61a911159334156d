"""``quasispecies limit``: T log rho vs max cycle mean, path-sum values vs V* and V+, policy
agreement.

The T -> 0 reinforcement-learning limit of selection on an MDP. Per temperature:
T log rho(W_T) against the maximum cycle mean and its bound, T log Z_H from the start
state against Bellman's V*_H and the best-path value V+_H (and the bound), the
agreement of the selected policy with Bellman's optimal actions, and the path entropy.
With --out DIR also limit_report.json and the figures limit_growth.png,
limit_policy.png, limit_gap.png (drawn on a dense temperature grid).
"""

from __future__ import annotations

from quasispecies.cli.options import (
    add_horizon,
    add_json,
    add_mdp_file,
    add_out,
    add_start,
    add_temperatures,
    check_at_least,
    check_start,
    parse_temperatures,
    print_json,
)


def arguments(p) -> None:
    add_mdp_file(p)
    add_temperatures(p, default="1,0.3,0.1,0.03,0.01,0")
    add_horizon(p, default=10)
    add_start(p, default=0, help="start state (default 0)")
    add_out(p, "write limit_report.json and the figures into DIR", metavar="DIR")
    add_json(p)


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from quasispecies.model.files import write_json
    from quasispecies.model.io import load_mdp
    from quasispecies.rl import limit_report

    temps = parse_temperatures(args.temperatures)
    check_at_least(args.horizon, "--horizon", 0)
    mdp, _ = load_mdp(args.mdp_file)
    check_start(args.start, mdp.num_states)
    rep = limit_report(mdp, temps, horizon=args.horizon, start=args.start)
    doc = rep.to_dict()
    if args.out:
        from quasispecies.plot.limit import write_figures

        out = Path(args.out)
        write_json(out / "limit_report.json", doc, indent=1)
        pos = temps[temps > 0]
        lo = float(pos.min()) if pos.size else 1e-3
        hi = float(pos.max()) if pos.size else 10.0
        dense = np.unique(np.concatenate([np.geomspace(min(lo, 1e-3), max(hi, 1.0), 41), pos]))
        fine = limit_report(mdp, dense, horizon=args.horizon, start=args.start)
        name = Path(args.mdp_file).stem
        files = write_figures([(name, fine)], out)
        doc["files"] = [str(out / "limit_report.json"), *map(str, files)]
    if args.json:
        return print_json(doc)
    print(rep.table())
    if args.out:
        print("wrote " + ", ".join(doc["files"]))
    return 0
