"""``quasispecies threshold``: Eigen's error threshold: master-class frequency and mean fitness
vs mu.

Single-peak landscape (master fitness SIGMA, all others 1) on {0..K-1}^L, solved exactly
on the L+1 Hamming classes for each mu. Prints the master-class frequency and mean
fitness against mu for each L, with the threshold 1 - sigma^(-1/L) (exact without
back-mutation) and its approximation ln(sigma)/L (Eigen 1971).
"""

from __future__ import annotations

import math

from quasispecies.cli.options import (
    add_json,
    add_out,
    add_path,
    check_at_least,
    check_suffix,
    flag_errors,
    parse_range,
    print_json,
)


def parse_lengths(values: list[str]) -> list[int]:
    """``--length 10 20`` or ``--length 10,20`` -> ``[10, 20]``."""
    out = []
    for v in values:
        for part in v.split(","):
            if not part.strip():
                continue
            try:
                L = int(part)
            except ValueError:
                raise ValueError(f"--length: expected integers, got {part!r}") from None
            out.append(check_at_least(L, "--length", 1))
    if not out:
        raise ValueError("--length: no length given")
    return out


def arguments(p) -> None:
    p.add_argument(
        "--length",
        nargs="+",
        required=True,
        metavar="L",
        help="sequence length(s): --length 50 or --length 10 20 50 (or 10,20,50)",
    )
    p.add_argument("--sigma", type=float, required=True, help="master fitness (> 1)")
    p.add_argument(
        "--mu",
        required=True,
        metavar="LO:HI:N",
        help="N evenly spaced per-site error rates from LO to HI, each in [0, 1]",
    )
    p.add_argument("--alphabet", type=int, default=2, metavar="K", help="alphabet size (2)")
    add_out(p, "write the curves to FILE (.json, or .csv: one row per L and mu)")
    add_path(
        p,
        "--figures",
        "write threshold_master.png and threshold_classes.png into DIR",
        metavar="DIR",
    )
    add_json(p)


def _document(curves) -> dict:
    return {
        "sigma": curves.sigma,
        "alphabet": curves.alphabet,
        "temperature": curves.temperature,
        "mu": curves.mu.tolist(),
        "lengths": [int(L) for L in curves.lengths],
        "curves": [
            {
                "length": int(L),
                "threshold": float(curves.threshold[i]),
                "threshold_approx": float(curves.threshold_approx[i]),
                "master_frequency": curves.master_frequency[i].tolist(),
                "mean_fitness": curves.mean_fitness[i].tolist(),
                "log_growth": curves.log_growth[i].tolist(),
                "master_frequency_no_back": curves.master_frequency_no_back[i].tolist(),
                "max_residual": float(curves.residual[i].max()),
            }
            for i, L in enumerate(curves.lengths)
        ],
    }


def _table(curves) -> str:
    lines = [f"single peak, sigma = {curves.sigma:g}, alphabet = {curves.alphabet}"]
    for i, L in enumerate(curves.lengths):
        lines.append("")
        lines.append(
            f"L = {L}:  mu_c = 1 - sigma^(-1/L) = {curves.threshold[i]:.6g}   "
            f"ln(sigma)/L = {curves.threshold_approx[i]:.6g}"
        )
        lines.append(f"{'mu':>12} {'master x0':>13} {'no back-mut.':>13} {'mean fitness':>13}")
        for j, mu in enumerate(curves.mu):
            lines.append(
                f"{mu:12.6g} {curves.master_frequency[i, j]:13.6g} "
                f"{curves.master_frequency_no_back[i, j]:13.6g} "
                f"{curves.mean_fitness[i, j]:13.6g}"
            )
    return "\n".join(lines)


def _csv(curves) -> str:
    lines = [
        "length,mu,master_frequency,master_frequency_no_back,mean_fitness,"
        "log_growth,threshold,threshold_approx"
    ]
    for i, L in enumerate(curves.lengths):
        for j, mu in enumerate(curves.mu):
            vals = (
                mu,
                curves.master_frequency[i, j],
                curves.master_frequency_no_back[i, j],
                curves.mean_fitness[i, j],
                curves.log_growth[i, j],
                curves.threshold[i],
                curves.threshold_approx[i],
            )
            lines.append(f"{int(L)}," + ",".join(repr(float(v)) for v in vals))
    return "\n".join(lines) + "\n"


def run(args) -> int:
    from quasispecies.model.files import atomic_write, write_json
    from quasispecies.sequence import error_threshold

    lengths = parse_lengths(args.length)
    mus = parse_range(args.mu, "--mu")
    if not (args.sigma > 1 and math.isfinite(args.sigma)):
        raise ValueError(
            f"--sigma: the master must be fitter than the rest, 1 < sigma < inf; got {args.sigma!r}"
        )
    if args.alphabet < 2:
        raise ValueError(f"--alphabet: must be >= 2, got {args.alphabet}")
    out = check_suffix(args.out, "--out", (".json", ".csv")) if args.out else None
    with flag_errors({"length": "--length", "sigma": "--sigma", "mu": "--mu"}):
        curves = error_threshold(lengths, args.sigma, mus, alphabet=args.alphabet)
    doc = _document(curves)
    files = []
    if out is not None:
        if out.suffix == ".json":
            write_json(out, doc, indent=1)
        else:
            with atomic_write(out, "w") as fh:
                fh.write(_csv(curves))
        files.append(str(out))
    if args.figures:
        from quasispecies.plot.threshold import write_figures

        files += [str(f) for f in write_figures(curves, args.figures)]
    if files:
        doc["files"] = files
    if args.json:
        return print_json(doc)
    print(_table(curves))
    if files:
        print("wrote " + ", ".join(files))
    return 0
