"""A ``tokenizers.Tokenizer`` rebuilt from the vocabulary and merges stored in a GGUF.

GGUF files with ``tokenizer.ggml.model = "gpt2"`` carry a byte-level BPE: the token
strings (bytes mapped to printable characters as in GPT-2, e.g. ``Ġ`` for a space),
the ranked merges ``"a b"`` and a pre-tokenizer name (``tokenizer.ggml.pre``). We
rebuild the same pipeline llama.cpp runs:

1. split the text with the pre-tokenizer's regular expressions, chosen by
   ``tokenizer.ggml.pre`` exactly as llama.cpp chooses them: ``smollm`` (every Unicode
   number character on its own, then the GPT-2 pattern), ``gpt2``/``gpt-2`` (GPT-2),
   ``llama-bpe``/``llama3`` (Llama 3: digits in runs of up to three, case-insensitive
   contractions, and a pre-token found whole in the vocabulary is not merged further),
   ``qwen2`` (Qwen2/2.5/3: the Llama 3 pattern with single digits), ``default``
   (llama.cpp's fallback: punctuation runs, GPT-2, digit runs). Any other name is a
   ``ValueError`` naming it, never a silent fallback;
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
    "pre_tokenizer_patterns",
    "tokenizer_from_vocab",
]

# llama.cpp's patterns (src/llama-vocab.cpp, llm_tokenizer_bpe), applied one after another.
# _GPT2 ends in "|\s+" where llama.cpp's has none: a whitespace run the other branches
# leave unmatched is its own piece either way (tests/bridge/test_pretokenizers.py).
_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# llama.cpp writes the HF "(?i:'s|'t|...)" out case by case (its engine has no (?i:)),
# which also keeps Unicode case folding (the long s, the Kelvin sign) out of the match.
_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_TAIL = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_LLAMA3 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}" + _TAIL
_QWEN2 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}" + _TAIL
_DEFAULT = (
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
)
_PATTERNS: dict[str, tuple[str, ...]] = {
    "default": _DEFAULT,
    "gpt-2": (_GPT2,),
    "gpt2": (_GPT2,),
    "smollm": (r"\p{N}", _GPT2),
    "llama3": (_LLAMA3,),
    "llama-v3": (_LLAMA3,),
    "llama-bpe": (_LLAMA3,),
    "qwen2": (_QWEN2,),
    "deepseek-r1-qwen": (_QWEN2,),
}
# llama.cpp matches a whole pre-token against the vocabulary before merging for these
_IGNORE_MERGES = frozenset({"llama3", "llama-v3", "llama-bpe"})
SUPPORTED_PRE_TOKENIZERS = tuple(sorted(_PATTERNS))


def pre_tokenizer_patterns(pre: str) -> tuple[str, ...]:
    """The regular expressions llama.cpp splits text with for ``tokenizer.ggml.pre = pre``
    (each applied to the pieces the previous one left, matches and gaps both kept)."""
    if pre not in _PATTERNS:
        raise ValueError(
            f"tokenizer: pre-tokenizer {pre!r} is not supported; supported: {SUPPORTED_PRE_TOKENIZERS}"
        )
    return _PATTERNS[pre]


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
    patterns = pre_tokenizer_patterns(pre)
    if not merges:
        raise ValueError("tokenizer: the GGUF has no merges (tokenizer.ggml.merges)")
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = []
    for m in merges:
        left, sep, right = m.partition(" ")
        if not sep:
            raise ValueError(f"tokenizer: malformed merge {m!r} (expected 'left right')")
        pairs.append((left, right))
    bpe = models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, ignore_merges=pre in _IGNORE_MERGES)
    tok = Tokenizer(bpe)
    splits = [pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for p in patterns]
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
