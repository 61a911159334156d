r"""OpenAI log-prob shapes -> :class:`~quasispecies.bridge.records.TokenLogprobs`.

* legacy completions (``/v1/completions``, ``logprobs=k``, optionally ``echo``):
  ``choices[i].logprobs.{tokens, token_logprobs, top_logprobs, text_offset}``; with
  ``echo`` the first prompt token's entries are ``null`` (no conditional exists);
* chat completions (``logprobs: true``, ``top_logprobs: k``):
  ``choices[i].logprobs.content[j].{token, logprob, bytes, top_logprobs[]}``.

Each entry is :math:`\log p(\text{token}_j \mid \text{tokens}_{<j})` in nats.
"""

from __future__ import annotations

from quasispecies.bridge.api_fields import (
    as_bytes,
    as_list,
    as_logprob,
    as_optional_logprob,
    as_str,
    get_choice,
    get_field,
    load_response,
    token_and_bytes,
)
from quasispecies.bridge.records import TokenLogprobs

__all__ = ["parse_chat_logprobs", "parse_completion_logprobs"]


def _choice_logprobs(response, choice: int, request: str):
    """``(choice's logprobs, where-prefix)``; refuses a null logprobs."""
    obj = load_response(response)
    ch = get_choice(obj, choice)
    w = f"response.choices[{choice}].logprobs"
    lp = ch.get("logprobs")
    if lp is None:
        raise ValueError(f"{w}: missing or null (request {request})")
    return lp, w


def parse_completion_logprobs(response, choice: int = 0) -> TokenLogprobs:
    """OpenAI legacy completions (``/v1/completions``, ``logprobs=k``, optionally ``echo``)."""
    lp, w = _choice_logprobs(response, choice, "logprobs=<k>")
    tokens = [
        as_str(t, f"{w}.tokens[{i}]")
        for i, t in enumerate(as_list(get_field(lp, "tokens", w), f"{w}.tokens"))
    ]
    vals = as_list(get_field(lp, "token_logprobs", w), f"{w}.token_logprobs")
    if len(vals) != len(tokens):
        raise ValueError(f"{w}.token_logprobs: {len(vals)} entries for {len(tokens)} tokens")
    logprobs = [as_optional_logprob(v, f"{w}.token_logprobs[{i}]") for i, v in enumerate(vals)]
    tops: list[dict[str, float] | None] | None = None
    if lp.get("top_logprobs") is not None:
        raw_tops = as_list(lp["top_logprobs"], f"{w}.top_logprobs")
        if len(raw_tops) != len(tokens):
            raise ValueError(f"{w}.top_logprobs: {len(raw_tops)} entries for {len(tokens)} tokens")
        tops = []
        for i, d in enumerate(raw_tops):
            if d is None:
                tops.append(None)
                continue
            if not isinstance(d, dict):
                raise ValueError(f"{w}.top_logprobs[{i}]: expected an object token -> logprob")
            tops.append({k: as_logprob(v, f"{w}.top_logprobs[{i}][{k!r}]") for k, v in d.items()})
    pairs = [token_and_bytes(t) for t in tokens]
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(logprobs),
        top_logprobs=None if tops is None else tuple(tops),
        token_bytes=tuple(b for _, b in pairs),
        source="openai.completions",
    )


def parse_chat_logprobs(response, choice: int = 0) -> TokenLogprobs:
    """OpenAI chat completions (``logprobs: true``, ``top_logprobs: k``)."""
    lp, w = _choice_logprobs(response, choice, "logprobs=true")
    content = get_field(lp, "content", w)
    if content is None:
        raise ValueError(f"{w}.content: null (the reply has no token log-probabilities)")
    tokens: list[str] = []
    logprobs: list[float | None] = []
    raw: list[bytes | None] = []
    tops: list[dict[str, float] | None] = []
    any_top = False
    for i, e in enumerate(as_list(content, f"{w}.content")):
        we = f"{w}.content[{i}]"
        tokens.append(as_str(get_field(e, "token", we), f"{we}.token"))
        logprobs.append(as_logprob(get_field(e, "logprob", we), f"{we}.logprob"))
        raw.append(as_bytes(e.get("bytes"), f"{we}.bytes"))
        t = e.get("top_logprobs")
        if t is None:
            tops.append(None)
            continue
        any_top = True
        d: dict[str, float] = {}
        for j, alt in enumerate(as_list(t, f"{we}.top_logprobs")):
            wa = f"{we}.top_logprobs[{j}]"
            d.setdefault(
                as_str(get_field(alt, "token", wa), f"{wa}.token"),
                as_logprob(get_field(alt, "logprob", wa), f"{wa}.logprob"),
            )
        tops.append(d)
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(logprobs),
        top_logprobs=tuple(tops) if any_top else None,
        token_bytes=tuple(raw),
        source="openai.chat",
    )
