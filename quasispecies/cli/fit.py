"""``quasispecies fit``: infer the rewards that make an observed population (qs.fit_rewards).

Reads the MDP's structure (K = pi0 P; its rewards are ignored) from MDP_FILE and an
observed population over its states from --population (.json: a list, or an object
with a "population" list; .npy; .csv/.txt: one number per line or per comma), then
fits rewards R with selection at --temperature T producing it: stationary by default,
or after --horizon H steps from --start S (else the file's x0, else state 0). Prints
the fitted rewards, the objective, whether it is convex, and the gauge the data leave
open; --out FILE writes them (and the loss history) as JSON.
"""

from __future__ import annotations

from pathlib import Path

from quasispecies.cli.options import (
    add_horizon,
    add_json,
    add_mdp_file,
    add_out,
    add_start,
    add_temperature,
    check_at_least,
    check_start,
    check_suffix,
    flag_errors,
    print_json,
)

POPULATION_SUFFIXES = (".json", ".npy", ".csv", ".txt")


def arguments(p) -> None:
    add_mdp_file(p)
    p.add_argument(
        "--population",
        required=True,
        metavar="FILE",
        help="observed population over the states (" + ", ".join(POPULATION_SUFFIXES) + ")",
    )
    add_temperature(p)
    add_horizon(p, help="fit a horizon-H population instead of a stationary one")
    add_start(p, help="start state for --horizon (default: the file's x0, else state 0)")
    p.add_argument(
        "--rewards",
        choices=("state", "transition"),
        default="state",
        help="fit r(s') on arrival (default; convex when stationary) or one reward per transition",
    )
    p.add_argument(
        "--weighting",
        choices=("uniform", "observed"),
        default="uniform",
        help="uniform over observed states (default) or by observed mass (KL, likelihood)",
    )
    p.add_argument("--max-steps", type=int, default=500, metavar="N", help="L-BFGS steps (500)")
    add_out(p, "write the fit as JSON to FILE (atomically)")
    add_json(p)


def read_population(path) -> list[float]:
    """The numbers in a population file; ``ValueError`` naming ``--population`` otherwise."""
    import json

    import numpy as np

    path = check_suffix(path, "--population", POPULATION_SUFFIXES, ignore_case=True)
    if not path.is_file():
        raise ValueError(f"--population: {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            doc = json.loads(path.read_text())
            if isinstance(doc, dict):
                if "population" not in doc:
                    raise ValueError('a JSON object needs a "population" list')
                doc = doc["population"]
            values = np.asarray(doc, dtype=np.float64)
        elif suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            text = path.read_text().replace(",", " ")
            values = np.array([float(t) for t in text.split()], dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
    except (OSError, ValueError, TypeError, UnicodeDecodeError) as err:
        raise ValueError(f"--population: {path} is not a readable population ({err})") from None
    if values.ndim != 1:
        raise ValueError(f"--population: expected a 1-D list of numbers, got shape {values.shape}")
    return values.tolist()


def run(args) -> int:
    import numpy as np

    from quasispecies.model.files import write_json
    from quasispecies.model.io import load_mdp
    from quasispecies.selection.fit import fit_rewards

    if args.horizon is not None:
        check_at_least(args.horizon, "--horizon", 1)
    check_at_least(args.max_steps, "--max-steps", 1)
    if args.out:
        check_suffix(args.out, "--out", (".json",), ignore_case=True)
    mdp, file_x0 = load_mdp(args.mdp_file)
    observed = read_population(args.population)
    x0: int | np.ndarray | None = None
    if args.horizon is not None:
        if args.start is not None:
            x0 = check_start(args.start, mdp.num_states)
        else:
            x0 = 0 if file_x0 is None else file_x0
    names = {
        "observed_population": "--population",
        "T": "--temperature",
        "horizon": "--horizon",
        "max_steps": "--max-steps",
    }
    with flag_errors(names):
        fit = fit_rewards(
            mdp,
            observed,
            args.temperature,
            horizon=args.horizon,
            x0=x0,
            rewards=args.rewards,
            weighting=args.weighting,
            max_steps=args.max_steps,
        )
    doc = {
        "mdp_file": str(Path(args.mdp_file)),
        "population_file": str(Path(args.population)),
        "temperature": fit.temperature,
        "horizon": fit.horizon,
        "parametrisation": args.rewards,
        "weighting": args.weighting,
        "rewards": np.asarray(fit.rewards).tolist(),
        "loss": fit.loss,
        "loss_history": np.asarray(fit.loss_history).tolist(),
        "converged": fit.converged,
        "iterations": fit.iterations,
        "convex": fit.convex,
        "objective": fit.objective,
        "gauge": fit.gauge,
    }
    if args.out:
        write_json(args.out, doc, indent=1)
    if args.json:
        return print_json(doc)
    print(f"objective: {fit.objective}")
    print(
        f"loss {fit.loss:.3e} after {fit.iterations} L-BFGS steps "
        f"({'converged' if fit.converged else 'NOT converged'}; "
        f"{'convex' if fit.convex else 'not convex'})"
    )
    print(f"gauge: {fit.gauge}")
    r = np.asarray(fit.rewards)
    if r.ndim == 1:
        print("state  reward")
        for s, v in enumerate(r.tolist()):
            print(f"{s:5d}  {v: .6f}")
    else:
        print(f"rewards: shape {r.shape} (see --out or --json for the values)")
    if args.out:
        print(f"wrote {args.out}")
    return 0
