"""``quasispecies lm``: language-model bridge: token trees as fitness tables, scores, API
log-probs.

    quasispecies lm tree   --prompt P --depth D --top-k K --out table.csv [--cache DIR --max-requests N] [--json]
    quasispecies lm score  --prompt P --continuation C [--json]
    quasispecies lm next   --prompt P [--top-k K] [--json]
    quasispecies lm decode --prompt P --depth D --top-k K [--temperatures 0,0.5,1] [--json]
    quasispecies lm parse  RESPONSE.json [--json]
    quasispecies lm figures [--out figures] [--json]
    quasispecies lm serve  [--host 127.0.0.1] [--port 8000]

Every command takes --lm SPEC: embedded (default) | gguf:PATH | hf:PATH |
http://HOST:PORT/v1[#MODEL] (an OpenAI-compatible server: vLLM, llama.cpp, `lm serve`);
--gguf PATH is the deprecated alias of --lm gguf:PATH.
A tree written with `lm tree --out table.csv` runs with `quasispecies sweep table.csv`.
"""

from __future__ import annotations

import functools
import math
import sys
import time

from quasispecies.cli.options import (
    add_gguf,
    add_json,
    add_lm,
    add_out,
    add_temperatures,
    check_at_least,
    check_suffix,
    flag_errors,
    load_lm_flag,
    parse_temperatures,
    print_json,
)

#: Argument names of the bridge functions -> the flags that set them (error messages).
FLAGS = {
    "prompt": "--prompt",
    "prefix": "--prompt",
    "continuation": "--continuation",
    "depth": "--depth",
    "top_k": "--top-k",
}

TABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")


def _named(func):
    """``func`` with library argument errors re-labelled by their flags (:data:`FLAGS`)."""

    @functools.wraps(func)
    def run(args) -> int:
        with flag_errors(FLAGS):
            return func(args)

    return run


def arguments(p) -> None:
    sub = p.add_subparsers(dest="lm_command", metavar="LM_COMMAND")
    sub.required = True

    def command(name: str, help: str, func, *, prompt=True, json="print one JSON object on stdout"):
        q = sub.add_parser(name, help=help, description=help)
        if prompt:
            q.add_argument("--prompt", required=True, help="the prompt text (non-empty)")
        if name != "parse":
            add_lm(q)
        add_gguf(q)
        add_json(q, help=json)
        q.set_defaults(func=_named(func))
        return q

    t = command(
        "tree", "build the depth-D top-K token tree and write it as a fitness table", run_tree
    )
    t.add_argument(
        "--depth", type=int, required=True, help="tokens generated along each path (D >= 1)"
    )
    t.add_argument(
        "--top-k", type=int, required=True, help="next tokens kept at every node (K >= 1)"
    )
    add_out(t, "output table: .csv, .jsonl or .parquet", required=True)
    t.add_argument("--cache", metavar="DIR", help="prefix -> top-k cache (resumable, reusable)")
    t.add_argument(
        "--max-requests", type=int, help="most next-token queries to send (exit 3 when hit)"
    )
    t.add_argument("--batch-size", type=int, help="prefixes per model call (default: a level)")

    s = command(
        "score", "log p(continuation | prompt), continuation tokenised in context", run_score
    )
    s.add_argument("--continuation", required=True, help="the text scored after the prompt")

    n = command("next", "the top-K next tokens after the prompt", run_next)
    n.add_argument("--top-k", type=int, default=10, help="how many tokens (default 10)")

    d = command(
        "decode", "MAP (max-plus DP) vs greedy vs beam search, and entropy against T", run_decode
    )
    d.add_argument("--depth", type=int, default=3, help="tree depth D (default 3)")
    d.add_argument(
        "--top-k", type=int, default=5, help="next tokens kept at every node (default 5)"
    )
    add_temperatures(d, default="0,0.25,0.5,1,2")

    r = command(
        "parse",
        "normalise a saved API response (OpenAI, vLLM, llama.cpp) to one record",
        run_parse,
        prompt=False,
    )
    r.add_argument("response", metavar="RESPONSE", help="a JSON file holding the server's response")

    f = command("figures", "write the LM-bridge figures (lm_*.png)", run_figures, prompt=False)
    add_out(f, "output folder (default: figures)", default="figures", metavar="DIR")
    f.add_argument(
        "--prompt", default="Once upon a time", help="prompt of the population/entropy figures"
    )

    v = command(
        "serve",
        "serve the model as an OpenAI-compatible endpoint (completions, chat)",
        run_serve,
        prompt=False,
        json="print the server address as one JSON object, then serve",
    )
    v.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    v.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")


