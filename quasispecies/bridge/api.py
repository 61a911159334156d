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
llama.cpp ``/completion``               ``completion_probabilities[j]``: ``{id, token,
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

import json
import math
import re
from typing import Any

from quasispecies.bridge.records import TokenLogprobs

__all__ = [
    "parse_chat_logprobs",
    "parse_completion_logprobs",
    "parse_llamacpp_probabilities",
    "parse_logprobs",
    "parse_vllm_prompt_logprobs",
]

_BYTES_TOKEN = re.compile(r"^bytes:((?:\\x[0-9a-fA-F]{2})+)$")


def _load(obj) -> Any:
    if isinstance(obj, bytes | bytearray):
        try:
            obj = obj.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"response: not UTF-8 ({err})") from None
    if isinstance(obj, str):
        try:
            return json.loads(obj)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"response: malformed or truncated JSON ({err.msg} at char {err.pos})"
            ) from None
    return obj


def _get(obj, key, where: str):
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}.{key}: missing field")
    return obj[key]


def _list(x, where: str) -> list:
    if not isinstance(x, list):
        raise ValueError(f"{where}: expected a list, got {type(x).__name__}")
    return x


def _logprob(x, where: str) -> float:
    """A required log-probability: a number <= +0, ``-inf`` (also as a string); not NaN/+inf."""
    if x is None:
        raise ValueError(f"{where}: null where a log-probability is required")
    if isinstance(x, str) and x.strip().lower() in ("-inf", "-infinity"):
        return -math.inf
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"{where}: expected a number, got {x!r}")
    x = float(x)
    if math.isnan(x) or x == math.inf:
        raise ValueError(f"{where}: {x!r} is not a log-probability")
    return x


def _logprob_or_none(x, where: str) -> float | None:
    return None if x is None else _logprob(x, where)


def _prob_to_logprob(x, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"{where}: expected a probability, got {x!r}")
    if not 0.0 <= float(x) <= 1.0:
        raise ValueError(f"{where}: probability {x!r} outside [0, 1]")
    return -math.inf if x == 0 else math.log(float(x))


def _str(x, where: str) -> str:
    if not isinstance(x, str):
        raise ValueError(f"{where}: expected a string, got {type(x).__name__}")
    return x


def _bytes(x, where: str) -> bytes | None:
    if x is None:
        return None
    lst = _list(x, where)
    if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in lst):
        raise ValueError(f"{where}: expected a list of byte values 0..255")
    return bytes(lst)


def _token_and_bytes(tok: str) -> tuple[str, bytes]:
    """OpenAI legacy writes a partial UTF-8 token as ``bytes:\\xe2\\x80``."""
    m = _BYTES_TOKEN.match(tok)
    if m:
        raw = bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-fA-F]{2})", m.group(1)))
        return tok, raw
    return tok, tok.encode("utf-8")


def _choice(obj, choice: int, where: str = "response") -> dict:
    choices = _list(_get(obj, "choices", where), f"{where}.choices")
    if not choices or not 0 <= choice < len(choices):
        raise ValueError(f"{where}.choices: no choice {choice} (there are {len(choices)})")
    ch = choices[choice]
    if not isinstance(ch, dict):
        raise ValueError(f"{where}.choices[{choice}]: expected a JSON object")
    return ch


