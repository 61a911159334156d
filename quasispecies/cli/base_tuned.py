"""``quasispecies collapse --base SPEC --tuned SPEC --prompts FILE``: base vs tuned.

Per prompt, on the base model's token tree (``--depth``, ``--top-k``): entropy and
effective support of each model's sequence distribution, the re-heating response
``H(q^(1/tau))`` (``--taus``, within [0.5, 3]), the best token-level and sequence-level
tilt ``q_base exp(r/beta)`` and its KL to the tuned model, and the attractors. Trees are
built with batched next-token queries through ``--cache DIR`` (resumable; a rerun costs no
query) and bounded by ``--max-requests`` (exit status 3 when hit: no result is written,
the cache keeps the answers). Writes base_tuned.json and the figure base_tuned.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

from quasispecies.cli.options import (
    check_at_least,
    flag_errors,
    load_lm_flag,
    parse_grid,
    print_json,
)


def arguments(p) -> None:
    forms = "embedded | gguf:PATH | hf:PATH | http://HOST:PORT/v1[#MODEL]"
    p.add_argument("--base", metavar="SPEC", default=None, help=f"base model: {forms}")
    p.add_argument("--tuned", metavar="SPEC", default=None, help=f"tuned model: {forms}")
    p.add_argument(
        "--prompts",
        metavar="FILE",
        default=None,
        help="prompts for --base/--tuned: one per line, or JSON Lines with a 'prompt' field",
    )
    p.add_argument(
        "--cache",
        metavar="DIR",
        default=None,
        help="token-tree cache folder for --base (resumable builds; a rerun asks nothing)",
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=None,
        help="most next-token queries the base's trees may send (default: no bound)",
    )
    p.add_argument(
        "--server-batch",
        type=int,
        default=None,
        help="prompts per HTTP request to a server SPEC (default 16; 1 for llama-cpp-python)",
    )


def _load(spec: str, flag: str, server_batch: int | None):
    opts = (
        {} if server_batch is None or not spec.startswith("http") else {"batch_size": server_batch}
    )
    with flag_errors({"--lm": flag, "spec": flag, "batch_size": "--server-batch"}):
        if opts:
            from quasispecies.bridge.spec import load_lm

            return load_lm(spec, name=flag, **opts)
        return load_lm_flag(spec)


def run(args) -> int:
    from quasispecies.bridge.tree_cache import RequestBudgetExceeded
    from quasispecies.experiments import base_tuned as bt
    from quasispecies.model.files import write_json
    from quasispecies.plot.base_tuned import base_tuned_figure

    for flag, v in (("--base", args.base), ("--tuned", args.tuned), ("--prompts", args.prompts)):
        if v is None:
            raise ValueError(f"{flag}: required with --base, --tuned and --prompts")
    check_at_least(args.depth, "--depth", 1)
    check_at_least(args.top_k, "--top-k", 1)
    if args.max_requests is not None:
        check_at_least(args.max_requests, "--max-requests", 0)
    if args.server_batch is not None:
        check_at_least(args.server_batch, "--server-batch", 1)
    taus = parse_grid(args.taus, "--taus", example="0.5,1,3")
    if (taus <= 0).any():
        raise ValueError(f"--taus: must be > 0, got {float(taus[taus <= 0][0])!r}")
    prompts = bt.read_prompts(args.prompts)
    base = _load(args.base, "--base", args.server_batch)
    tuned = _load(args.tuned, "--tuned", args.server_batch)
    try:
        with flag_errors({"depth": "--depth", "top_k": "--top-k", "cache": "--cache"}):
            study = bt.base_tuned_study(
                base,
                tuned,
                prompts,
                args.depth,
                args.top_k,
                taus=taus,
                cache=args.cache,
                max_requests=args.max_requests,
                batch_size=64 if args.cache else None,  # a chunk is cached as it returns
                progress=not args.json,
            )
    except RequestBudgetExceeded as err:
        msg = str(err).replace("max_requests:", "--max-requests:", 1)
        print(f"quasispecies collapse: {msg}", file=sys.stderr)
        return 3
    out = Path(args.out)
    data = Path(args.data) if args.data else out / "base_tuned.json"
    study["models"] = {"base": args.base, "tuned": args.tuned}
    write_json(data, study)
    fig = str(base_tuned_figure(study, out / "base_tuned.png"))
    s = study["summary"]
    if args.json:
        return print_json({"summary": s, "data": str(data), "figures": [fig]})
    print(
        f"{'prompt':<28}{'H base':>8}{'H tuned':>9}{'exp(H) b/t':>13}{'tau*':>7}{'KL(t|b)':>9}{'KL fit':>8}"
    )
    for r in study["per_prompt"]:
        tau = "-" if r["reheat_tau"] is None else f"{r['reheat_tau']:.2f}"
        sup = f"{r['base']['effective_support']:.1f}/{r['tuned']['effective_support']:.1f}"
        print(
            f"{r['prompt'][:27]:<28}{r['base']['entropy']:>8.3f}{r['tuned']['entropy']:>9.3f}"
            f"{sup:>13}{tau:>7}{r['kl_tuned_base']:>9.3f}{r['sequence_fit']['kl']:>8.3f}"
        )
    print(
        f"re-heating recovers the base's entropy within tau <= {taus.max():g} for "
        f"{s['reheat_recovered']} of {s['prompts']} prompts; token-tilt R^2 = {s['token_fit_r2']:.3f}"
    )
    print(f"wrote {data}")
    print(f"wrote {fig}")
    return 0
