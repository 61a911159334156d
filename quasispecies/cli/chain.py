"""``quasispecies chain``: iterative chaining with self-evaluation on an LM (--lm SPEC) vs
filter_rounds.

The model answers bundled factual questions, rates each answer by the log-odds of
' a great deal' vs ' not at all' on a survey scale, keeps those above a threshold, and
answers again with the kept Q/A pairs as context. Reports TPR/FPR of the
self-evaluation and the error rate per round observed vs predicted by
filter_rounds(eps0, tpr, fpr). The result file is written after every round and resumed.
--lm SPEC picks the model: embedded (default) | gguf:PATH | hf:PATH |
http://HOST:PORT/v1[#MODEL] (vLLM, llama.cpp's llama-server, `quasispecies lm serve`).
"""

from __future__ import annotations

import math
from pathlib import Path

from quasispecies.cli.options import (
    add_json,
    add_lm,
    add_path,
    check_at_least,
    flag_errors,
    load_lm_flag,
    print_json,
)
from quasispecies.model.files import read_json


def arguments(p) -> None:
    add_lm(p)
    add_path(p, "--questions", "JSONL of {id, question, answers}; default the bundled set")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N questions")
    p.add_argument(
        "--rounds", type=int, default=3, help="chaining rounds after round 0 (default 3)"
    )
    p.add_argument("--buffer", type=int, default=4, help="passing Q/A pairs in context (default 4)")
    p.add_argument(
        "--branches",
        type=int,
        default=2,
        help="answers rated per question and round: greedy + runners-up (default 2)",
    )
    p.add_argument("--max-tokens", type=int, default=12, help="answer length cap (default 12)")
    p.add_argument(
        "--threshold",
        default="median",
        help="pass threshold on the margin in nats, or 'median' of round 0 (default)",
    )
    p.add_argument(
        "--evaluator",
        choices=("survey", "likelihood"),
        default="survey",
        help="what decides which answers are kept: the survey self-evaluation (default) "
        "or the model's mean token log-prob of its answer",
    )
    p.add_argument("--seed", type=int, default=0, help="context sampling seed (default 0)")
    add_path(
        p,
        "--result",
        "result JSON, resumed if present (default DIR/chain.json under --figures, "
        "DIR/chain_likelihood.json for --evaluator likelihood; nothing is written "
        "outside --figures and --result)",
    )
    add_path(
        p,
        "--figures",
        "directory for chain_error.png / chain_error_likelihood.png and the default "
        "--result file (default figures)",
        default="figures",
        metavar="DIR",
    )
    p.add_argument(
        "--replicates",
        type=int,
        default=2000,
        help="finite-buffer simulation replicates for the figure (default 2000)",
    )
    p.add_argument(
        "--no-run",
        action="store_true",
        help="do not call the model: summarise and plot an existing --result",
    )
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    add_json(p)


def simulate_buffers(
    summary: dict, rounds: int, buffers=(2, 8, 64), replicates: int = 2000, seed: int = 0
) -> dict:
    """Finite-buffer runs of the idealised loop at the measured ``eps0, tpr0, fpr0``."""
    import jax
    import numpy as np

    from quasispecies.selection.chaining import filter_rounds, simulate_chaining

    e0, t, f = summary["eps"][0], summary["tpr0"], summary["fpr0"]
    out = {"exact": filter_rounds(e0, t, f, rounds).tolist(), "buffers": {}}
    for j, B in enumerate(buffers):
        sim = np.asarray(
            simulate_chaining(jax.random.key(seed + j), e0, t, f, rounds, B, replicates).error
        )
        out["buffers"][str(B)] = {
            "mean": sim.mean(axis=0).tolist(),
            "q10": np.quantile(sim, 0.1, axis=0).tolist(),
            "q90": np.quantile(sim, 0.9, axis=0).tolist(),
            "absorbed_at_1": float((sim[:, -1] == 1.0).mean()),
            "absorbed_at_0": float((sim[:, -1] == 0.0).mean()),
        }
    return out


