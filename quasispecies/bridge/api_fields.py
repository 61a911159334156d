"""Checked access to the JSON fields of LM-server responses (shared by the API parsers).

Every function takes ``where``, the JSON path of the value (``response.choices[0]...``),
and raises ``ValueError`` naming it when the value has the wrong type or range, so a
malformed response is reported at the field that is wrong. Log-probabilities are
natural logs; ``-inf`` (probability 0) is legal, ``NaN`` and ``+inf`` are not.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "BYTES_TOKEN",
    "as_bytes",
    "as_list",
    "as_logprob",
    "as_optional_logprob",
    "as_str",
    "get_choice",
    "get_field",
    "load_response",
    "prob_to_logprob",
    "token_and_bytes",
]

#: OpenAI's rendering of a token that is not valid UTF-8 on its own: ``bytes:\xNN...``.
BYTES_TOKEN = re.compile(r"^bytes:((?:\\x[0-9a-fA-F]{2})+)$")


def load_response(obj) -> Any:
    """``obj`` as parsed JSON: a dict/list is returned as is, ``str``/``bytes`` are decoded
    (UTF-8) and parsed; malformed or truncated JSON is a ``ValueError``."""
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
        except (ValueError, RecursionError) as err:  # a >4300-digit integer, deep nesting
            raise ValueError(f"response: unreadable JSON ({err})") from None
    return obj


def get_field(obj, key, where: str):
    """``obj[key]`` of a JSON object; ``ValueError`` naming ``where.key`` if ``obj`` is not
    an object or the field is missing."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}.{key}: missing field")
    return obj[key]


def as_list(x, where: str) -> list:
    """``x`` if it is a JSON array, else ``ValueError`` naming ``where``."""
    if not isinstance(x, list):
        raise ValueError(f"{where}: expected a list, got {type(x).__name__}")
    return x


def _float(x: int | float, where: str) -> float:
    try:
        return float(x)
    except OverflowError:  # an integer beyond float range
        raise ValueError(
            f"{where}: an integer of {int(x).bit_length()} bits is out of range"
        ) from None


def as_logprob(x, where: str) -> float:
    """A required log-probability: a number <= +0, ``-inf`` (also as a string); not NaN/+inf."""
    if x is None:
        raise ValueError(f"{where}: null where a log-probability is required")
    if isinstance(x, str) and x.strip().lower() in ("-inf", "-infinity"):
        return -math.inf
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"{where}: expected a number, got {x!r}")
    x = _float(x, where)
    if math.isnan(x) or x == math.inf:
        raise ValueError(f"{where}: {x!r} is not a log-probability")
    return x


def as_optional_logprob(x, where: str) -> float | None:
    """:func:`as_logprob`, with ``null`` kept as ``None`` (no conditional exists)."""
    return None if x is None else as_logprob(x, where)


def prob_to_logprob(x, where: str) -> float:
    """A probability in ``[0, 1]`` as its natural log (``0`` -> ``-inf``)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"{where}: expected a probability, got {x!r}")
    if not 0.0 <= _float(x, where) <= 1.0:
        raise ValueError(f"{where}: probability {x!r} outside [0, 1]")
    return -math.inf if x == 0 else math.log(float(x))


def as_str(x, where: str) -> str:
    """``x`` if it is a string, else ``ValueError`` naming ``where``."""
    if not isinstance(x, str):
        raise ValueError(f"{where}: expected a string, got {type(x).__name__}")
    return x


def as_bytes(x, where: str) -> bytes | None:
    """A JSON ``bytes`` array (values 0..255) as :class:`bytes`; ``None`` stays ``None``."""
    if x is None:
        return None
    lst = as_list(x, where)
    if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in lst):
        raise ValueError(f"{where}: expected a list of byte values 0..255")
    return bytes(lst)


def token_and_bytes(tok: str) -> tuple[str, bytes]:
    """``(token, raw bytes)`` of a served token string; OpenAI legacy writes a token that
    holds part of a UTF-8 character as ``bytes:\\xe2\\x80``, which is decoded here."""
    m = BYTES_TOKEN.match(tok)
    if m:
        raw = bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-fA-F]{2})", m.group(1)))
        return tok, raw
    return tok, tok.encode("utf-8")


def get_choice(obj, choice: int, where: str = "response") -> dict:
    """``obj.choices[choice]`` of an OpenAI-style response, checked to be an object."""
    choices = as_list(get_field(obj, "choices", where), f"{where}.choices")
    if not choices or not 0 <= choice < len(choices):
        raise ValueError(f"{where}.choices: no choice {choice} (there are {len(choices)})")
    ch = choices[choice]
    if not isinstance(ch, dict):
        raise ValueError(f"{where}.choices[{choice}]: expected a JSON object")
    return ch
