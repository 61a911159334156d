"""Pre-tokenizers chosen by ``tokenizer.ggml.pre`` (qwen2, llama-bpe, smollm, gpt2 and
llama.cpp's default), on tricky texts, against two independent references:

* the regular expressions llama.cpp runs, copied below from its ``src/llama-vocab.cpp``
  (``llm_tokenizer_bpe``) and applied with the ``regex`` package the way
  ``unicode_regex_split`` applies them (one after another, matches and gaps both kept);
* transformers' own GGUF tokenizer conversion (``AutoTokenizer.from_pretrained(...,
  gguf_file=...)``) for ``qwen2`` and ``llama-bpe``, the two it maps to the same regex.
"""

from __future__ import annotations

import pytest
import regex

from quasispecies.bridge.tokenizer import SUPPORTED_PRE_TOKENIZERS, tokenizer_from_vocab
from tests.bridge.gguf_fixtures import QWEN_MERGES, qwen_hf_weights, qwen_vocab, write_qwen_gguf

# llama.cpp src/llama-vocab.cpp, verbatim (C string escapes undone)
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_CASED = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
LLAMA_CPP = {
    "gpt2": [_GPT2],  # LLAMA_VOCAB_PRE_TYPE_GPT2 ("gpt-2")
    "smollm": [r"\p{N}", _GPT2],  # LLAMA_VOCAB_PRE_TYPE_SMOLLM
    "llama-bpe": [  # LLAMA_VOCAB_PRE_TYPE_LLAMA3
        _CASED + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
        r"|\s+(?!\S)|\s+"
    ],
    "qwen2": [  # LLAMA_VOCAB_PRE_TYPE_QWEN2
        _CASED + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
        r"|\s+(?!\S)|\s+"
    ],
    "default": [  # LLAMA_VOCAB_PRE_TYPE_DEFAULT
        r"[\p{P}\$\+<=>\^~\|]+",
        _GPT2,
        r"\p{N}+",
        r"[0-9][0-9][0-9]",
    ],
}

TEXTS = [
    "I'M don't we'LL they'Re it's O'Neil's",
    "12345 1234567 x1y22z333 ١٢٣ ½ 3.14159",
    "日本語のテキスト、中文！한국어 テスト123",
    "a   b\t\t c\n\n\n d  \r\n e   ",
    "Hello!!! ...? $100+5=<x>^~|y #tag @me",
    "emoji 😀👍🏽 combining e\u0301 and \u00a0nbsp",
    "  leading and trailing  ",
    "'ſ and 'K (long s, Kelvin sign)",
    "line\nbreak\r\n\r\nthen  \n  indented\n",
]


def reference_split(text: str, patterns: list[str]) -> list[str]:
    pieces = [text]
    for p in patterns:
        out = []
        for piece in pieces:
            pos = 0
            for m in regex.finditer(p, piece):
                if m.start() > pos:
                    out.append(piece[pos : m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                pos = m.end()
            if pos < len(piece):
                out.append(piece[pos:])
        pieces = out
    return pieces


def _tokenizer(pre):
    tokens, types = qwen_vocab()
    return tokenizer_from_vocab(tokens, QWEN_MERGES, types, pre=pre)


@pytest.mark.parametrize("pre", sorted(LLAMA_CPP))
def test_split_matches_llama_cpp_regexes(pre):
    tok = _tokenizer(pre)
    for text in TEXTS:
        got = [text[a:b] for _, (a, b) in tok.pre_tokenizer.pre_tokenize_str(text)]
        assert got == reference_split(text, LLAMA_CPP[pre]), (pre, text)


def test_the_variants_really_differ():
    """Sanity of the check above: the five rules split these texts differently."""
    text = "I'M 12345 ok!!!"
    splits = {pre: tuple(reference_split(text, p)) for pre, p in LLAMA_CPP.items()}
    assert splits["qwen2"] != splits["llama-bpe"]  # single digits vs runs of three
    assert splits["smollm"] != splits["gpt2"]  # isolated digits
    assert splits["default"] != splits["gpt2"]  # punctuation runs split first
    assert splits["gpt2"][:2] == ("I", "'") and splits["qwen2"][:2] == ("I", "'M")


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    from transformers import AutoTokenizer

    from quasispecies.bridge import GGUFModel

    out = {}
    folder = tmp_path_factory.mktemp("tok")
    w, cfg = qwen_hf_weights(0, "qwen2", n_layers=1)
    for pre in ("qwen2", "llama-bpe"):
        path, _ = write_qwen_gguf(folder / f"{pre}.gguf", w, cfg, pre=pre)
        out[pre] = GGUFModel(path), AutoTokenizer.from_pretrained(folder, gguf_file=path.name)
    return out


@pytest.mark.parametrize("pre", ["qwen2", "llama-bpe"])
def test_token_ids_match_transformers_gguf_tokenizer(hf_pair, pre):
    lm, hf = hf_pair[pre]
    # transformers keeps HF's "(?i:'s|...)": Unicode case folding there (the long s, the
    # Kelvin sign) is exactly what llama.cpp's spelled-out classes leave out, so that
    # text is compared with the regex reference only
    for text in [t for t in TEXTS if "ſ" not in t] + ["<|im_start|>user\n12345<|im_end|>"]:
        assert lm.encode(text) == hf.encode(text, add_special_tokens=False), (pre, text)


def test_merges_follow_the_pre_tokenizer():
    """The same vocabulary and merges give different ids: '123' is one token where the
    pre-tokenizer keeps digit runs, three where it isolates digits; "'LL" is one
    contraction token only for the case-insensitive rules."""
    tokens, _ = qwen_vocab()

    def pieces(pre, text):
        return [tokens[i] for i in _tokenizer(pre).encode(text, add_special_tokens=False).ids]

    # ' 123' is one pre-token; by rank "1 2" (then "12 3") comes before "Ġ 1"
    assert pieces("gpt2", "x 123") == ["x", "Ġ", "123"]
    assert pieces("smollm", "x 123") == ["x", "Ġ", "1", "2", "3"]  # digits split off first
    assert pieces("llama-bpe", "x123") == ["x", "123"]
    assert pieces("qwen2", "x123") == ["x", "1", "2", "3"]
    assert pieces("smollm", "x123") == ["x", "1", "2", "3"]
    assert pieces("qwen2", "we'LL") == ["w", "e", "'LL"]
    assert pieces("gpt2", "we'LL") == ["w", "e", "'", "L", "L"]


def test_llama_bpe_takes_a_whole_vocabulary_word_before_merging():
    """llama.cpp's ignore_merges for llama-bpe: a pre-token that is itself in the
    vocabulary is one token even when no merge path reaches it."""
    tokens, types = qwen_vocab()
    tokens, types = [*tokens, "zq"], [*types, 1]
    tok = {
        p: tokenizer_from_vocab(tokens, QWEN_MERGES, types, pre=p) for p in ("llama-bpe", "qwen2")
    }
    assert [tokens[i] for i in tok["llama-bpe"].encode("zq").ids] == ["zq"]
    assert [tokens[i] for i in tok["qwen2"].encode("zq").ids] == ["z", "q"]


def test_unknown_pre_tokenizer_is_named():
    tokens, types = qwen_vocab()
    for bad in ("qwen35", "deepseek-v3", ""):
        with pytest.raises(ValueError, match=f"pre-tokenizer {bad!r} is not supported"):
            tokenizer_from_vocab(tokens, QWEN_MERGES, types, pre=bad)
    assert {"qwen2", "llama-bpe", "smollm", "gpt2", "default"} <= set(SUPPORTED_PRE_TOKENIZERS)
