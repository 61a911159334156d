r"""Iterative chaining with self-evaluation, run on a real language model.

The seed essay on iterative chaining argues: let the model answer a question, let the
*same* model rate its answer on a survey scale ("not at all … a great deal"), keep the
answers it rates highly, put them in the context, and repeat. If the rater passes right
answers with probability ``tpr`` and wrong ones with ``fpr < tpr``, the kept answers are
wrong at the rate ``eps fpr / (eps fpr + (1 - eps) tpr)``; if the model then errs at the
rate of its context (its "idealised LM" assumption), the error odds fall by ``fpr / tpr``
per round (:func:`quasispecies.selection.chaining.filter_rounds`).

This module measures each link of that argument on a bundled set of factual questions
(``quasispecies/data/questions.jsonl``, short answers with accepted aliases):

1. **Generator.** For each question the model answers in its chat format (greedy; the
   ``branches - 1`` runners-up start from the 2nd, 3rd, … most likely first token and
   continue greedily). An answer is right when one of the aliases occurs in it as a
   whole word (case-insensitive).
2. **Evaluator (the survey trick).** The reward of an answer is the self-evaluation
   margin

   .. math:: m(q, a) = \log p(\text{" a great deal"} \mid \text{survey}(q, a))
                     - \log p(\text{" not at all"} \mid \text{survey}(q, a)),

   read off the model's log-probabilities (never sampled). An answer *passes* when
   ``m > threshold`` (default: the median margin of round 0, fixed afterwards). Its
   ``tpr`` and ``fpr`` are measured against the known answers; the ROC AUC of ``m``
   says how much the rater knows at any threshold.
3. **Chaining.** Round ``k >= 1`` answers every question with up to ``buffer`` passing
   question/answer pairs of round ``k - 1`` (never the question itself) as previous chat
   turns. The observed error rate per round is compared with
   ``filter_rounds(eps_0, tpr, fpr, rounds)``, and the error rate of each round's buffer
   with the one-step prediction ``filter_step(eps_k, tpr, fpr)``.

Results are written atomically after every round and resumed from the file, so an
interrupted run loses at most the round in progress.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from quasispecies.experiments.questions import (
    SURVEY,
    ChatFormat,
    Question,
    answer_candidates,
    is_correct,
    load_questions,
    roc_auc,
    self_evaluate_many,
)

if TYPE_CHECKING:
    from quasispecies.bridge.protocol import LM

__all__ = ["RESULT_VERSION", "run_chain", "summarise"]

#: Bumped when the result layout changes (an older file is then not resumed).
RESULT_VERSION = 2


def _rates(correct: np.ndarray, passed: np.ndarray) -> tuple[float, float]:
    c, p = np.asarray(correct, bool), np.asarray(passed, bool)
    tpr = float(p[c].mean()) if c.any() else 0.0
    fpr = float(p[~c].mean()) if (~c).any() else 0.0
    return tpr, fpr


# ------------------------------------------------------------------------ the loop
def _config_key(cfg: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def _save(path: Path, result: dict[str, Any]) -> None:
    from quasispecies.model.files import write_json

    write_json(path, result, indent=1)


def run_chain(
    lm: LM,
    questions: list[Question] | None = None,
    *,
    rounds: int = 3,
    buffer: int = 8,
    branches: int = 2,
    max_tokens: int = 8,
    threshold: float | str = "median",
    seed: int = 0,
    result_path=None,
    progress: bool = False,
    fmt: ChatFormat | None = None,
    evaluator: str = "survey",
) -> dict[str, Any]:
    """Run the measurement (module docstring) and return a JSON-ready dict.

    Parameters
    ----------
    lm : any :class:`quasispecies.bridge.protocol.LM`: the embedded model, a local
        GGUF/HF model, or a server (``qs.bridge.load_lm("http://127.0.0.1:8000/v1#MODEL")``;
        the survey scores are then batched echo requests, the answers greedy completions).
    questions : default :func:`load_questions`.
    rounds : chaining rounds after round 0.
    buffer : passing Q/A pairs put in the context of the next round.
    branches : answers generated per question and round (greedy + runners-up); all are
        rated, so they all count towards ``tpr``/``fpr``; the greedy one is *the* answer.
    threshold : ``"median"`` (median round-0 margin) or a number (nats).
    evaluator : ``"survey"`` (the self-evaluation margin, the seed essay's survey trick) or
        ``"likelihood"`` (the mean log-prob per token of the model's own answer; no survey
        prompt is run). The chosen score is stored as each answer's ``margin``.
    result_path : JSON file written atomically after every round; an existing file with
        the same configuration is resumed.
    """
    from quasispecies.selection.chaining import filter_rounds, filter_step

    fmt = fmt or ChatFormat()
    questions = load_questions() if questions is None else list(questions)
    if not questions:
        raise ValueError("questions: empty list")
    for name, v, lo in (
        ("rounds", rounds, 0),
        ("buffer", buffer, 1),
        ("branches", branches, 1),
        ("max_tokens", max_tokens, 1),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name}: expected an integer >= {lo}, got {v!r}")
    if evaluator not in ("survey", "likelihood"):
        raise ValueError(f"evaluator: expected 'survey' or 'likelihood', got {evaluator!r}")
    if not (threshold == "median" or isinstance(threshold, int | float)):
        raise ValueError(f"threshold: expected 'median' or a number, got {threshold!r}")
    cfg = {
        "version": RESULT_VERSION,
        "model": getattr(lm, "name", type(lm).__name__),
        "questions": [[q.id, q.question, list(q.answers)] for q in questions],
        "buffer": buffer,
        "branches": branches,
        "max_tokens": max_tokens,
        "threshold": threshold,
        "seed": seed,
        "system": fmt.system,
        "survey": SURVEY,
    }
    if evaluator != "survey":  # the default is left out, so older survey results still resume
        cfg["evaluator"] = evaluator
    key = _config_key(cfg)
    path = Path(result_path) if result_path is not None else None
    done: list[dict[str, Any]] = []
    if path is not None and path.exists():
        try:
            old = json.loads(path.read_text("utf-8"))
        except json.JSONDecodeError:
            old = {}
        if old.get("config_key") == key:
            done = old.get("rounds", [])[: rounds + 1]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=(rounds + 1) * len(questions),
            desc="chain",
            unit="question",
            initial=min(len(done), rounds + 1) * len(questions),
        )
    theta = done[0]["threshold"] if done else None
    for k in range(rounds + 1):
        if k < len(done):
            continue
        t0 = time.time()
        prev = [] if k == 0 else [i for i in done[k - 1]["items"] if i["passed"]]
        items = []
        for q in questions:
            pool = [i for i in prev if i["id"] != q.id]
            # a generator per (seed, round, question): a resumed run draws the same contexts
            order = np.random.default_rng([seed, k, q.id]).permutation(len(pool))
            ctx_items = [pool[j] for j in order[:buffer]]
            context = [(i["question"], i["answer"]) for i in ctx_items]
            cands = answer_candidates(
                lm,
                fmt.answer_prompt(q.question, context),
                branches,
                max_tokens,
                fmt,
                with_logprobs=True,
            )
            margins = (
                self_evaluate_many(lm, q.question, [a for a, _, _ in cands], fmt)
                if evaluator == "survey"
                else [lp / n for _, lp, n in cands]
            )
            rated = [
                {
                    "answer": a,
                    "correct": is_correct(a, q.answers),
                    "margin": m,
                    "likelihood": lp / n,
                }  # mean log-prob per generated token
                for (a, lp, n), m in zip(cands, margins, strict=True)
            ]
            items.append(
                {
                    "id": q.id,
                    "question": q.question,
                    **rated[0],
                    "context": [i["id"] for i in ctx_items],
                    "context_wrong": int(sum(not i["correct"] for i in ctx_items)),
                    "alternatives": rated[1:],
                }
            )
            if bar is not None:
                bar.update(1)
        if k == 0:
            all_m = [i["margin"] for i in items] + [
                a["margin"] for i in items for a in i["alternatives"]
            ]
            theta = float(np.median(all_m)) if threshold == "median" else float(threshold)
        for i in items:
            i["passed"] = bool(i["margin"] > theta)
            for a in i["alternatives"]:
                a["passed"] = bool(a["margin"] > theta)
        done.append({"round": k, "threshold": theta, "seconds": time.time() - t0, "items": items})
        if path is not None:
            _save(path, {"config_key": key, "config": cfg, "rounds": done, "complete": False})
    if bar is not None:
        bar.close()
    result = {"config_key": key, "config": cfg, "rounds": done[: rounds + 1], "complete": True}
    result["summary"] = summarise(result, filter_rounds=filter_rounds, filter_step=filter_step)
    if path is not None:
        _save(path, result)
    return result


def summarise(result: dict[str, Any], *, filter_rounds=None, filter_step=None) -> dict[str, Any]:
    """Per-round observed rates and the recurrence's predictions, from a :func:`run_chain` result.

    Keys: ``eps`` (error of the greedy answers), ``buffer_error`` (error among those that
    passed: the next round's context), ``tpr``/``fpr``/``auc`` per round (all rated
    answers), ``auc_likelihood`` (the same AUC for the model's mean token log-prob of its
    answer, a confidence signal that is not the survey), the pooled round-0 ``tpr0``/``fpr0``, ``predicted`` =
    ``filter_rounds(eps[0], tpr0, fpr0, rounds)``, ``predicted_buffer`` =
    ``filter_step(eps[k], tpr0, fpr0)``, and ``context_error`` (wrong share of the
    contexts the round was conditioned on).
    """
    if filter_rounds is None or filter_step is None:
        from quasispecies.selection.chaining import filter_rounds, filter_step
    rounds = result["rounds"]
    eps, buf, tpr, fpr, auc, npass, ctx_err, secs = [], [], [], [], [], [], [], []
    auc_lik: list[float] = []
    for rd in rounds:
        items = rd["items"]
        c = np.array([i["correct"] for i in items])
        p = np.array([i["passed"] for i in items])
        every_c = np.array(
            [i["correct"] for i in items] + [a["correct"] for i in items for a in i["alternatives"]]
        )
        every_p = np.array(
            [i["passed"] for i in items] + [a["passed"] for i in items for a in i["alternatives"]]
        )
        every_m = np.array(
            [i["margin"] for i in items] + [a["margin"] for i in items for a in i["alternatives"]]
        )
        every_l = np.array(
            [i.get("likelihood", np.nan) for i in items]
            + [a.get("likelihood", np.nan) for i in items for a in i["alternatives"]]
        )
        auc_lik.append(roc_auc(every_l, every_c) if np.all(np.isfinite(every_l)) else float("nan"))
        eps.append(float(1 - c.mean()))
        buf.append(float(1 - c[p].mean()) if p.any() else float("nan"))
        t, f = _rates(every_c, every_p)
        tpr.append(t)
        fpr.append(f)
        auc.append(roc_auc(every_m, every_c))
        npass.append(int(p.sum()))
        n_ctx = sum(len(i["context"]) for i in items)
        ctx_err.append(
            float(sum(i["context_wrong"] for i in items) / n_ctx) if n_ctx else float("nan")
        )
        secs.append(float(rd.get("seconds", 0.0)))
    tpr0, fpr0 = tpr[0], fpr[0]
    K = len(rounds) - 1
    try:
        pred = [float(x) for x in filter_rounds(eps[0], tpr0, fpr0, K)]
        pred_buf = [float(filter_step(e, tpr0, fpr0)) for e in eps]
    except ValueError:  # nothing passes at round 0: the recurrence is undefined
        pred = [float("nan")] * (K + 1)
        pred_buf = [float("nan")] * (K + 1)

    def clean(x):
        if isinstance(x, list):
            return [clean(v) for v in x]
        return None if isinstance(x, float) and not np.isfinite(x) else x

    out = {
        "n_questions": len(rounds[0]["items"]),
        "threshold": rounds[0]["threshold"],
        "eps": eps,
        "buffer_error": buf,
        "context_error": ctx_err,
        "tpr": tpr,
        "fpr": fpr,
        "auc": auc,
        "auc_likelihood": auc_lik,
        "n_passed": npass,
        "tpr0": tpr0,
        "fpr0": fpr0,
        "odds_factor": (fpr0 / tpr0) if tpr0 > 0 else float("inf"),
        "predicted": pred,
        "predicted_buffer": pred_buf,
        "seconds": secs,
    }
    # JSON has no NaN: an undefined rate (nothing passed, empty context) is null
    return {k: clean(v) for k, v in out.items()}
