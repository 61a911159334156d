"""``load_lm(spec)``: one string names any model (embedded, gguf:PATH, hf:PATH, a server)."""

from __future__ import annotations

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.bridge import GGUFModel, RemoteLM, TokenizedLM, load_lm
from quasispecies.bridge.spec import SPEC_FORMS, parse_spec
from tests.lm_support import reference_logprobs, tiny_hf_weights, tiny_vocab, write_tiny_gguf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    w, cfg = tiny_hf_weights(3)
    path = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", w, cfg)
    return path, w, cfg


def test_exported():
    assert qs.bridge.load_lm is load_lm


def test_gguf_spec(tiny):
    path, w, cfg = tiny
    lm = load_lm(f"gguf:{path}")
    assert isinstance(lm, GGUFModel) and lm.vocab_size == len(tiny_vocab()[0])
    ids = lm.encode("the cat")
    ref = reference_logprobs(w, cfg, ids)  # float64 NumPy forward pass (independent)
    want = sum(ref[i - 1, ids[i]] for i in range(1, len(ids)))
    # float32 JAX vs float64 NumPy over a few tokens
    assert abs(lm.score(ids[:1], ids[1:]) - want) < 1e-4


def test_remote_spec_makes_no_request():
    lm = load_lm("http://127.0.0.1:9/v1#Qwen/Qwen2.5-7B", retries=1, batch_size=4)
    assert isinstance(lm, RemoteLM)
    assert lm.base_url == "http://127.0.0.1:9/v1" and lm.model == "Qwen/Qwen2.5-7B"
    assert lm.batch_size == 4 and lm.client.retries == 1 and lm.requests == 0
    assert load_lm("https://example.invalid/v1").model is None
    assert parse_spec(" embedded ") == ("embedded", None, None)


def test_hf_spec(tmp_path):
    # a real (tiny, random) Llama saved with save_pretrained, next to a tokenizers.Tokenizer
    import torch
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    model.save_pretrained(tmp_path)
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({chr(97 + i): i for i in range(26)}, unk_token="a"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok).save_pretrained(tmp_path)
    lm = load_lm(f"hf:{tmp_path}")
    assert type(lm).__name__ == "TransformersLM"
    ids = [1, 2, 3]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    ref = logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # explicit log-softmax
    assert abs(lm.score(ids[:1], ids[1:]) - (ref[0, 2] + ref[1, 3])) < 1e-5
    # the protocol's batched top-k, against the explicit log-softmax (float32 model)
    assert isinstance(lm, TokenizedLM)
    nt = lm.next_token_logprobs_many([ids[:2], ids], 3)
    for row, got in zip((ref[1], ref[2]), nt, strict=True):
        best = np.argsort(-row, kind="stable")[:3]
        assert got.token_ids == tuple(int(i) for i in best)
        np.testing.assert_allclose(got.logprobs, row[best], atol=1e-5)


@pytest.mark.parametrize(
    "spec, why",
    [
        ("", "unknown model spec"),
        ("smollm", "unknown model spec"),
        ("gguf:", "names no path"),
        ("gguf:/no/such/file.gguf", "no such file"),
        ("hf:/no/such/dir", "no such directory"),
        ("http:///v1", "names no host"),
        ("http://127.0.0.1:8000/v1#", "empty model name"),
        (3, "expected a string"),
    ],
)
def test_bad_specs(spec, why):
    with pytest.raises(ValueError, match=why) as err:
        load_lm(spec)
    msg = str(err.value)
    assert msg.startswith("spec: ") and SPEC_FORMS in msg
    with pytest.raises(ValueError, match="^--lm: "):
        load_lm(spec, name="--lm")


def test_options_only_for_a_server(tiny):
    with pytest.raises(ValueError, match="apply to a server URL only"):
        load_lm(f"gguf:{tiny[0]}", retries=2)
