"""``quasispecies paths``: the K heaviest paths at temperature T, path count, T log Z and path
entropy.

The population after H steps is a sum over paths weighted by x0 * prod K * exp(G / T).
Prints the K heaviest paths (k-best dynamic programme, no enumeration), the number of
paths, T log Z, the entropy and E[G] of the path distribution, and the Bellman and
best-path values V*_H, V+_H of the start state. --out streams every path to a file.
"""

from __future__ import annotations

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
    print_json,
)


def arguments(p) -> None:
    add_mdp_file(p)
    add_temperature(p)
    add_horizon(p, required=True, help="number of steps H")
    add_start(p, help="start state (x0 = delta_S); default: the file's x0, else state 0")
    p.add_argument("--top", type=int, default=10, metavar="K", help="how many paths (default 10)")
    add_out(p, "stream every path to FILE (.csv or .jsonl), written atomically")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for --out")
    add_json(p, help="print one JSON object on stdout instead of the tables")


def _write_all(path, mdp, T, H, x0, progress: bool) -> int:
    from pathlib import Path

    from quasispecies.model.files import atomic_write, dump_json
    from quasispecies.paths import iter_chunks

    path = Path(path)
    suffix = path.suffix.lower()
    n = 0
    with atomic_write(path, "w") as fh:
        if suffix == ".csv":
            fh.write("index,states,actions,log_weight,reward,log_prior\n")
        for chunk in iter_chunks(mdp, T, H, x0, progress=progress):
            for i in range(chunk.states.shape[0]):
                states = " ".join(map(str, chunk.states[i].tolist()))
                actions = " ".join(map(str, chunk.actions[i].tolist()))
                lw, g, lp = (
                    float(chunk.log_weight[i]),
                    float(chunk.reward[i]),
                    float(chunk.log_prior[i]),
                )
                if suffix == ".csv":
                    fh.write(f"{n},{states},{actions},{lw!r},{g!r},{lp!r}\n")
                else:
                    fh.write(
                        dump_json(
                            {
                                "index": n,
                                "states": chunk.states[i].tolist(),
                                "actions": chunk.actions[i].tolist(),
                                "log_weight": lw,
                                "reward": g,
                                "log_prior": lp,
                            }
                        )
                        + "\n"
                    )
                n += 1
    return n


def run(args) -> int:
    import sys

    import numpy as np

    from quasispecies.model.io import load_mdp
    from quasispecies.model.validate import check_temperature
    from quasispecies.paths import num_paths, path_probability, top_k, trajectory_stats
    from quasispecies.rl import finite_horizon_values

    T = float(check_temperature(args.temperature, "--temperature")[0])
    check_at_least(args.horizon, "--horizon", 0)
    check_at_least(args.top, "--top", 1)
    if args.out:
        check_suffix(args.out, "--out", (".csv", ".jsonl"), ignore_case=True)
    mdp, file_x0 = load_mdp(args.mdp_file)
    x0: int | np.ndarray
    if args.start is not None:
        x0 = check_start(args.start, mdp.num_states)
    elif file_x0 is None:
        x0 = 0
    elif np.count_nonzero(file_x0) == 1:
        x0 = int(np.flatnonzero(file_x0)[0])  # a point mass: report it as a start state
    else:
        x0 = file_x0
    H = args.horizon
    stats = trajectory_stats(mdp, T, H, x0)
    best = top_k(mdp, T, H, args.top, x0)
    count = num_paths(mdp, H, x0)
    logZ = float(stats.scaled_log_partition)
    prob = path_probability(best, stats, T)
    doc = {
        "temperature": T,
        "horizon": H,
        "start": x0 if isinstance(x0, int) else None,
        "x0": None if isinstance(x0, int) else np.asarray(x0).tolist(),
        "num_paths": count,
        "scaled_log_partition": logZ,
        "entropy": float(stats.entropy),
        "expected_return": float(stats.expected_return),
        "kl_from_prior": float(stats.kl_from_prior),
        "top": [
            {
                "states": best.states[i].tolist(),
                "actions": best.actions[i].tolist(),
                "log_weight": float(best.log_weight[i]),
                "reward": float(best.reward[i]),
                "probability": float(prob[i]),
            }
            for i in range(best.states.shape[0])
        ],
    }
    if isinstance(x0, int):
        vals = finite_horizon_values(mdp, H)
        doc["expected_value"] = float(vals.expected[x0])
        doc["optimistic_value"] = float(vals.optimistic[x0])
    if args.out:
        progress = not (args.no_progress or args.json) and sys.stderr.isatty()
        doc["written"] = _write_all(args.out, mdp, T, H, x0, progress)
        doc["out"] = str(args.out)
    if args.json:
        return print_json(doc)
    print(
        f"T = {T:g}, horizon H = {H}, start = {doc['start'] if doc['start'] is not None else 'x0'}"
    )
    print(
        f"paths: {count}   T log Z = {logZ:.6f}   entropy = {doc['entropy']:.4f} nats   "
        f"E[G] = {doc['expected_return']:.6f}"
    )
    if "expected_value" in doc:
        print(
            f"V*_H = {doc['expected_value']:.6f} (Bellman)   V+_H = {doc['optimistic_value']:.6f} "
            "(best path)"
        )
    print(f"{'rank':>4}  {'probability':>11}  {'G':>10}  {'log weight':>12}  states / actions")
    for i, row in enumerate(doc["top"]):
        print(
            f"{i + 1:>4}  {row['probability']:>11.4g}  {row['reward']:>10.5f}  "
            f"{row['log_weight']:>12.5g}  {row['states']} / {row['actions']}"
        )
    if args.out:
        print(f"wrote {doc['written']} paths to {args.out}")
    return 0
