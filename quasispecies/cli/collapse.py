"""``quasispecies collapse``: entropy against tilt strength, with re-heating, in three domains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def parse_grid(text: str, flag: str) -> np.ndarray:
    """``0.5,1,3`` or ``geom:LO:HI:N`` (log-spaced) or ``lin:LO:HI:N``."""
    text = text.strip()
    try:
        if text.startswith(("geom:", "lin:")):
            kind, lo, hi, n = text.split(":")
            lo_f, hi_f, n_i = float(lo), float(hi), int(n)
            if n_i < 1 or (kind == "geom" and (lo_f <= 0 or hi_f <= 0)):
                raise ValueError
            return np.geomspace(lo_f, hi_f, n_i) if kind == "geom" else np.linspace(lo_f, hi_f, n_i)
        vals = np.array([float(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise ValueError(f"{flag}: cannot parse {text!r} (use 0.5,1,3 or geom:LO:HI:N)") from None
    if vals.size == 0:
        raise ValueError(f"{flag}: no value given")
    return vals


def register(sub) -> None:
    p = sub.add_parser(
        "collapse",
        help="mode collapse: entropy of p0*exp(r/beta) against 1/beta, re-heating, attractors",
        description=(
            "Tilts a distribution by a reward (the KL-regularised RL optimum) over a sweep of "
            "strengths 1/beta and re-samples it at temperatures tau. Domains: a Zipf prior with a "
            "Gaussian reward, an MDP's path distribution (tilt by the return at 1/T), and with --lm "
            "the embedded LM's token tree tilted by its self-evaluation reward (sequence and token "
            "level). Writes collapse.json and the figures collapse_entropy.png, collapse_attractor.png."
        ),
    )
    p.add_argument("--n", type=int, default=1000, help="outcomes of the Zipf prior (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Gaussian reward (default 0)")
    p.add_argument(
        "--mdp",
        default=None,
        metavar="MDP_FILE",
        help="MDP for the path panel (.npz/.json/table); default a 3x4 grid world",
    )
    p.add_argument("--horizon", type=int, default=6, help="path horizon (default 6)")
    p.add_argument(
        "--start",
        type=int,
        default=None,
        metavar="S",
        help="start state for --mdp (default: the file's x0, else state 0)",
    )
    p.add_argument(
        "--lm", action="store_true", help="add the LM token-tree panel (loads the embedded LM)"
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
        help="tilt strengths 1/beta, e.g. geom:0.02:50:36 (0 is always added)",
    )
    p.add_argument(
        "--taus",
        default="0.5,1,1.5,2,3",
        metavar="GRID",
        help="re-heating temperatures (default 0.5,1,1.5,2,3)",
    )
    p.add_argument(
        "--out", default="figures", metavar="DIR", help="figure directory (default figures)"
    )
    p.add_argument(
        "--data", default=None, metavar="FILE", help="JSON result file (default DIR/collapse.json)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def run(args) -> int:
    from quasispecies.experiments import collapse_study as cs
    from quasispecies.model.io import atomic_write, load_mdp
    from quasispecies.plot.selection import collapse_attractor_figure, collapse_entropy_figure

    if args.n < 2:
        raise ValueError(f"--n: need at least 2 outcomes, got {args.n}")
    if args.horizon < 1:
        raise ValueError(f"--horizon: must be >= 1, got {args.horizon}")
    strengths = (
        cs.DEFAULT_STRENGTHS
        if args.strengths is None
        else np.unique(np.concatenate([[0.0], parse_grid(args.strengths, "--strengths")]))
    )
    if (strengths < 0).any():
        raise ValueError("--strengths: must be >= 0")
    taus = parse_grid(args.taus, "--taus")
    if (taus <= 0).any():
        raise ValueError("--taus: must be > 0")
    if 1.0 not in taus:
        taus = np.sort(np.append(taus, 1.0))
    study: dict = {"distribution": cs.distribution_study(args.n, args.seed, strengths, taus)}
    if args.mdp is None:
        study["paths"] = cs.paths_study(None, args.horizon, None, strengths, taus)
    else:
        mdp, x0 = load_mdp(args.mdp)
        if args.start is not None:
            if not 0 <= args.start < mdp.num_states:
                raise ValueError(f"--start: state {args.start} is outside [0, {mdp.num_states})")
            x0 = np.eye(mdp.num_states)[args.start]
        study["paths"] = cs.paths_study(mdp, args.horizon, x0, strengths, taus)
    if args.lm:
        from quasispecies.bridge import default_lm

        study["lm_tree"] = cs.lm_tree_study(
            default_lm(), args.question, args.depth, args.top_k, strengths, taus
        )
    study["attractor"] = cs.attractor_study()
    out = Path(args.out)
    data = Path(args.data) if args.data else out / "collapse.json"
    rows = cs.summary_rows(study)
    with atomic_write(data, "w", encoding="utf-8") as fh:
        json.dump({"study": study, "summary": rows}, fh)
    figs = [
        str(collapse_entropy_figure(study, out / "collapse_entropy.png")),
        str(collapse_attractor_figure(study, out / "collapse_attractor.png")),
    ]
    if args.json:
        print(json.dumps({"summary": rows, "data": str(data), "figures": figs}))
        return 0
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
