"""``quasispecies demo``: survival of the flattest -> RL on a built-in grid world; table +
figures.

Stationary quasispecies of a 7x9 grid world with a sharp peak (reward 1) and a flat
plateau (reward 0.75) across temperatures. Prints a table per T (T, T log rho, the
max-plus value, mass on the best cycle, mass on the plateau) and writes
population_vs_temperature.png and grid_population.png.
"""

from __future__ import annotations

from quasispecies.cli.options import add_json, add_out, print_json


def arguments(p) -> None:
    add_out(p, "directory for the figures (default: figures)", default="figures", metavar="DIR")
    add_json(p)


def run(args) -> int:
    from quasispecies.experiments.demo import run_demo

    res = run_demo(args.out)
    if args.json:
        return print_json(res)
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
