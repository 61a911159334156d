"""llama.cpp server ``completion_probabilities`` -> :class:`~quasispecies.bridge.records.TokenLogprobs`.

The entries are under ``completion_probabilities`` (what the server sends) or, in the
shape the server README documents for ``/completion``, under a top-level ``probs``
list; each entry is one of three variants:

* current: ``{id, token, bytes, logprob, top_logprobs[]}``;
* with ``post_sampling_probs``: ``prob`` and ``top_probs[]`` (probabilities after the
  sampler's truncation, converted here to natural logs, ``0`` -> ``-inf``);
* before 2025: ``{content, probs: [{tok_str, prob}]}``; a chosen token missing from
  ``probs`` gets log-probability ``None``.
"""

from __future__ import annotations

from quasispecies.bridge.api_fields import (
    as_bytes,
    as_list,
    as_logprob,
    as_str,
    get_field,
    load_response,
    prob_to_logprob,
)
from quasispecies.bridge.records import TokenLogprobs

__all__ = ["parse_llamacpp_probabilities"]


def parse_llamacpp_probabilities(response) -> TokenLogprobs:
    """llama.cpp server ``completion_probabilities`` or README-documented top-level
    ``probs`` (all three entry variants, see the module doc)."""
    obj = load_response(response)
    key = (
        "probs"
        if isinstance(obj, dict) and "completion_probabilities" not in obj and "probs" in obj
        else "completion_probabilities"
    )
    entries = as_list(get_field(obj, key, "response"), f"response.{key}")
    tokens: list[str] = []
    logprobs: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    raw: list[bytes | None] = []
    ids: list = []
    variant = "llama.cpp"
    for i, e in enumerate(entries):
        we = f"response.{key}[{i}]"
        if not isinstance(e, dict):
            raise ValueError(f"{we}: expected a JSON object")
        if "probs" in e and "token" not in e:  # before 2025: {content, probs: [{tok_str, prob}]}
            variant = "llama.cpp.probs"
            tok = as_str(get_field(e, "content", we), f"{we}.content")
            d: dict[str, float] = {}
            for j, alt in enumerate(as_list(e["probs"], f"{we}.probs")):
                wa = f"{we}.probs[{j}]"
                d.setdefault(
                    as_str(get_field(alt, "tok_str", wa), f"{wa}.tok_str"),
                    prob_to_logprob(get_field(alt, "prob", wa), f"{wa}.prob"),
                )
            tokens.append(tok)
            logprobs.append(d.get(tok))  # None when the chosen token is not listed
            tops.append(d)
            raw.append(tok.encode("utf-8"))
            ids.append(None)
            continue
        tok = as_str(get_field(e, "token", we), f"{we}.token")
        tokens.append(tok)
        b = as_bytes(e.get("bytes"), f"{we}.bytes")
        raw.append(b if b is not None else tok.encode("utf-8"))
        ids.append(e.get("id"))
        if "logprob" in e:
            logprobs.append(as_logprob(e["logprob"], f"{we}.logprob"))
            alts, key = e.get("top_logprobs"), "logprob"
        elif "prob" in e:
            variant = "llama.cpp.post_sampling"
            logprobs.append(prob_to_logprob(e["prob"], f"{we}.prob"))
            alts, key = e.get("top_probs"), "prob"
        else:
            raise ValueError(f"{we}: has neither 'logprob', 'prob' nor 'probs'")
        if alts is None:
            tops.append(None)
            continue
        d = {}
        for j, alt in enumerate(as_list(alts, f"{we}.top_{key}s")):
            wa = f"{we}.top_{key}s[{j}]"
            raw_val = get_field(alt, key, wa)
            val = (
                as_logprob(raw_val, f"{wa}.{key}")
                if key == "logprob"
                else prob_to_logprob(raw_val, f"{wa}.{key}")
            )
            d.setdefault(as_str(get_field(alt, "token", wa), f"{wa}.token"), val)
        tops.append(d)
    id_tuple = (
        tuple(ids)
        if ids and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        else None
    )
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(logprobs),
        top_logprobs=tuple(tops) if any(t is not None for t in tops) else None,
        token_ids=id_tuple,
        token_bytes=tuple(raw),
        source=variant,
    )