def _model(args):
    return load_lm_flag(args.lm, gguf=args.gguf)


def _emit(args, doc: dict, lines: list[str]) -> int:
    if args.json:
        return print_json(doc, ensure_ascii=False)
    print("\n".join(lines))
    return 0


def run_tree(args) -> int:
    from quasispecies.bridge import compare_decoders, token_tree
    from quasispecies.bridge.tree_cache import RequestBudgetExceeded
    from quasispecies.model.tables import write_table

    out = check_suffix(args.out, "--out", TABLE_SUFFIXES, ignore_case=True)
    for flag, v, lo in (
        ("--max-requests", args.max_requests, 0),
        ("--batch-size", args.batch_size, 1),
    ):
        if v is not None:
            check_at_least(v, flag, lo)
    lm = _model(args)
    t0 = time.perf_counter()
    try:
        with flag_errors({"cache": "--cache", "max_requests": "--max-requests"}):
            tree = token_tree(
                lm,
                args.prompt,
                args.depth,
                args.top_k,
                progress=not args.json and sys.stderr.isatty(),
                cache=args.cache,
                max_requests=args.max_requests,
                batch_size=args.batch_size,
            )
    except RequestBudgetExceeded as err:  # nothing written; the cache keeps the answers
        msg = str(err).replace("max_requests:", "--max-requests:", 1)
        print(f"quasispecies lm tree: {msg}", file=sys.stderr)
        return 3
    seconds = time.perf_counter() - t0
    write_table(out, tree.to_table())
    cmp = compare_decoders(tree, widths=())
    doc = {
        "out": str(out),
        "states": tree.num_states,
        "leaves": len(tree.leaves),
        "depth": tree.max_depth,
        "top_k": tree.top_k,
        "seconds": seconds,
        "map": {"text": cmp.map_text, "logprob": cmp.map_logprob, "certified": cmp.map_certified},
        "greedy": {"text": cmp.greedy_text, "logprob": cmp.greedy_logprob},
    }
    lines = [
        f"token tree: {tree.num_states} states ({len(tree.leaves)} leaves), depth {tree.max_depth}, "
        f"top-{tree.top_k}, built in {seconds:.1f} s",
        f"MAP    {cmp.map_text!r}  log p = {cmp.map_logprob:.4f}"
        + ("" if cmp.map_certified else "  (best inside the tree; not certified global)"),
        f"greedy {cmp.greedy_text!r}  log p = {cmp.greedy_logprob:.4f}",
        f"wrote {out}  (run: quasispecies sweep {out} --temperatures 1,0.1,0 --horizon {tree.max_depth})",
    ]
    return _emit(args, doc, lines)


def run_score(args) -> int:
    from quasispecies.bridge import has_tokenizer

    lm = _model(args)
    if has_tokenizer(lm):
        ctx, cont = lm.encode_pair(args.prompt, args.continuation)
        lps = lm.continuation_logprobs(ctx, cont)
        toks = [lm.token_text(i) for i in cont]
    else:  # tokens as the server spells them: the tail of the echoed joint text
        lps = lm.continuation_logprobs(args.prompt, args.continuation)
        toks = list(lm.token_logprobs(args.prompt + args.continuation).tokens[-len(lps) :])
    total = float(lps.sum())
    doc = {
        "prompt": args.prompt,
        "continuation": args.continuation,
        "logprob": total,
        "tokens": toks,
        "token_logprobs": [float(x) for x in lps],
    }
    lines = [f"log p = {total:.6f}  (p = {math.exp(total):.6g})"] + [
        f"  {t!r:>16} {lp:10.6f}" for t, lp in zip(toks, lps, strict=True)
    ]
    return _emit(args, doc, lines)


