"""Every LM command with ``--lm gguf:PATH`` and ``--lm http://...`` (the same tiny random
GGUF, in process and behind the package's server on 127.0.0.1): the remote run gives the
in-process numbers. A tiny model keeps this fast; RemoteLM on the real embedded model is
checked in tests/bridge/test_remote.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quasispecies.bridge import GGUFModel, serve
from quasispecies.cli import main
from tests.lm_support import tiny_hf_weights, write_tiny_gguf

PROMPT = "the cat"


@pytest.fixture(scope="module")
def gguf_path(tmp_path_factory):
    import gguf

    # the chain's chat prompts are byte-level tokens here (~600): a longer context
    orig = gguf.GGUFWriter.add_context_length
    gguf.GGUFWriter.add_context_length = lambda self, n: orig(self, 4096)  # type: ignore[method-assign]
    try:
        w, cfg = tiny_hf_weights(5)
        # Zero logits for the bytes >= 0x80 (part of a UTF-8 character) and for the bytes of
        # the tiny vocabulary's merges (" ", t, h, e): every generated path then spells a
        # text that tokenises back to the same ids, so the server (which is sent text) and
        # the in-process backend (token ids) expand the same prefixes.
        w["out"][np.r_[128:256, [ord(c) for c in " the"]]] = 0.0
        return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", w, cfg)
    finally:
        gguf.GGUFWriter.add_context_length = orig  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def tiny_lm(gguf_path):
    return GGUFModel(gguf_path)


@pytest.fixture(scope="module")
def url(tiny_lm):
    server, base = serve(tiny_lm, "127.0.0.1", 0)
    try:
        yield base + "#tiny"
    finally:
        server.shutdown()
        server.server_close()


def run(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def specs(gguf_path, url):
    return [f"gguf:{gguf_path}", url]


def test_lm_score(capsys, gguf_path, url):
    local, remote = (
        run(capsys, "lm", "score", "--lm", s, "--prompt", PROMPT, "--continuation", " sat on")
        for s in specs(gguf_path, url)
    )
    assert remote["tokens"] == local["tokens"]
    # same float32 forward pass on the same ids in both: equal floats
    assert remote["token_logprobs"] == local["token_logprobs"]
    old = run(
        capsys,
        "lm",
        "score",
        "--gguf",
        str(gguf_path),
        "--prompt",
        PROMPT,
        "--continuation",
        " sat on",
    )
    assert old["logprob"] == local["logprob"]  # the deprecated alias


def test_lm_next(capsys, gguf_path, url, tiny_lm):
    local, remote = (
        run(capsys, "lm", "next", "--lm", s, "--prompt", PROMPT, "--top-k", "4")
        for s in specs(gguf_path, url)
    )
    assert remote["token_ids"] is None and len(local["token_ids"]) == 4
    # the server spells part of a UTF-8 character as bytes:\xNN (token_key), the CLI's
    # in-process listing as U+FFFD (token_text)
    assert remote["tokens"] == [tiny_lm.token_key(i) for i in local["token_ids"]]
    assert remote["logprobs"] == local["logprobs"]


def test_lm_tree_and_decode(capsys, gguf_path, url, tmp_path):
    docs = []
    for i, s in enumerate(specs(gguf_path, url)):
        out = tmp_path / f"t{i}.csv"
        args = ("--prompt", PROMPT, "--depth", "2", "--top-k", "2")
        docs.append(run(capsys, "lm", "tree", "--lm", s, *args, "--out", str(out)))
        docs[-1]["decode"] = run(capsys, "lm", "decode", "--lm", s, *args)
        docs[-1]["table"] = out.read_text()
    local, remote = docs
    assert remote["states"] == local["states"] == 7
    assert remote["map"]["text"] == local["map"]["text"]
    # the in-process tree batches a level in one call, the server one prefix per call:
    # float32 kernels of other shapes (observed <= 2e-5 on the embedded model)
    assert abs(remote["map"]["logprob"] - local["map"]["logprob"]) < 1e-4
    assert remote["decode"]["map"]["text"] == local["decode"]["map"]["text"]
    np.testing.assert_allclose(
        remote["decode"]["sequence_entropy"], local["decode"]["sequence_entropy"], atol=1e-4
    )
    assert remote["table"].splitlines()[0] == local["table"].splitlines()[0]


def test_collapse_lm(capsys, tiny_lm, url, tmp_path):
    from quasispecies.experiments.collapse_study import lm_tree_study

    args = ["collapse", "--lm", url, "--depth", "1", "--top-k", "2", "--n", "20"]
    run(capsys, *args, "--strengths", "1", "--taus", "1", "--out", str(tmp_path))
    remote = json.loads((tmp_path / "collapse.json").read_text())["study"]["lm_tree"]
    local = lm_tree_study(tiny_lm, depth=1, top_k=2, strengths=[0, 1], taus=[1])
    assert remote["leaf_texts"] == local["leaf_texts"]
    # survey margins: teacher-forced echo (server) vs shared-prefix next-token rows
    # (in process), both float32
    np.testing.assert_allclose(remote["leaf_reward"], local["leaf_reward"], atol=1e-3)


def test_chain(capsys, tiny_lm, url, tmp_path):
    from quasispecies.experiments.chaining import run_chain
    from quasispecies.experiments.questions import load_questions

    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        "\n".join(
            json.dumps({"id": i, "question": q, "answers": [a]})
            for i, (q, a) in enumerate([("Say a.", "a"), ("Say b.", "b")])
        )
    )
    args = ["chain", "--lm", url, "--questions", str(qfile), "--rounds", "1", "--buffer", "1"]
    doc = run(capsys, *args, "--max-tokens", "3", "--replicates", "10", "--figures", str(tmp_path))
    remote = json.loads(Path(doc["result"]).read_text())
    assert remote["config"]["model"] == "tiny" and len(remote["rounds"]) == 2
    local = run_chain(tiny_lm, load_questions(qfile), rounds=1, buffer=1, max_tokens=3)
    for rl, rr in zip(local["rounds"], remote["rounds"], strict=True):
        for a, b in zip(rl["items"], rr["items"], strict=True):
            assert a["answer"] == b["answer"] and a["context"] == b["context"]
            assert abs(a["margin"] - b["margin"]) < 1e-3  # float32, see test_collapse_lm
            assert abs(a["likelihood"] - b["likelihood"]) < 1e-4


@pytest.mark.parametrize(
    "argv",
    [
        ["lm", "next", "--prompt", "x", "--lm", "nonsense"],
        ["chain", "--lm", "gguf:/no/such.gguf", "--limit", "1"],
        ["collapse", "--lm", "ftp://x"],
    ],
)
def test_bad_spec_names_the_flag(capsys, argv, tmp_path):
    assert main([*argv]) == 2
    err = capsys.readouterr().err
    assert "--lm: " in err and "gguf:PATH" in err and "http://HOST:PORT/v1[#MODEL]" in err


def test_gguf_and_lm_together(capsys, gguf_path):
    argv = ["lm", "next", "--prompt", "x", "--gguf", str(gguf_path), "--lm", "http://h:1/v1"]
    assert main(argv) == 2
    assert "--gguf: give either --gguf (deprecated) or --lm" in capsys.readouterr().err


def test_serve_needs_a_tokenizer(capsys):
    assert main(["lm", "serve", "--lm", "http://127.0.0.1:9/v1", "--port", "0"]) == 2
    assert "--lm: serving needs a model with a local tokenizer" in capsys.readouterr().err