def parse_completion_logprobs(response, choice: int = 0) -> TokenLogprobs:
    """OpenAI legacy completions (``/v1/completions``, ``logprobs=k``, optionally ``echo``)."""
    obj = _load(response)
    ch = _choice(obj, choice)
    w = f"response.choices[{choice}].logprobs"
    lp = ch.get("logprobs")
    if lp is None:
        raise ValueError(f"{w}: missing or null (request logprobs=<k>)")
    tokens = [
        _str(t, f"{w}.tokens[{i}]")
        for i, t in enumerate(_list(_get(lp, "tokens", w), f"{w}.tokens"))
    ]
    vals = _list(_get(lp, "token_logprobs", w), f"{w}.token_logprobs")
    if len(vals) != len(tokens):
        raise ValueError(f"{w}.token_logprobs: {len(vals)} entries for {len(tokens)} tokens")
    logprobs = [_logprob_or_none(v, f"{w}.token_logprobs[{i}]") for i, v in enumerate(vals)]
    tops: list[dict[str, float] | None] | None = None
    if lp.get("top_logprobs") is not None:
        raw_tops = _list(lp["top_logprobs"], f"{w}.top_logprobs")
        if len(raw_tops) != len(tokens):
            raise ValueError(f"{w}.top_logprobs: {len(raw_tops)} entries for {len(tokens)} tokens")
        tops = []
        for i, d in enumerate(raw_tops):
            if d is None:
                tops.append(None)
                continue
            if not isinstance(d, dict):
                raise ValueError(f"{w}.top_logprobs[{i}]: expected an object token -> logprob")
            tops.append({k: _logprob(v, f"{w}.top_logprobs[{i}][{k!r}]") for k, v in d.items()})
    pairs = [_token_and_bytes(t) for t in tokens]
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(logprobs),
        top_logprobs=None if tops is None else tuple(tops),
        token_bytes=tuple(b for _, b in pairs),
        source="openai.completions",
    )


def parse_chat_logprobs(response, choice: int = 0) -> TokenLogprobs:
    """OpenAI chat completions (``logprobs: true``, ``top_logprobs: k``)."""
    obj = _load(response)
    ch = _choice(obj, choice)
    w = f"response.choices[{choice}].logprobs"
    lp = ch.get("logprobs")
    if lp is None:
        raise ValueError(f"{w}: missing or null (request logprobs=true)")
    content = _get(lp, "content", w)
    if content is None:
        raise ValueError(f"{w}.content: null (the reply has no token log-probabilities)")
    tokens: list[str] = []
    logprobs: list[float | None] = []
    raw: list[bytes | None] = []
    tops: list[dict[str, float] | None] = []
    any_top = False
    for i, e in enumerate(_list(content, f"{w}.content")):
        we = f"{w}.content[{i}]"
        tokens.append(_str(_get(e, "token", we), f"{we}.token"))
        logprobs.append(_logprob(_get(e, "logprob", we), f"{we}.logprob"))
        raw.append(_bytes(e.get("bytes"), f"{we}.bytes"))
        t = e.get("top_logprobs")
        if t is None:
            tops.append(None)
            continue
        any_top = True
        d: dict[str, float] = {}
        for j, alt in enumerate(_list(t, f"{we}.top_logprobs")):
            wa = f"{we}.top_logprobs[{j}]"
            d.setdefault(
                _str(_get(alt, "token", wa), f"{wa}.token"),
                _logprob(_get(alt, "logprob", wa), f"{wa}.logprob"),
            )
        tops.append(d)
    return TokenLogprobs(
        tokens=tuple(tokens),
        logprobs=tuple(logprobs),
        top_logprobs=tuple(tops) if any_top else None,
        token_bytes=tuple(raw),
        source="openai.chat",
    )


