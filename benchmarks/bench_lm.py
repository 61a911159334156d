"""LM bridge speed: pure-JAX forward vs the transformers CPU forward on the same model.

    .venv/bin/python benchmarks/bench_lm.py [--quick]

Both run SmolLM2-135M-Instruct from the embedded Q4_1 GGUF, dequantised to float32
(JAX: our reader + forward pass; transformers: ``gguf_file=``, PyTorch CPU). Measured in
one run, on the same token batches:

* **scoring throughput** — tokens/s of a full forward pass with log-softmax over the
  vocabulary (``B`` sequences of ``T`` tokens), median of ``repeats`` runs after a warm-up;
  JAX timed after ``block_until_ready()``, its compile time reported apart;
* **token tree** — wall time of ``token_tree(lm, prompt, 3, 5)`` (156 nodes), cold (first
  call, includes jit compilation) and warm, for both backends.

Writes ``benchmarks/results/lm.json`` atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from quasispecies.model.io import atomic_write

OUT = Path(__file__).parent / "results" / "lm.json"


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 5

    import jax
    import jax.numpy as jnp
    import torch

    from quasispecies.bridge import TransformersLM, default_lm, token_tree
    from quasispecies.bridge.llama import sequence_logprobs

    t0 = time.perf_counter()
    lm = default_lm()
    load_jax = time.perf_counter() - t0
    t0 = time.perf_counter()
    hf = TransformersLM(lm.path.parent, gguf_file=lm.path.name, tokenizer=lm.tokenizer)
    load_hf = time.perf_counter() - t0

    results: dict = {
        "model": lm.name,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "jax": jax.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "load_seconds": {"jax": load_jax, "transformers": load_hf},
        "scoring": [],
    }
    rng = np.random.default_rng(0)
    for B, T in [(1, 64), (8, 64), (4, 256)]:
        tokens = rng.integers(100, lm.vocab_size, size=(B, T)).astype(np.int32)
        jt = jnp.asarray(tokens)

        def run_jax(jt=jt):
            lp, _, _ = sequence_logprobs(lm.params, lm.config, jt, 0)
            lp.block_until_ready()
            return lp

        t0 = time.perf_counter()
        lp_jax = run_jax()
        first = time.perf_counter() - t0
        steady = _median_time(run_jax, repeats)
        tt = torch.tensor(tokens, dtype=torch.long)

        def run_hf(tt=tt):
            with torch.no_grad():
                logits = hf.model(input_ids=tt).logits
                return torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, tt[:, 1:, None])[..., 0]

        lp_hf = run_hf()  # warm-up
        t_hf = _median_time(run_hf, repeats)
        diff = float(np.abs(np.asarray(lp_jax, dtype=np.float64) - lp_hf.double().numpy()).max())
        n_tok = B * T
        results["scoring"].append(
            {
                "batch": B,
                "length": T,
                "tokens": n_tok,
                "jax_seconds": steady,
                "jax_compile_seconds": max(first - steady, 0.0),
                "transformers_seconds": t_hf,
                "jax_tokens_per_second": n_tok / steady,
                "transformers_tokens_per_second": n_tok / t_hf,
                "speedup_jax_over_transformers": t_hf / steady,
                "max_abs_logprob_difference": diff,
            }
        )
        print(
            f"B={B:2d} T={T:3d}: JAX {n_tok / steady:8.0f} tok/s (compile {first - steady:5.2f} s), "
            f"transformers {n_tok / t_hf:8.0f} tok/s, ratio {t_hf / steady:5.2f}, max |Δ log p| {diff:.1e}"
        )

    prompt = "The capital of France is"
    tree_times = {}
    for name, model in [("jax", lm), ("transformers", hf)]:
        t0 = time.perf_counter()
        tree = token_tree(
            model, "Once upon a time, in a land far away", 3, 5
        )  # cold: new prompt length
        cold = time.perf_counter() - t0
        warm = _median_time(lambda m=model: token_tree(m, prompt, 3, 5), max(repeats - 2, 1))
        assert tree.num_states == 156
        tree_times[name] = {"cold_seconds": cold, "warm_seconds": warm}
        print(f"depth-3 top-5 tree ({name}): cold {cold:.2f} s, warm {warm:.2f} s")
    results["tree_depth3_top5"] = {
        **tree_times,
        "states": 156,
        "speedup_jax_over_transformers": tree_times["transformers"]["warm_seconds"]
        / tree_times["jax"]["warm_seconds"],
    }

    out = Path(args.out)
    with atomic_write(out) as fh:
        json.dump(results, fh, indent=2)
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
