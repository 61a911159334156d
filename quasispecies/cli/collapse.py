"""``quasispecies collapse``: mode collapse: entropy of p0*exp(r/beta) against 1/beta,
re-heating, attractors.

Tilts a distribution by a reward (the KL-regularised RL optimum) over a sweep of
strengths 1/beta and re-samples it at temperatures tau. Domains: a Zipf prior with a
Gaussian reward, an MDP's path distribution (tilt by the return at 1/T), and with
--lm [SPEC] an LM's token tree tilted by its self-evaluation reward (sequence and token
level; SPEC: embedded, the default of a bare --lm | gguf:PATH | hf:PATH |
http://HOST:PORT/v1[#MODEL]). Writes collapse.json and the figures collapse_entropy.png,
collapse_attractor.png.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quasispecies.cli import base_tuned
from quasispecies.cli.options import (
    add_horizon,
    add_json,
    add_lm,
    add_out,
    add_path,
    add_start,
    check_at_least,
    check_start,
    flag_errors,
    load_lm_flag,
    parse_grid,
    print_json,
)


def arguments(p) -> None:
    p.add_argument("--n", type=int, default=1000, help="outcomes of the Zipf prior (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Gaussian reward (default 0)")
    add_path(
        p,
        "--mdp",
        "MDP for the path panel (.npz/.json/table); default a 3x4 grid world",
        metavar="MDP_FILE",
    )
    add_horizon(p, default=6, help="path horizon")
    add_start(p, help="start state for --mdp (default: the file's x0, else state 0)")
    add_lm(
        p,
        optional=True,
        help="add the LM token-tree panel on model SPEC: embedded (a bare --lm) | gguf:PATH "
        "| hf:PATH | http://HOST:PORT/v1[#MODEL]",
    )
    p.add_argument(
        "--question",
        default="Name a large animal that lives in Africa.",
        help="question whose answers form the token tree (with --lm)",
    )
    p.add_argument("--depth", type=int, default=3, help="token-tree depth (with --lm, default 3)")
    p.add_argument(
        "--top-k", type=int, default=4, help="tokens kept per node (with --lm, default 4)"
    )
    p.add_argument(
        "--strengths",
        default=None,
        metavar="GRID",
        help="tilt strengths 1/beta >= 0, e.g. geom:0.02:50:36 (0 is always added)",
    )
    p.add_argument(
        "--taus",
        default="0.5,1,1.5,2,3",
        metavar="GRID",
        help="re-heating temperatures > 0 (default 0.5,1,1.5,2,3; 1 is always added)",
    )
    base_tuned.arguments(p)
    add_out(p, "figure directory (default figures)", default="figures", metavar="DIR")
    add_path(p, "--data", "JSON result file (default DIR/collapse.json)")
    add_json(p)


def run(args) -> int:
    from quasispecies.experiments import collapse_study as cs
    from quasispecies.model.files import write_json
    from quasispecies.model.io import load_mdp
    from quasispecies.plot.selection import collapse_attractor_figure, collapse_entropy_figure

    if args.base is not None or args.tuned is not None or args.prompts is not None:
        return base_tuned.run(args)  # --base/--tuned/--prompts: base vs tuned
    check_at_least(args.n, "--n", 2)
    check_at_least(args.seed, "--seed", 0)
    check_at_least(args.horizon, "--horizon", 1)
    lm = None
    if args.lm is not None:
        check_at_least(args.depth, "--depth", 1)
        check_at_least(args.top_k, "--top-k", 1)
        lm = load_lm_flag(args.lm)  # a bad --lm is refused before any work
    strengths = cs.DEFAULT_STRENGTHS
    if args.strengths is not None:
        grid = parse_grid(args.strengths, "--strengths", example="0.5,1,3")
        if (grid < 0).any():
            raise ValueError(f"--strengths: must be >= 0, got {float(grid[grid < 0][0])!r}")
        strengths = np.unique(np.concatenate([[0.0], grid]))
    taus = parse_grid(args.taus, "--taus", example="0.5,1,3")
    if (taus <= 0).any():
        raise ValueError(f"--taus: must be > 0, got {float(taus[taus <= 0][0])!r}")
    if 1.0 not in taus:
        taus = np.sort(np.append(taus, 1.0))
    study: dict = {"distribution": cs.distribution_study(args.n, args.seed, strengths, taus)}
    if args.mdp is None:
        study["paths"] = cs.paths_study(None, args.horizon, None, strengths, taus)
    else:
        mdp, x0 = load_mdp(args.mdp)
        if args.start is not None:
            x0 = np.eye(mdp.num_states)[check_start(args.start, mdp.num_states)]
        study["paths"] = cs.paths_study(mdp, args.horizon, x0, strengths, taus)
    if lm is not None:
        with flag_errors({"depth": "--depth", "top_k": "--top-k"}):
            study["lm_tree"] = cs.lm_tree_study(
                lm, args.question, args.depth, args.top_k, strengths, taus
            )
    study["attractor"] = cs.attractor_study()
    out = Path(args.out)
    data = Path(args.data) if args.data else out / "collapse.json"
    rows = cs.summary_rows(study)
    write_json(data, {"study": study, "summary": rows})
    figs = [
        str(collapse_entropy_figure(study, out / "collapse_entropy.png")),
        str(collapse_attractor_figure(study, out / "collapse_attractor.png")),
    ]
    if args.json:
        return print_json({"summary": rows, "data": str(data), "figures": figs})
    print(
        f"{'domain':<13}{'1/beta':>9}{'H':>9}{'exp(H)':>11}{'H@tau=3':>10}{'base@3':>9}{'deficit':>9}"
    )
    for r in rows:
        print(
            f"{r['domain']:<13}{r['strength']:>9.3g}{r['entropy']:>9.4f}{r['perplexity']:>11.4g}"
            f"{r['reheated_entropy']:>10.4f}{r['base_entropy_at_tau']:>9.4f}{r['deficit']:>9.4f}"
        )
    if "lm_tree" in study:
        top = study["lm_tree"]["top_leaves"]
        for lam, leaves in top.items():
            best = ", ".join(f"{d['text']!r} ({d['p']:.2f})" for d in leaves[:3])
            print(f"LM tree, 1/beta = {lam}: {best}")
    print(f"wrote {data}")
    for f in figs:
        print(f"wrote {f}")
    return 0
