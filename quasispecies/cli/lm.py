"""``quasispecies lm``: the language-model bridge on the command line.

    quasispecies lm tree   --prompt P --depth D --top-k K --out table.csv [--json]
    quasispecies lm score  --prompt P --continuation C [--json]
    quasispecies lm next   --prompt P [--top-k K] [--json]
    quasispecies lm decode --prompt P --depth D --top-k K [--temperatures 0,0.5,1] [--json]
    quasispecies lm parse  RESPONSE.json [--json]
    quasispecies lm figures [--out figures] [--json]
    quasispecies lm serve  [--host 127.0.0.1] [--port 8000]

Every command uses the embedded model unless ``--gguf PATH`` names another Llama GGUF.
A tree written with ``lm tree --out table.csv`` runs with ``quasispecies sweep table.csv``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "lm",
        help="language-model bridge: token trees as fitness tables, scores, API log-probs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="lm_command", metavar="LM_COMMAND")
    sub.required = True

    def common(q, prompt: bool = True):
        if prompt:
            q.add_argument("--prompt", required=True, help="the prompt text (non-empty)")
        q.add_argument(
            "--gguf",
            default=None,
            help="a Llama-family GGUF file (default: the embedded SmolLM2-135M)",
        )
        q.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    t = sub.add_parser(
        "tree", help="build the depth-D top-K token tree and write it as a fitness table"
    )
    common(t)
    t.add_argument(
        "--depth", type=int, required=True, help="tokens generated along each path (D >= 1)"
    )
    t.add_argument(
        "--top-k", type=int, required=True, help="next tokens kept at every node (K >= 1)"
    )
    t.add_argument("--out", required=True, help="output table: .csv, .jsonl or .parquet")
    t.set_defaults(func=run_tree)

    s = sub.add_parser(
        "score", help="log p(continuation | prompt), continuation tokenised in context"
    )
    common(s)
    s.add_argument("--continuation", required=True)
    s.set_defaults(func=run_score)

    n = sub.add_parser("next", help="the top-K next tokens after the prompt")
    common(n)
    n.add_argument("--top-k", type=int, default=10)
    n.set_defaults(func=run_next)

    d = sub.add_parser(
        "decode", help="MAP (max-plus DP) vs greedy vs beam search, and entropy against T"
    )
    common(d)
    d.add_argument("--depth", type=int, default=3)
    d.add_argument("--top-k", type=int, default=5)
    d.add_argument(
        "--temperatures", default="0,0.25,0.5,1,2", help="comma-separated temperatures >= 0"
    )
    d.set_defaults(func=run_decode)

    r = sub.add_parser(
        "parse", help="normalise a saved API response (OpenAI, vLLM, llama.cpp) to one record"
    )
    r.add_argument("response", help="a JSON file holding the server's response")
    r.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    r.set_defaults(func=run_parse)

    f = sub.add_parser("figures", help="write the LM-bridge figures (lm_*.png)")
    f.add_argument("--out", default="figures", help="output folder (default: figures)")
    f.add_argument(
        "--prompt", default="Once upon a time", help="prompt of the population/entropy figures"
    )
    f.add_argument(
        "--gguf", default=None, help="a Llama-family GGUF file (default: the embedded model)"
    )
    f.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    f.set_defaults(func=run_figures)

    v = sub.add_parser(
        "serve", help="serve the model as an OpenAI-compatible endpoint (completions, chat)"
    )
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8000)
    v.add_argument(
        "--gguf", default=None, help="a Llama-family GGUF file (default: the embedded model)"
    )
    v.add_argument(
        "--json", action="store_true", help="print the server address as JSON, then serve"
    )
    v.set_defaults(func=run_serve)


def _model(args):
    from quasispecies.bridge.lm import GGUFModel, default_lm

    return default_lm() if args.gguf is None else GGUFModel(args.gguf)


def _jsonable(x):
    """Replace non-finite floats by the strings "inf" / "-inf" (JSON has no infinity)."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return _finite(x)
    return x


def _emit(args, doc: dict, lines: list[str]) -> int:
    if args.json:
        print(json.dumps(_jsonable(doc), ensure_ascii=False, allow_nan=False))
    else:
        print("\n".join(lines))
    return 0


def _finite(x: float):
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("-inf" if x < 0 else "inf")


def run_tree(args) -> int:
    from pathlib import Path

    from quasispecies.bridge.analyses import compare_decoders
    from quasispecies.bridge.tree import token_tree
    from quasispecies.model.tables import SUFFIXES, write_table

    out = Path(args.out)
    if out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"--out: unknown table type {out.suffix!r} (use {', '.join(SUFFIXES)})")
    lm = _model(args)
    t0 = time.perf_counter()
    tree = token_tree(
        lm, args.prompt, args.depth, args.top_k, progress=not args.json and sys.stderr.isatty()
    )
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
    lm = _model(args)
    ctx, cont = lm.encode_pair(args.prompt, args.continuation)
    lps = lm.continuation_logprobs(ctx, cont)
    total = float(lps.sum())
    toks = [lm.token_text(i) for i in cont]
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
        "token_ids": list(nt.token_ids),
        "logprobs": list(nt.logprobs),
    }
    lines = [
        f"{t!r:>16} {lp:10.6f}  p = {math.exp(lp):.4f}"
        for t, lp in zip(nt.tokens, nt.logprobs, strict=True)
    ]
    return _emit(args, doc, lines)


def run_decode(args) -> int:

    from quasispecies.bridge.analyses import compare_decoders, temperature_profile
    from quasispecies.bridge.tree import token_tree
    from quasispecies.cli.sweep import parse_temperatures

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

    from quasispecies.bridge.api import parse_logprobs

    path = Path(args.response)
    if not path.is_file():
        raise ValueError(f"response: {path} does not exist")
    rec = parse_logprobs(path.read_bytes())
    scored = [lp for lp in rec.logprobs if lp is not None]
    total = float(math.fsum(scored)) if scored else 0.0
    doc = {**rec.to_dict(), "text": rec.text, "total_logprob": _finite(total)}
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
    from quasispecies.bridge.server import serve

    lm = _model(args)
    server, url = serve(lm, args.host, args.port)
    msg = {"url": url, "model": lm.name}
    print(
        json.dumps(msg) if args.json else f"serving {lm.name} at {url} (Ctrl-C to stop)", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
