"""``quasispecies demo``: the derivation on the built-in grid world."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="survival of the flattest -> RL on a built-in grid world; table + figures",
        description=(
            "Stationary quasispecies of a 7x9 grid world with a sharp peak (reward 1) and a flat "
            "plateau (reward 0.75) across temperatures. Prints a table per T (T, T log rho, the "
            "max-plus value, mass on the best cycle, mass on the plateau) and writes "
            "population_vs_temperature.png and grid_population.png."
        ),
    )
    p.add_argument(
        "--out",
        default="figures",
        metavar="DIR",
        help="directory for the figures (default: figures)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def run(args) -> int:
    from quasispecies.experiments.demo import run_demo

    res = run_demo(args.out)
    if args.json:
        print(json.dumps(res))
        return 0
    print(
        "Quasispecies on a 7x9 grid: peak (1, 7) reward 1, plateau 3x3 reward 0.75, step cost 0.1"
    )
    print(f"max-plus eigenvalue (max cycle mean) mu* = {res['max_cycle_mean']:.6g}")
    print(
        f"{'T':>8}  {'T log rho':>11}  {'max-plus':>9}  {'mass on best cycle':>18}  {'mass on plateau':>15}"
    )
    for r in res["table"]:
        print(
            f"{r['T']:>8.3g}  {r['T_log_rho']:>11.6f}  {r['max_plus_value']:>9.4f}  "
            f"{r['mass_on_best_cycle']:>18.6f}  {r['mass_on_plateau']:>15.6f}"
        )
    if res["crossover_temperature"] is not None:
        print(f"plateau -> peak crossover at T* ~ {res['crossover_temperature']:.3g}")
    for f in res["figures"]:
        print(f"wrote {f}")
    return 0
