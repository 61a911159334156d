"""vLLM's ``prompt_logprobs`` extension -> :class:`~quasispecies.bridge.records.TokenLogprobs`.

``choices[i].prompt_logprobs`` (or a top-level ``prompt_logprobs``) is ``null`` for the
first prompt token, then one object ``{token_id: {logprob, rank, decoded_token}}`` per
prompt token, holding the prompt token and the top alternatives.
"""

from __future__ import annotations

import operator

from quasispecies.bridge.api_fields import (
    as_list,
    as_logprob,
    as_str,
    get_choice,
    get_field,
    load_response,
)
from quasispecies.bridge.records import TokenLogprobs

__all__ = ["parse_vllm_prompt_logprobs"]


def _token_ids(ids) -> list[int]:
    """``ids`` (a list, tuple or array of integers) as a list of ints; ``ValueError``
    naming ``prompt_token_ids`` otherwise."""
    if isinstance(ids, str | bytes | dict):
        raise ValueError(
            f"prompt_token_ids: expected a list of token ids, got {type(ids).__name__}"
        )
    try:
        ids = list(ids)
    except TypeError:
        raise ValueError(
            f"prompt_token_ids: expected a list of token ids, got {type(ids).__name__}"
        ) from None
    out = []
    for j, t in enumerate(ids):
        if isinstance(t, bool):
            raise ValueError(f"prompt_token_ids[{j}]: {t!r} is not a token id")
        try:
            out.append(operator.index(t))
        except TypeError:
            raise ValueError(f"prompt_token_ids[{j}]: {t!r} is not a token id") from None
    return out


def parse_vllm_prompt_logprobs(response, choice: int = 0, prompt_token_ids=None) -> TokenLogprobs:
    """vLLM's ``prompt_logprobs`` (completions or chat): one entry per prompt token.

    Each entry maps token ids to ``{logprob, rank, decoded_token}``; it holds the
    prompt token and the top alternatives. The prompt token is identified by
    ``prompt_token_ids`` (the argument, or the response's own field); without them,
    by vLLM's ordering, which puts the prompt token first. The first prompt token has
    no entry (``null``) and its text is unknown (``""``) unless another entry names it.
    """
    obj = load_response(response)
    where = "response"
    plp = None
    ch: dict = {}
    if isinstance(obj, dict) and "choices" in obj:
        ch = get_choice(obj, choice)
        plp = ch.get("prompt_logprobs")
        where = f"response.choices[{choice}]"
    if plp is None and isinstance(obj, dict):
        plp = obj.get("prompt_logprobs")
        if plp is not None:
            where = "response"
    if plp is None:
        raise ValueError(f"{where}.prompt_logprobs: missing or null (request prompt_logprobs=<k>)")
    entries = as_list(plp, f"{where}.prompt_logprobs")
    if prompt_token_ids is None:
        prompt_token_ids = ch.get("prompt_token_ids") or (
            obj.get("prompt_token_ids") if isinstance(obj, dict) else None
        )
    if prompt_token_ids is not None:
        prompt_token_ids = _token_ids(prompt_token_ids)
        if len(prompt_token_ids) != len(entries):
            raise ValueError(
                f"prompt_token_ids: {len(prompt_token_ids)} ids for {len(entries)} prompt_logprobs entries"
            )
    tokens: list[str] = []
    logprobs: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    ids: list[int] = []
    for i, e in enumerate(entries):
        we = f"{where}.prompt_logprobs[{i}]"
        if e is None:
            tokens.append("")
            logprobs.append(None)
            tops.append(None)
            ids.append(prompt_token_ids[i] if prompt_token_ids is not None else -1)
            continue
        if not isinstance(e, dict) or not e:
            raise ValueError(
                f"{we}: expected a non-empty object token_id -> {{logprob, rank, decoded_token}}"
            )
        parsed = {}
        for k, v in e.items():
            try:
                tid = int(k)
            except ValueError:
                raise ValueError(f"{we}: key {k!r} is not a token id") from None
            lp = as_logprob(get_field(v, "logprob", f"{we}[{k!r}]"), f"{we}[{k!r}].logprob")
            text = v.get("decoded_token")
            parsed[tid] = (
                lp,
                "" if text is None else as_str(text, f"{we}[{k!r}].decoded_token"),
                v.get("rank"),
            )
        chosen = prompt_token_ids[i] if prompt_token_ids is not None else next(iter(parsed))
        if chosen not in parsed:
            raise ValueError(
                f"{we}: the prompt token {chosen} is not among the entries {sorted(parsed)}"
            )
        lp, text, _ = parsed[chosen]
        tokens.append(text)
        logprobs.append(lp)
        ids.append(chosen)
        d: dict[str, float] = {}
        for _tid, (alp, atext, _rank) in sorted(parsed.items(), key=lambda kv: -kv[1][0]):
            d.setdefault(atext, alp)
        tops.append(d)
    if ids and ids[0] == -1:
        id_tuple = None
    else:
        id_tuple = tuple(ids)
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(logprobs),
        top_logprobs=tuple(tops),
        token_ids=id_tuple,
        source="vllm.prompt_logprobs",
    )
