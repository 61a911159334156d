"""The LM bridge: language-model log-probabilities as replication rates.

A token tree is an MDP (state = prefix, action = next token, deterministic, reward
``log p(token | prefix)``), so the quasispecies population over its leaves is
``p(y)^(1/T) / Z``: the LM's own distribution at ``T = 1`` and the MAP continuation as
``T -> 0`` (DESIGN §1 "LM bridge").

=============================  ===================================================
``load_lm(spec)``              any model by name: ``embedded`` | ``gguf:PATH`` |
                               ``hf:PATH`` | ``http://HOST:PORT/v1[#MODEL]``
``default_lm()``               the embedded SmolLM2-135M-Instruct (Q4_1 GGUF), pure JAX
``GGUFModel(path)``            a llama, qwen2 or qwen3 GGUF (F32..Q8_0, K-quants)
``TransformersLM(path)``       a local HF model (extra ``[hf]``; torch imported lazily)
``token_tree(lm, p, H, k)``    the depth-``H`` top-``k`` tree as an MDP
``RemoteLM(url, model)``       a model behind an OpenAI-compatible server (the ``LM``
                               protocol of :mod:`.protocol`, as every backend)
``OpenAIClient(url)``          raw log-prob requests to an OpenAI-compatible server
``parse_logprobs(resp)``       OpenAI / vLLM / llama.cpp log-prob shapes -> one record
``compare_decoders(tree)``     MAP vs greedy vs beam; ``temperature_profile`` for
                               sequence- vs token-level temperature
=============================  ===================================================

Modules, one concept each: :mod:`.lm` (the ``LanguageModel`` front end, argument
checks, ``default_lm``), :mod:`.gguf_model` (``GGUFModel``), :mod:`.gguf_file` (the GGUF
reader), :mod:`.llama` (the JAX forward pass), :mod:`.tokenizer` (byte-level BPE from a
GGUF vocabulary), :mod:`.hf` (``TransformersLM``), :mod:`.records` (the per-token
record), :mod:`.tree` (token trees), :mod:`.analyses` (decoders and temperature
profiles), :mod:`.api` (format detection) with one parser module per server family
(:mod:`.api_openai`, :mod:`.api_vllm`, :mod:`.api_llamacpp`; checked JSON access in
:mod:`.api_fields`), :mod:`.client` and :mod:`.server` (HTTP), :mod:`.protocol` (the
``LM`` protocol the analyses take), :mod:`.remote` (``RemoteLM``), :mod:`.spec`
(``load_lm``).

Everything loads on first use: ``import quasispecies.bridge`` imports neither the
model, nor torch, nor transformers.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "default_lm": "lm",
    "GGUFModel": "gguf_model",
    "LanguageModel": "lm",
    "TransformersLM": "hf",
    "token_tree": "tree",
    "TokenTree": "tree",
    "TokenLogprobs": "records",
    "NextTokens": "records",
    "parse_logprobs": "api",
    "parse_completion_logprobs": "api",
    "parse_chat_logprobs": "api",
    "parse_vllm_prompt_logprobs": "api",
    "parse_llamacpp_probabilities": "api",
    "OpenAIClient": "client",
    "RemoteLM": "remote",
    "load_lm": "spec",
    "LM": "protocol",
    "TokenizedLM": "protocol",
    "has_tokenizer": "protocol",
    "serve": "server",
    "compare_decoders": "analyses",
    "DecoderComparison": "analyses",
    "map_leaf": "analyses",
    "greedy_leaf": "analyses",
    "beam_search": "analyses",
    "sequence_distribution": "analyses",
    "token_distribution": "analyses",
    "sample_token_level": "analyses",
    "temperature_profile": "analyses",
    "TemperatureProfile": "analyses",
    "entropy": "analyses",
    "default_gguf_path": "gguf_file",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'quasispecies.bridge' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