def parse_vllm_prompt_logprobs(response, choice: int = 0, prompt_token_ids=None) -> TokenLogprobs:
    """vLLM's ``prompt_logprobs`` (completions or chat): one entry per prompt token.

    Each entry maps token ids to ``{logprob, rank, decoded_token}``; it holds the
    prompt token and the top alternatives. The prompt token is identified by
    ``prompt_token_ids`` (the argument, or the response's own field); without them,
    by vLLM's ordering, which puts the prompt token first. The first prompt token has
    no entry (``null``) and its text is unknown (``""``) unless another entry names it.
    """
    obj = _load(response)
    where = "response"
    plp = None
    ch: dict = {}
    if isinstance(obj, dict) and "choices" in obj:
        ch = _choice(obj, choice)
        plp = ch.get("prompt_logprobs")
        where = f"response.choices[{choice}]"
    if plp is None and isinstance(obj, dict):
        plp = obj.get("prompt_logprobs")
        if plp is not None:
            where = "response"
    if plp is None:
        raise ValueError(f"{where}.prompt_logprobs: missing or null (request prompt_logprobs=<k>)")
    entries = _list(plp, f"{where}.prompt_logprobs")
    if prompt_token_ids is None:
        prompt_token_ids = ch.get("prompt_token_ids") or (
            obj.get("prompt_token_ids") if isinstance(obj, dict) else None
        )
    if prompt_token_ids is not None:
        prompt_token_ids = [int(i) for i in _list(list(prompt_token_ids), "prompt_token_ids")]
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
            lp = _logprob(_get(v, "logprob", f"{we}[{k!r}]"), f"{we}[{k!r}].logprob")
            text = v.get("decoded_token")
            parsed[tid] = (
                lp,
                "" if text is None else _str(text, f"{we}[{k!r}].decoded_token"),
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


def parse_llamacpp_probabilities(response) -> TokenLogprobs:
    """llama.cpp server ``completion_probabilities`` (all three variants, see the module doc)."""
    obj = _load(response)
    entries = _list(
        _get(obj, "completion_probabilities", "response"), "response.completion_probabilities"
    )
    tokens: list[str] = []
    logprobs: list[float | None] = []
    tops: list[dict[str, float] | None] = []
    raw: list[bytes | None] = []
    ids: list = []
    variant = "llama.cpp"
    for i, e in enumerate(entries):
        we = f"response.completion_probabilities[{i}]"
        if not isinstance(e, dict):
            raise ValueError(f"{we}: expected a JSON object")
        if "probs" in e and "token" not in e:  # before 2025: {content, probs: [{tok_str, prob}]}
            variant = "llama.cpp.probs"
            tok = _str(_get(e, "content", we), f"{we}.content")
            d: dict[str, float] = {}
            for j, alt in enumerate(_list(e["probs"], f"{we}.probs")):
                wa = f"{we}.probs[{j}]"
                d.setdefault(
                    _str(_get(alt, "tok_str", wa), f"{wa}.tok_str"),
                    _prob_to_logprob(_get(alt, "prob", wa), f"{wa}.prob"),
                )
            tokens.append(tok)
            logprobs.append(d.get(tok))  # None when the chosen token is not listed
            tops.append(d)
            raw.append(tok.encode("utf-8"))
            ids.append(None)
            continue
        tok = _str(_get(e, "token", we), f"{we}.token")
        tokens.append(tok)
        b = _bytes(e.get("bytes"), f"{we}.bytes")
        raw.append(b if b is not None else tok.encode("utf-8"))
        ids.append(e.get("id"))
        if "logprob" in e:
            logprobs.append(_logprob(e["logprob"], f"{we}.logprob"))
            alts, key = e.get("top_logprobs"), "logprob"
        elif "prob" in e:
            variant = "llama.cpp.post_sampling"
            logprobs.append(_prob_to_logprob(e["prob"], f"{we}.prob"))
            alts, key = e.get("top_probs"), "prob"
        else:
            raise ValueError(f"{we}: has neither 'logprob', 'prob' nor 'probs'")
        if alts is None:
            tops.append(None)
            continue
        d = {}
        for j, alt in enumerate(_list(alts, f"{we}.top_{key}s")):
            wa = f"{we}.top_{key}s[{j}]"
            raw_val = _get(alt, key, wa)
            val = (
                _logprob(raw_val, f"{wa}.{key}")
                if key == "logprob"
                else _prob_to_logprob(raw_val, f"{wa}.{key}")
            )
            d.setdefault(_str(_get(alt, "token", wa), f"{wa}.token"), val)
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


def parse_logprobs(response, choice: int = 0) -> TokenLogprobs:
    """Detect the format of ``response`` (dict or JSON text) and parse it.

    Order: llama.cpp ``completion_probabilities``; vLLM ``prompt_logprobs`` (when the
    choice has no completion logprobs); chat ``logprobs.content``; legacy completions.
    """
    obj = _load(response)
    if not isinstance(obj, dict):
        raise ValueError(f"response: expected a JSON object, got {type(obj).__name__}")
    if "completion_probabilities" in obj:
        return parse_llamacpp_probabilities(obj)
    if "choices" not in obj:
        if obj.get("prompt_logprobs") is not None:
            return parse_vllm_prompt_logprobs(obj)
        raise ValueError(
            "response: no 'choices' or 'completion_probabilities'; not a known log-prob shape"
        )
    ch = _choice(obj, choice)
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
