"""Parsers for the log-probability shapes that LM servers return, into :class:`TokenLogprobs`.

=====================================  ==============================================
format                                  where the numbers are
=====================================  ==============================================
OpenAI legacy completions               ``choices[i].logprobs.{tokens, token_logprobs,
(``/v1/completions``)                   top_logprobs, text_offset}``; with ``echo`` the
                                        first prompt token's entries are ``null``
OpenAI chat completions                 ``choices[i].logprobs.content[j].{token,
                                        logprob, bytes, top_logprobs[]}``
vLLM ``prompt_logprobs``                ``choices[i].prompt_logprobs``: ``null``, then
                                        ``{token_id: {logprob, rank, decoded_token}}``
                                        per prompt token (the prompt token first)
llama.cpp ``/completion``               ``completion_probabilities[j]`` (or the
                                        README's top-level ``probs[j]``): ``{id, token,
                                        bytes, logprob, top_logprobs[]}``; with
                                        ``post_sampling_probs``: ``prob`` and
                                        ``top_probs[]``; before 2025: ``{content,
                                        probs: [{tok_str, prob}]}``
=====================================  ==============================================

Probabilities are converted to natural-log values (``prob = 0`` -> ``-inf``). A chosen
token missing from an old llama.cpp ``probs`` list has log-probability ``None``.
A token holding part of a UTF-8 character is kept as raw bytes (``bytes`` arrays, or
OpenAI's ``"bytes:\\xe2\\x80"`` token strings), so :attr:`TokenLogprobs.text` rebuilds
the text exactly. Malformed input raises ``ValueError`` naming the path of the bad field.
"""

from __future__ import annotations

from quasispecies.bridge.api_fields import get_choice, load_response
from quasispecies.bridge.api_llamacpp import (
    parse_llamacpp_probabilities as parse_llamacpp_probabilities,
)
from quasispecies.bridge.api_openai import (
    parse_chat_logprobs as parse_chat_logprobs,
    parse_completion_logprobs as parse_completion_logprobs,
)
from quasispecies.bridge.api_vllm import parse_vllm_prompt_logprobs as parse_vllm_prompt_logprobs
from quasispecies.bridge.records import TokenLogprobs

__all__ = [
    "parse_chat_logprobs",
    "parse_completion_logprobs",
    "parse_llamacpp_probabilities",
    "parse_logprobs",
    "parse_vllm_prompt_logprobs",
]


def parse_logprobs(response, choice: int = 0) -> TokenLogprobs:
    """Detect the format of ``response`` (dict or JSON text) and parse it.

    Order: llama.cpp ``completion_probabilities`` (or top-level ``probs``); vLLM ``prompt_logprobs`` (when the
    choice has no completion logprobs); chat ``logprobs.content``; legacy completions.
    """
    obj = load_response(response)
    if not isinstance(obj, dict):
        raise ValueError(f"response: expected a JSON object, got {type(obj).__name__}")
    if "completion_probabilities" in obj or ("choices" not in obj and "probs" in obj):
        return parse_llamacpp_probabilities(obj)
    if "choices" not in obj:
        if obj.get("prompt_logprobs") is not None:
            return parse_vllm_prompt_logprobs(obj)
        raise ValueError(
            "response: no 'choices', 'completion_probabilities' or 'probs'; "
            "not a known log-prob shape"
        )
    ch = get_choice(obj, choice)
    lp = ch.get("logprobs")
    if lp is None:
        if ch.get("prompt_logprobs") is not None:
            return parse_vllm_prompt_logprobs(obj, choice)
        raise ValueError(
            f"response.choices[{choice}].logprobs: missing or null (no log-probabilities requested)"
        )
    if isinstance(lp, dict) and "content" in lp:
        return parse_chat_logprobs(obj, choice)
    return parse_completion_logprobs(obj, choice)
