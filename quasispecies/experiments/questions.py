r"""The questions, prompts and answer scoring of the iterative-chaining experiment.

Everything :mod:`quasispecies.experiments.chaining` needs from a language model, one call
per concept: the bundled factual questions (``quasispecies/data/questions.jsonl``) and
their whole-word scoring (:func:`is_correct`); the chat format of the answer and survey
prompts (:class:`ChatFormat`); the generator (:func:`answer_candidates`: greedy plus
runners-up) and the evaluator, the seed essay's survey trick

.. math:: m(q, a) = \log p(\text{" a great deal"} \mid \text{survey}(q, a))
                  - \log p(\text{" not at all"} \mid \text{survey}(q, a))

(:func:`self_evaluate`, read off the model's log-probabilities, never sampled), and the
ROC AUC that says how much the rater knows at any threshold (:func:`roc_auc`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from quasispecies.bridge.protocol import LM

__all__ = [
    "HIGH",
    "LOW",
    "SURVEY",
    "ChatFormat",
    "Question",
    "answer_candidates",
    "is_correct",
    "load_questions",
    "roc_auc",
    "self_evaluate",
    "self_evaluate_many",
    "shared_prefix_scores",
]

#: The survey scale of the seed essay; the reward contrasts its two ends.
SURVEY = (
    "How confident are you that your answer is correct? "
    "Not at all, a little, a moderate amount, a lot, or a great deal?"
)
HIGH = " a great deal"
LOW = " not at all"


# ------------------------------------------------------------------------- questions
@dataclass(frozen=True)
class Question:
    """A factual question with its accepted short answers (aliases)."""

    id: int
    question: str
    answers: tuple[str, ...]


def load_questions(path=None) -> list[Question]:
    """The bundled questions (``quasispecies/data/questions.jsonl``) or a JSONL file of
    ``{"id", "question", "answers": [...]}`` objects."""
    if path is None:
        text = resources.files("quasispecies").joinpath("data/questions.jsonl").read_text("utf-8")
        where = "quasispecies/data/questions.jsonl"
    else:
        where = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as err:
            raise ValueError(f"path: cannot read {where!r} ({err.strerror})") from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            q = Question(
                int(obj["id"]), str(obj["question"]), tuple(str(a) for a in obj["answers"])
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"path: {where} line {i} is not a question record ({err})") from None
        if not q.answers:
            raise ValueError(f"path: {where} line {i} lists no accepted answer")
        out.append(q)
    if len({q.id for q in out}) != len(out):
        raise ValueError(f"path: {where} repeats a question id")
    return out


def is_correct(answer: str, answers) -> bool:
    """True when one accepted alias occurs in ``answer`` as a whole word (case-insensitive)."""
    a = answer.lower()
    return any(re.search(r"(?<!\w)" + re.escape(x.lower()) + r"(?!\w)", a) for x in answers)


# ---------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class ChatFormat:
    """ChatML prompts (SmolLM2-Instruct's template): a system line, previous Q/A turns,
    the question; and the survey prompt whose next words are scored."""

    system: str = "Answer the question in a few words."
    start: str = "<|im_start|>"
    end: str = "<|im_end|>"

    def _turn(self, role: str, text: str) -> str:
        return f"{self.start}{role}\n{text}{self.end}\n"

    def answer_prompt(self, question: str, context: Sequence[tuple[str, str]] = ()) -> str:
        parts = [self._turn("system", self.system)]
        for q, a in context:
            parts += [self._turn("user", q), self._turn("assistant", a)]
        parts.append(self._turn("user", question))
        parts.append(f"{self.start}assistant\n")
        return "".join(parts)

    def eval_prompt(self, question: str, answer: str) -> str:
        return (
            self._turn("user", question)
            + self._turn("assistant", answer if answer else "(no answer)")
            + self._turn("user", SURVEY)
            + f"{self.start}assistant\nMy confidence in that answer:"
        )

    def clean(self, text: str) -> str:
        """The answer proper: text before the end-of-turn marker or a newline."""
        text = text.split(self.end)[0].split(self.start)[0]
        return text.split("\n")[0].strip()


# ------------------------------------------------------------------- LM primitives
def shared_prefix_scores(lm: LM, prompt: str, continuations: list[str]) -> np.ndarray:
    r"""``sum_i log p(y_i | prompt, y_<i)`` for several continuations of one prompt.

    Every prefix ``prompt + y_<i`` is one row of a single
    ``next_token_logprobs_batch`` call, so the prompt is run once (the backend caches
    the rows' longest common prefix) instead of once per continuation. Continuations are tokenised in context
    (:meth:`LanguageModel.encode_pair`). A model without a local tokenizer (a server)
    scores them with ``lm.score_many`` instead (one request).
    """
    from quasispecies.bridge.protocol import has_tokenizer

    if not has_tokenizer(lm):  # a remote model: one batched echo request
        return np.asarray(lm.score_many([(prompt, c) for c in continuations]), dtype=float)
    pairs = [lm.encode_pair(prompt, c) for c in continuations]
    rows, targets, owner = [], [], []
    for j, (ctx, cont) in enumerate(pairs):
        for i, tok in enumerate(cont):
            rows.append(ctx + cont[:i])
            targets.append(tok)
            owner.append(j)
    ids, lps = lm.next_token_logprobs_batch(rows, lm.vocab_size)
    out = np.zeros(len(continuations))
    for r, (tok, j) in enumerate(zip(targets, owner, strict=True)):
        hit = np.flatnonzero(ids[r] == tok)
        out[j] += float(lps[r, hit[0]])
    return out


def answer_candidates(
    lm: LM,
    prompt: str,
    branches: int = 2,
    max_tokens: int = 8,
    fmt: ChatFormat | None = None,
    *,
    with_logprobs: bool = False,
):
    """``branches`` answers: branch ``b`` starts with the ``b``-th most likely first token
    and continues greedily until the end of the turn, a newline, or ``max_tokens``.

    Branch 0 is greedy decoding. Rows advance together in one batched call per token
    (they share the prompt's KV cache). A model without a local tokenizer (a server) is
    asked for the ``branches`` first tokens, then for the greedy rest of every branch in
    one batched request, cut at the same stop rule. With ``with_logprobs`` each answer comes as
    ``(text, sum of the generated tokens' log-probs, number of generated tokens)``: the
    model's own likelihood of what it said, a second confidence signal besides the survey.
    """
    from quasispecies.bridge.protocol import has_tokenizer

    fmt = fmt or ChatFormat()
    if not has_tokenizer(lm):
        out = _text_candidates(lm, prompt, branches, max_tokens, fmt)
        return out if with_logprobs else [t for t, _, _ in out]
    ctx = lm.encode(prompt)
    first, first_lp = lm.next_token_logprobs_batch([ctx], branches)
    gens = [[int(first[0, b])] for b in range(branches)]
    lps = [float(first_lp[0, b]) for b in range(branches)]
    done = [False] * branches
    stops = (fmt.end, fmt.start, "\n")
    for _ in range(max_tokens - 1):
        for b in range(branches):
            done[b] = done[b] or any(s in lm.decode(gens[b]) for s in stops)
        live = [b for b in range(branches) if not done[b]]
        if not live:
            break
        # The bare prompt as row 0 keeps the rows' common prefix equal to the prompt minus
        # its last token at every step, so the backend's prefix KV cache is reused.
        rows = [ctx] + [ctx + gens[b] for b in live]
        nxt, nxt_lp = lm.next_token_logprobs_batch(rows, 1)
        for i, b in enumerate(live):
            gens[b].append(int(nxt[i + 1, 0]))
            lps[b] += float(nxt_lp[i + 1, 0])
    texts = [fmt.clean(lm.decode(g)) for g in gens]
    if with_logprobs:
        return [(t, lp, len(g)) for t, lp, g in zip(texts, lps, gens, strict=True)]
    return texts


def _text_candidates(lm: LM, prompt: str, branches: int, max_tokens: int, fmt: ChatFormat):
    """:func:`answer_candidates` through text requests only (``next_token_logprobs`` for
    the first tokens, one batched ``complete`` for the rest), with the id path's stop
    rule: a branch ends after the token whose text completes a stop marker."""
    from quasispecies.bridge.api_fields import token_and_bytes

    def spell(tokens) -> str:
        return b"".join(token_and_bytes(t)[1] for t in tokens).decode("utf-8", errors="replace")

    first = lm.next_token_logprobs(prompt, branches)
    starts = [prompt + spell([t]) for t in first.tokens]
    rests = lm.complete(starts, max_tokens - 1) if max_tokens > 1 else [None] * branches
    stops = (fmt.end, fmt.start, "\n")
    out = []
    for b, tok in enumerate(first.tokens):
        gen, lp = [tok], float(first.logprobs[b])
        rest = rests[b]
        if rest is not None:
            for t, x in zip(rest.tokens, rest.logprobs, strict=True):
                if any(s in spell(gen) for s in stops):
                    break
                gen.append(t)
                lp += float(x)  # type: ignore[arg-type]
        out.append((fmt.clean(spell(gen)), lp, len(gen)))
    return out


def self_evaluate(lm: LM, question: str, answer: str, fmt: ChatFormat | None = None) -> float:
    """The survey-trick reward ``log p(HIGH | survey) - log p(LOW | survey)`` (nats)."""
    fmt = fmt or ChatFormat()
    hi, lo = shared_prefix_scores(lm, fmt.eval_prompt(question, answer), [HIGH, LOW])
    return float(hi - lo)


def self_evaluate_many(
    lm: LM, question: str, answers, fmt: ChatFormat | None = None
) -> list[float]:
    """:func:`self_evaluate` of each answer; a model without a local tokenizer scores
    all ``2 len(answers)`` survey continuations in one batched request."""
    from quasispecies.bridge.protocol import has_tokenizer

    fmt = fmt or ChatFormat()
    answers = list(answers)
    if has_tokenizer(lm) or not answers:
        return [self_evaluate(lm, question, a, fmt) for a in answers]
    pairs = [(fmt.eval_prompt(question, a), c) for a in answers for c in (HIGH, LOW)]
    s = np.asarray(lm.score_many(pairs), dtype=float)
    return [float(s[2 * i] - s[2 * i + 1]) for i in range(len(answers))]


def roc_auc(score, label) -> float:
    """Probability that a random positive outscores a random negative (ties count 1/2);
    NaN-free: 0.5 when either class is empty."""
    s, y = np.asarray(score, dtype=float), np.asarray(label, dtype=bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return 0.5
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + 0.5 * eq)
