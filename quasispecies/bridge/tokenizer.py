"""A ``tokenizers.Tokenizer`` rebuilt from the vocabulary and merges stored in a GGUF.

GGUF files with ``tokenizer.ggml.model = "gpt2"`` carry a byte-level BPE: the token
strings (bytes mapped to printable characters as in GPT-2, e.g. ``Ġ`` for a space),
the ranked merges ``"a b"`` and a pre-tokenizer name (``tokenizer.ggml.pre``). We
rebuild the same pipeline llama.cpp runs:

1. split the text with the pre-tokenizer's regular expressions (for ``smollm``: every
   Unicode number character on its own, then the GPT-2 pattern);
2. map bytes to the GPT-2 alphabet and apply the merges (``tokenizers.models.BPE``);
3. control / user-defined tokens (``<|im_start|>`` …) match as whole special tokens.

Decoding maps the byte alphabet back to bytes and then to UTF-8 text.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

__all__ = [
    "SUPPORTED_PRE_TOKENIZERS",
    "gpt2_byte_decoder",
    "gpt2_token_bytes",
    "tokenizer_from_vocab",
]

# llama.cpp's patterns (llama-vocab.cpp), applied one after another.
_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_LLAMA3 = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_PATTERNS: dict[str, tuple[str, ...]] = {
    "default": (_GPT2,),
    "gpt-2": (_GPT2,),
    "gpt2": (_GPT2,),
    "smollm": (r"\p{N}", _GPT2),
    "llama3": (_LLAMA3,),
    "llama-v3": (_LLAMA3,),
    "llama-bpe": (_LLAMA3,),
}
SUPPORTED_PRE_TOKENIZERS = tuple(sorted(_PATTERNS))

_CONTROL, _USER_DEFINED = 3, 4


def tokenizer_from_vocab(
    tokens: Sequence[str],
    merges: Sequence[str],
    token_types: Sequence[int],
    *,
    model: str = "gpt2",
    pre: str = "default",
):
    """Build the byte-level BPE tokenizer described by GGUF tokenizer metadata.

    Parameters
    ----------
    tokens : token strings, index = token id (``tokenizer.ggml.tokens``)
    merges : ranked merges ``"left right"`` (``tokenizer.ggml.merges``)
    token_types : llama.cpp token types; 3 (control) and 4 (user-defined) become
        special tokens matched whole in the input text
    model : ``tokenizer.ggml.model``; only ``"gpt2"`` (byte-level BPE) is supported
    pre : ``tokenizer.ggml.pre``, one of :data:`SUPPORTED_PRE_TOKENIZERS`
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if model != "gpt2":
        raise ValueError(
            f"tokenizer: GGUF tokenizer model {model!r} is not supported (only 'gpt2', the "
            "byte-level BPE); pass tokenizer=<a tokenizers.Tokenizer> to GGUFModel instead"
        )
    if pre not in _PATTERNS:
        raise ValueError(
            f"tokenizer: pre-tokenizer {pre!r} is not supported; supported: {SUPPORTED_PRE_TOKENIZERS}"
        )
    if not merges:
        raise ValueError("tokenizer: the GGUF has no merges (tokenizer.ggml.merges)")
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = []
    for m in merges:
        left, sep, right = m.partition(" ")
        if not sep:
            raise ValueError(f"tokenizer: malformed merge {m!r} (expected 'left right')")
        pairs.append((left, right))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False))
    splits = [
        pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for p in _PATTERNS[pre]
    ]
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    special = [
        AddedToken(t, special=True, normalized=False)
        for t, kind in zip(tokens, token_types, strict=True)
        if kind in (_CONTROL, _USER_DEFINED)
    ]
    if special:
        tok.add_special_tokens(special)
    return tok


@lru_cache(maxsize=1)
def gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character alphabet for the 256 byte values, inverted
    (character -> byte): the map byte-level BPE token strings are written in
    (Radford et al. 2019, ``bytes_to_unicode``)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def gpt2_token_bytes(token: str) -> bytes | None:
    """Raw bytes of a byte-level BPE token string (``"Ġthe"`` -> ``b" the"``); ``None``
    if it uses characters outside the GPT-2 byte alphabet (e.g. a special token)."""
    table = gpt2_byte_decoder()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError:
        return None