def run_next(args) -> int:
    lm = _model(args)
    nt = lm.next_token_logprobs(args.prompt, args.top_k)
    doc = {
        "prompt": args.prompt,
        "tokens": list(nt.tokens),
        "token_ids": None if nt.token_ids is None else list(nt.token_ids),
        "logprobs": list(nt.logprobs),
    }
    lines = [
        f"{t!r:>16} {lp:10.6f}  p = {math.exp(lp):.4f}"
        for t, lp in zip(nt.tokens, nt.logprobs, strict=True)
    ]
    return _emit(args, doc, lines)


def run_decode(args) -> int:
    from quasispecies.bridge import compare_decoders, temperature_profile, token_tree

    temps = parse_temperatures(args.temperatures)
    lm = _model(args)
    tree = token_tree(lm, args.prompt, args.depth, args.top_k)
    widths = [w for w in (2, 3) if w <= tree.top_k]
    cmp = compare_decoders(tree, widths)
    prof = temperature_profile(tree, temps)
    doc = {
        **cmp.as_dict(),
        "temperatures": temps.tolist(),
        "sequence_entropy": prof.sequence_entropy.tolist(),
        "token_entropy": prof.token_entropy.tolist(),
        "kl_token_sequence": prof.kl_token_sequence.tolist(),
    }
    lines = [
        f"MAP    {cmp.map_text!r}  log p = {cmp.map_logprob:.4f}"
        + ("  (certified)" if cmp.map_certified else ""),
        f"greedy {cmp.greedy_text!r}  log p = {cmp.greedy_logprob:.4f}",
        *[f"beam {w}  {t!r}  log p = {lp:.4f}" for w, (_, t, lp) in cmp.beam.items()],
        "     T   H_seq   H_token   KL(token||seq)",
        *[
            f"{t:6.3g} {hs:7.3f} {ht:9.3f} {kl:10.4f}"
            for t, hs, ht, kl in zip(
                temps,
                prof.sequence_entropy,
                prof.token_entropy,
                prof.kl_token_sequence,
                strict=True,
            )
        ],
    ]
    return _emit(args, doc, lines)


def run_parse(args) -> int:
    from pathlib import Path

    from quasispecies.bridge import parse_logprobs

    path = Path(args.response)
    if not path.is_file():
        raise ValueError(f"RESPONSE: {path} does not exist")
    rec = parse_logprobs(path.read_bytes())
    scored = [lp for lp in rec.logprobs if lp is not None]
    total = float(math.fsum(scored)) if scored else 0.0
    doc = {**rec.to_dict(), "text": rec.text, "total_logprob": total}
    lines = [f"{rec.source}: {len(rec)} tokens, sum of log-probs {total:.6f}"] + [
        f"  {t!r:>16} {'-' if lp is None else f'{lp:10.6f}'}"
        for t, lp in zip(rec.tokens, rec.logprobs, strict=True)
    ]
    return _emit(args, doc, lines)


def run_figures(args) -> int:
    from quasispecies.plot.lm import make_figures

    paths = make_figures(args.out, lm=_model(args), prompt=args.prompt)
    return _emit(args, {"figures": [str(p) for p in paths]}, [f"wrote {p}" for p in paths])


def run_serve(args) -> int:
    from quasispecies.bridge import has_tokenizer, serve

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: must be in [0, 65535], got {args.port}")
    lm = _model(args)
    if not has_tokenizer(lm):
        raise ValueError(f"--lm: serving needs a model with a local tokenizer, not {args.lm!r}")
    try:
        server, url = serve(lm, args.host, args.port)
    except OSError as err:
        raise ValueError(
            f"--host, --port: cannot serve at {args.host}:{args.port} ({err})"
        ) from None
    if args.json:
        print_json({"url": url, "model": lm.name})
    else:
        print(f"serving {lm.name} at {url} (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
