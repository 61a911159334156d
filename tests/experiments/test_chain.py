"""quasispecies.experiments.chaining and .questions (iterative chaining on the embedded LM) and the
chain/collapse CLIs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import quasispecies as qs
from quasispecies.cli import main
from quasispecies.experiments import chaining as ch, questions as qa


# ------------------------------------------------------------------ pure (no model)
def test_bundled_questions():
    qs_ = qa.load_questions()
    assert len(qs_) >= 50
    assert len({q.id for q in qs_}) == len(qs_)
    assert len({q.question for q in qs_}) == len(qs_)
    assert all(q.answers and all(a.strip() for a in q.answers) for q in qs_)


def test_is_correct_matches_whole_words():
    assert qa.is_correct("The capital of France is Paris.", ["Paris"])
    assert qa.is_correct("paris", ["Paris"])
    assert not qa.is_correct("Parisian food", ["Paris"])
    assert qa.is_correct("A spider has 8 legs", ["8", "eight"])
    assert not qa.is_correct("It has 18 legs", ["8", "eight"])
    assert qa.is_correct("Plants absorb carbon dioxide (CO2)", ["carbon dioxide", "CO2"])


def test_chat_format():
    fmt = qa.ChatFormat(system="S.")
    p = fmt.answer_prompt("Q2?", [("Q1?", "A1")])
    assert p == (
        "<|im_start|>system\nS.<|im_end|>\n<|im_start|>user\nQ1?<|im_end|>\n"
        "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    e = fmt.eval_prompt("Q?", "A")
    assert qa.SURVEY in e and e.endswith("My confidence in that answer:")
    assert fmt.clean(" Paris<|im_end|>\n<|im_start|>user") == "Paris"
    assert fmt.clean("Paris\nQuestion: x") == "Paris"


def test_roc_auc_brute_force():
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=40), 1)  # ties
    y = rng.random(40) < 0.4
    pairs = [(a, b) for a in s[y] for b in s[~y]]
    ref = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert qa.roc_auc(s, y) == pytest.approx(ref, abs=1e-14)
    assert qa.roc_auc([1.0, 2.0], [True, True]) == 0.5


def _synthetic_result():
    """Two rounds, four questions, one alternative each: every summary number is countable."""

    def item(i, correct, margin, passed, alt, ctx=(), ctx_wrong=0):
        return {
            "id": i,
            "question": f"q{i}",
            "answer": "a",
            "correct": correct,
            "margin": margin,
            "passed": passed,
            "context": list(ctx),
            "context_wrong": ctx_wrong,
            "alternatives": [
                {"answer": "b", "correct": alt[0], "margin": alt[1], "passed": alt[2]}
            ],
        }

    r0 = [
        item(0, True, 1.0, True, (False, -1.0, False)),
        item(1, False, 0.5, True, (True, 0.7, True)),
        item(2, False, -2.0, False, (False, -3.0, False)),
        item(3, True, 0.2, True, (False, 0.1, False)),
    ]
    r1 = [
        item(0, True, 1.0, True, (True, 2.0, True), (1, 3), 1),
        item(1, True, 0.5, True, (False, -1.0, False), (0, 3), 0),
        item(2, False, 0.3, True, (False, -3.0, False), (0, 1), 1),
        item(3, True, 0.2, True, (False, 0.1, False), (0, 1), 1),
    ]
    return {
        "rounds": [
            {"round": 0, "threshold": 0.15, "items": r0},
            {"round": 1, "threshold": 0.15, "items": r1},
        ]
    }


def test_summarise_counts():
    s = ch.summarise(_synthetic_result())
    assert s["eps"] == [0.5, 0.25]
    assert s["buffer_error"] == [pytest.approx(1 / 3), 0.25]
    # round 0, all 8 rated answers: right = {0, 3, alt 1} (3, all pass); wrong = 5, 1 passes
    assert s["tpr0"] == 1.0 and s["fpr0"] == pytest.approx(1 / 5)
    assert s["context_error"] == [None, pytest.approx(3 / 8)]
    np.testing.assert_allclose(s["predicted"], qs.selection.filter_rounds(0.5, 1.0, 0.2, 1))
    np.testing.assert_allclose(s["predicted_buffer"][0], qs.selection.filter_step(0.5, 1.0, 0.2))
    assert s["auc_likelihood"] == [None, None]  # not recorded in this synthetic result
    json.dumps(s, allow_nan=False)  # strict JSON: no NaN anywhere


def test_cli_chain_no_run(tmp_path, capsys):
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(_synthetic_result()))
    rc = main(
        [
            "chain",
            "--no-run",
            "--result",
            str(path),
            "--figures",
            str(tmp_path),
            "--replicates",
            "200",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["eps"] == [0.5, 0.25]
    assert (tmp_path / "chain_error.png").stat().st_size > 10_000
    assert set(out["simulation"]["buffers"]) == {"2", "8", "64"}
    # a missing result file is a clean error naming the flag
    assert main(["chain", "--no-run", "--result", str(tmp_path / "nope.json")]) == 2
    assert "--result:" in capsys.readouterr().err


def test_cli_collapse_json(tmp_path, capsys):
    rc = main(
        [
            "collapse",
            "--n",
            "200",
            "--horizon",
            "4",
            "--strengths",
            "geom:0.1:20:8",
            "--taus",
            "0.5,2,3",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    rows = {(r["domain"], round(r["strength"], 6)): r for r in out["summary"]}
    assert ("distribution", 0.0) in rows and ("paths", 0.0) in rows
    for r in out["summary"]:
        assert r["deficit"] >= -1e-9  # tilting never widens a distribution at tau = 3 here
    data = json.loads((tmp_path / "collapse.json").read_text())
    assert data["study"]["distribution"]["tau"] == [0.5, 1.0, 2.0, 3.0]  # 1 is added
    for name in ("collapse_entropy.png", "collapse_attractor.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert main(["collapse", "--taus", "0,1", "--out", str(tmp_path)]) == 2
    assert "--taus:" in capsys.readouterr().err


def test_bad_input():
    with pytest.raises(ValueError, match="^rounds:"):
        ch.run_chain(object(), qa.load_questions()[:1], rounds=-1)
    with pytest.raises(ValueError, match="^questions:"):
        ch.run_chain(object(), [], rounds=1)
    with pytest.raises(ValueError, match="^threshold:"):
        ch.run_chain(object(), qa.load_questions()[:1], threshold="mean")
    with pytest.raises(ValueError, match="^evaluator:"):
        ch.run_chain(object(), qa.load_questions()[:1], evaluator="oracle")
    with pytest.raises(ValueError, match="^path:"):
        qa.load_questions("/nonexistent/questions.jsonl")


# ------------------------------------------------------------------ the embedded model
@pytest.fixture(scope="module")
def lm():
    from tests.lm_support import embedded_lm

    return embedded_lm()


@pytest.mark.lm
def test_shared_prefix_scores_equal_score(lm):
    prompt = qa.ChatFormat().eval_prompt("What is the capital of France?", "Paris")
    got = qa.shared_prefix_scores(lm, prompt, [qa.HIGH, qa.LOW])
    ref = [lm.score(prompt, qa.HIGH), lm.score(prompt, qa.LOW)]
    # float32 forward passes over different batch shapes: agreement to ~1e-5 per token
    np.testing.assert_allclose(got, ref, atol=2e-4)
    assert qa.self_evaluate(lm, "What is the capital of France?", "Paris") == pytest.approx(
        ref[0] - ref[1], abs=4e-4
    )


@pytest.mark.lm
def test_answer_candidates_branch_zero_is_greedy(lm):
    fmt = qa.ChatFormat()
    prompt = fmt.answer_prompt("What is the capital of France?")
    cands = qa.answer_candidates(lm, prompt, branches=2, max_tokens=4)
    greedy = fmt.clean(lm.decode(lm.greedy(prompt, 4)))
    assert cands[0] == greedy
    assert len(cands) == 2 and cands[0] != cands[1]


@pytest.mark.lm
def test_run_chain_small_and_resume(lm, tmp_path):
    questions = qa.load_questions()[:3]
    path = tmp_path / "chain.json"
    res = ch.run_chain(
        lm, questions, rounds=1, buffer=2, branches=2, max_tokens=6, result_path=path
    )
    assert res["complete"] and len(res["rounds"]) == 2
    on_disk = json.loads(path.read_text())
    assert on_disk["summary"] == json.loads(json.dumps(res["summary"]))
    s = res["summary"]
    assert len(s["eps"]) == 2 and 0 <= s["tpr0"] <= 1 and 0 <= s["fpr0"] <= 1
    r0, r1 = res["rounds"]
    # contexts come from round 0's passing answers and never contain the question itself
    passed0 = {i["id"] for i in r0["items"] if i["passed"]}
    for it in r1["items"]:
        assert it["id"] not in it["context"] and set(it["context"]) <= passed0
        assert len(it["context"]) <= 2
    # round 0 threshold = median of all round-0 margins
    m = [i["margin"] for i in r0["items"]] + [
        a["margin"] for i in r0["items"] for a in i["alternatives"]
    ]
    assert r0["threshold"] == pytest.approx(float(np.median(m)))
    # resuming a finished run does not call the model again
    before = lm.tokens_evaluated
    again = ch.run_chain(
        lm, questions, rounds=1, buffer=2, branches=2, max_tokens=6, result_path=path
    )
    assert lm.tokens_evaluated == before
    assert again["summary"] == res["summary"]