def run(args) -> int:
    from quasispecies.experiments.chaining import run_chain, summarise
    from quasispecies.experiments.questions import load_questions
    from quasispecies.plot.selection import chain_error_figure

    for flag, v, lo in (
        ("--rounds", args.rounds, 0),
        ("--buffer", args.buffer, 1),
        ("--branches", args.branches, 1),
        ("--max-tokens", args.max_tokens, 1),
        ("--replicates", args.replicates, 1),
    ):
        check_at_least(v, flag, lo)
    if args.limit is not None:
        check_at_least(args.limit, "--limit", 1)
    threshold: float | str = args.threshold
    if threshold != "median":
        try:
            threshold = float(threshold)
        except ValueError:
            threshold = math.nan
        if not math.isfinite(threshold):
            raise ValueError(
                f"--threshold: expected 'median' or a finite number, got {args.threshold!r}"
            )
    suffix = "" if args.evaluator == "survey" else "_likelihood"
    result_path = Path(args.result or Path(args.figures) / f"chain{suffix}.json")
    if args.no_run:
        if not result_path.exists():
            raise ValueError(f"--result: {result_path} does not exist (run without --no-run first)")
        try:
            result = read_json(result_path)  # Infinity tokens or the old "inf" strings
        except ValueError as err:
            raise ValueError(f"--result: {err}") from None
        if not isinstance(result, dict) or not result.get("rounds"):
            raise ValueError(f"--result: {result_path} holds no finished round")
        summary = summarise(result)
    else:
        with flag_errors({"path": "--questions"}):
            questions = load_questions(args.questions)
        if args.limit is not None:
            questions = questions[: args.limit]
        lm = load_lm_flag(args.lm)
        result = run_chain(
            lm,
            questions,
            rounds=args.rounds,
            buffer=args.buffer,
            branches=args.branches,
            max_tokens=args.max_tokens,
            threshold=threshold,
            seed=args.seed,
            result_path=result_path,
            progress=args.progress,
            evaluator=args.evaluator,
        )
        summary = result["summary"]
    rounds = len(summary["eps"]) - 1
    sim = (
        simulate_buffers(summary, rounds, replicates=args.replicates)
        if summary["n_passed"][0]
        else None
    )
    evaluator = result.get("config", {}).get("evaluator", args.evaluator)
    fig = chain_error_figure(
        summary,
        Path(args.figures) / f"chain_error{'' if evaluator == 'survey' else '_likelihood'}.png",
        sim,
        evaluator=evaluator,
    )
    if args.json:
        return print_json(
            {
                "summary": summary,
                "simulation": sim,
                "result": str(result_path),
                "figures": [str(fig)],
            }
        )
    print(
        f"{summary['n_questions']} questions, threshold {summary['threshold']:.4f} nats; round 0: "
        f"TPR {summary['tpr0']:.3f}, FPR {summary['fpr0']:.3f}, AUC {summary['auc'][0]:.3f}, "
        f"odds factor fpr/tpr {summary['odds_factor']:.3f}"
    )

    def fmt(x):
        return "   -  " if x is None else f"{x:6.3f}"

    print(
        f"{'round':>5} {'error':>6} {'predicted':>9} {'buffer':>6} {'pred buf':>8} {'context':>7} "
        f"{'TPR':>6} {'FPR':>6} {'AUC':>6} {'passed':>6}"
    )
    for k in range(rounds + 1):
        print(
            f"{k:>5} {fmt(summary['eps'][k])} {fmt(summary['predicted'][k]):>9} "
            f"{fmt(summary['buffer_error'][k])} {fmt(summary['predicted_buffer'][k]):>8} "
            f"{fmt(summary['context_error'][k]):>7} {fmt(summary['tpr'][k])} {fmt(summary['fpr'][k])} "
            f"{fmt(summary['auc'][k])} {summary['n_passed'][k]:>6}"
        )
    print(f"wrote {result_path}" if not args.no_run else f"read {result_path}")
    print(f"wrote {fig}")
    return 0
