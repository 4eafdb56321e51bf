"""Reward functions. Each one is a class configured from YAML (``_target_`` + its parameters + ``weight``).

Contract (TRL's, extended): ``reward(completions, *, scores, answer_format, **columns) -> list[float | None]``
where ``completions`` are the completion texts, ``scores`` the shared :class:`~rlvr.interfaces.Score` of each
(extraction + verifier, computed once per batch) and ``columns`` the dataset columns (``answer``, ``task``...).
``None`` masks a sample out of that reward. A plain TRL reward function ``f(completions, **kwargs)`` also works
(see :mod:`rlvr.rewards.suite`).

Every answer reward reads the shared :class:`Score`, so a reward and the evaluation never disagree on what
was answered, and every one keeps "unparseable" (no readable answer) apart from "wrong", and gives a row
whose gold answer is unusable (``bad_gold``) ``None``: no reward either way, counted by the suite.

Each class says what it pays for in ``role``: ``correctness`` (the scorer's verdict), ``format`` (how the reply
is laid out) or ``shaping`` (length); a control run (``control=random_reward|format_only``) reads it.

Whether an answer is correct is the :class:`~rlvr.scoring.Scorer`'s verdict (``Score.status``, the one
evaluation counts) and nothing else: no reward parses or compares the answer to decide it on its own, so a
reward never pays for an answer evaluation calls wrong, nor withholds it from one evaluation calls correct
(non-ASCII digits, ``2e5``, ``10²``, ``\\boxed{}`` are read once, by the scorer). A reward may only shape
around that verdict: how the correct answer was written (:class:`AnswerCheck`'s exact vs equivalent), how
close a wrong number came, how long the reply is.

The defaults of :class:`ApproximateFormat`, :class:`AnswerCheck` and :class:`NumberCheck` are the values of
the seed experiments (Unsloth-style GRPO rewards); ``conf/reward/math_reasoning.yaml`` combines them.
"""

from __future__ import annotations

from typing import Any, Literal

from rlvr.interfaces import AtLeastOne, Score
from rlvr.schema import checked
from rlvr.scoring.extract import answer_block, canonical_number, is_well_formatted
from rlvr.scoring.formats import AnswerFormat
from rlvr.scoring.numbers import UnparseableAnswer, compare_numbers


class Correctness:
    """The data's verdict on the extracted answer: ``correct`` for a correct answer, ``wrong`` otherwise.

    Args:
        correct: reward for a correct answer.
        wrong: reward for a wrong answer.
        unparseable: reward when no single answer could be read (none, a hedge, a denied number).
        partial_credit: pay a verifier's partial credit (``correct x value`` for a value below 1: a
            reasoning-gym task's substring or "trivially valid" credit) on answers evaluation counts wrong. Off by
            default: a grader who must defend every point of credit gives none to a wrong answer, and a policy
            learns whatever earns reward (a tautology earned 0.25 on every propositional-logic row).
        task: only rows of this task (the ``task`` column, e.g. one reasoning-gym task of a mixture) are
            scored, the others are masked; so each task of a mixture can have its own weight and its own
            logged reward. null scores every row.

    >>> r = Correctness()
    >>> scores = [Score("7", "correct", 1.0), Score(None, "unparseable", 0.0), Score("Q", "wrong", 0.25)]
    >>> r(["", "", ""], scores=scores), Correctness(partial_credit=True)(["", "", ""], scores=scores)
    ([1.0, 0.0, 0.0], [1.0, 0.0, 0.25])
    >>> Correctness(task="chain_sum")(["7", "7"], scores=[Score("7", "correct", 1.0)] * 2, answer_format=None,
    ...                               task=["chain_sum", "leg_counting"])
    [1.0, None]
    """

    role = "correctness"  # what it pays for (control runs replace or keep rewards by role)

    def __init__(self, correct: float = 1.0, wrong: float = 0.0, unparseable: float = 0.0,
                 partial_credit: bool = False, task: str | None = None):
        self.correct, self.wrong, self.unparseable, self.task = correct, wrong, unparseable, task
        self.partial_credit = partial_credit

    def __call__(self, completions: list[str], *, scores: list[Score], **columns: Any) -> list[float | None]:
        tasks = columns.get("task") or [None] * len(scores)
        out: list[float | None] = []
        for s, task in zip(scores, tasks):
            if self.task is not None and task != self.task:
                out.append(None)  # another task's row: not this reward's business
            elif s.status == "correct":
                out.append(self.correct)
            elif s.status == "unparseable":
                out.append(self.unparseable)
            elif s.status == "bad_gold":
                out.append(None)  # a data problem: no reward either way, counted by the suite
            elif self.partial_credit and s.value > 0:
                out.append(self.correct * s.value)
            else:
                out.append(self.wrong)
        return out


class StrictFormat:
    """Exact-format match: the completion follows the prompt's format exactly once (see
    :func:`is_well_formatted`). Without markers: the reply contains a readable number.

    Args:
        reward: given to a well-formatted completion (the seeds use 3.0).
        penalty: given otherwise.

    >>> fmt = AnswerFormat(answer_tag="answer", reasoning_tag="think")
    >>> StrictFormat()(["<think>a</think><answer>1</answer>", "<answer>1</answer><answer>2</answer>"],
    ...                scores=[None, None], answer_format=fmt)
    [1.0, 0.0]
    """

    role = "format"  # what it pays for (control runs replace or keep rewards by role)

    def __init__(self, reward: float = 1.0, penalty: float = 0.0):
        self.reward, self.penalty = reward, penalty

    def __call__(
        self, completions: list[str], *, scores: list[Score], answer_format: AnswerFormat, **_: Any
    ) -> list[float | None]:
        return [self.reward if is_well_formatted(c, answer_format) else self.penalty for c in completions]



class ApproximateFormat:
    """Partial credit per marker: ``per_marker`` for each configured marker (reasoning start/end, answer
    start/end) present exactly once, ``penalty`` for each one missing or repeated, so repeated blocks cost.

    >>> fmt = AnswerFormat(answer_start="<SOLUTION>", answer_end="</SOLUTION>",
    ...                    reasoning_start="<start_working_out>", reasoning_end="<end_working_out>")
    >>> ApproximateFormat()(["<start_working_out>x<end_working_out><SOLUTION>1</SOLUTION>",
    ...                      "<SOLUTION>1</SOLUTION><SOLUTION>2</SOLUTION>", ""], scores=[None] * 3, answer_format=fmt)
    [2.0, -2.0, -2.0]
    """

    role = "format"  # what it pays for (control runs replace or keep rewards by role)

    def __init__(self, per_marker: float = 0.5, penalty: float = -0.5):
        self.per_marker, self.penalty = per_marker, penalty

    def __call__(
        self, completions: list[str], *, scores: list[Score], answer_format: AnswerFormat, **_: Any
    ) -> list[float | None]:
        markers = [m for pair in filter(None, (answer_format.reasoning_markers, answer_format.answer_markers))
                   for m in pair]
        return [float(sum(self.per_marker if c.count(m) == 1 else self.penalty for m in markers))
                for c in completions]


class AnswerCheck:
    """Graded answer correctness (the seeds' ``check_answer``), on the shared extraction and verifier.

    Args:
        exact: the answer as written (the answer block's raw text) equals the gold string.
        equivalent: correct by the verifier but written differently (spaces, ``$``, commas, ``72.0``).
        close: ``[[relative_error, reward], ...]``, first match wins: a wrong number that is near the gold.
        wrong: a wrong answer.
        unparseable: no readable answer.
        percent: read the answer as a percentage too when measuring closeness (FinQA).

    >>> fmt = AnswerFormat(answer_tag="answer")
    >>> texts = ["<answer>72</answer>", "<answer> 72 </answer>", "<answer>70</answer>", "<answer>60</answer>",
    ...          "<answer>7</answer>", "no answer"]
    >>> scores = [Score("72", "correct", 1.0)] * 2 + [Score(x, "wrong", 0.0) for x in ("70", "60", "7")] + [
    ...     Score(None, "unparseable", 0.0)]
    >>> AnswerCheck()(texts, scores=scores, answer_format=fmt, answer=["72"] * 6)
    [3.0, 1.5, 0.5, 0.25, -1.0, -1.0]
    """

    role = "correctness"  # what it pays for (control runs replace or keep rewards by role)

    def __init__(
        self,
        exact: float = 3.0,
        equivalent: float = 1.5,
        close: list[list[float]] = ((0.1, 0.5), (0.2, 0.25)),  # type: ignore[assignment]
        wrong: float = -1.0,
        unparseable: float = -1.0,
        percent: bool = False,
    ):
        self.exact, self.equivalent, self.wrong, self.unparseable = exact, equivalent, wrong, unparseable
        self.close = sorted((float(tol), float(r)) for tol, r in close)
        self.percent = percent

    def __call__(
        self, completions: list[str], *, scores: list[Score], answer_format: AnswerFormat, answer: list[str],
        **_: Any,
    ) -> list[float | None]:
        out: list[float | None] = []
        for text, s, gold in zip(completions, scores, answer):
            if s.status == "bad_gold":
                out.append(None)
            elif s.status == "unparseable":
                out.append(self.unparseable)
            elif s.status == "correct":
                raw = answer_block(text, answer_format)
                written = raw if raw is not None else s.extracted
                out.append(self.exact if written == str(gold) else self.equivalent)
            else:
                out.append(self._closeness(s.extracted, str(gold)))
        return out

    def _closeness(self, pred: str | None, gold: str) -> float:
        try:
            _, err = compare_numbers(pred or "", gold, percent=self.percent)
        except (ValueError, UnparseableAnswer):
            return self.wrong  # not numbers: nothing is "close"
        return next((r for tol, r in self.close if err <= tol), self.wrong)


class NumberCheck:
    """The answer equals the gold number (the seeds' ``check_numbers``), as the scorer judges it: with numeric
    data the verifier compares the extracted answer read as a number (``$``, commas, ``72.0``, unicode digits
    and exponents normalised), within the data's tolerance. Rows whose gold is not a number (words, yes/no)
    are masked: the check does not apply to them.

    Args:
        correct: the scorer's verdict is correct.
        wrong: it is wrong.
        unparseable: no answer could be read.

    >>> NumberCheck()(["", "", "", ""], scores=[Score("72", "correct", 1.0), Score("70", "wrong", 0.0),
    ...     Score(None, "unparseable", 0.0), Score("yes", "correct", 1.0)], answer=["72"] * 3 + ["yes"])
    [1.5, 0.0, 0.0, None]
    """

    role = "correctness"  # what it pays for (control runs replace or keep rewards by role)

    def __init__(self, correct: float = 1.5, wrong: float = 0.0, unparseable: float = 0.0):
        self.correct, self.wrong, self.unparseable = correct, wrong, unparseable

    def __call__(
        self, completions: list[str], *, scores: list[Score], answer: list[str], **_: Any
    ) -> list[float | None]:
        return [None if canonical_number(str(gold)) is None else _verdict(s, self.correct, self.wrong, self.unparseable)
                for s, gold in zip(scores, answer)]


class SymbolicMatch:
    """Symbolic equivalence of the answer and the gold (``1/2`` = ``0.5`` = ``\\frac{1}{2}``), as the scorer
    judges it: with ``data.answer_type=math`` the data's verifier is math-verify (:class:`MathVerifier`), which
    the scorer asks about the extracted answer (LaTeX such as ``\\sqrt{2}`` is passed on as written). The
    reward does not ask math-verify itself: it read the raw block, so ``٧٢`` or ``７２`` (correct for the
    scorer) came out unparseable, and training rewarded something other than what evaluation counted.

    Args:
        correct, wrong, unparseable: the rewards for each verdict (a gold the verifier cannot read is masked,
            a data problem).

    >>> SymbolicMatch()(["<answer>0.5</answer>", "<answer>2/3</answer>", "<answer>?</answer>"],
    ...                 scores=[Score("0.5", "correct", 1.0), Score("2/3", "wrong", 0.0),
    ...                         Score("?", "unparseable", 0.0)])
    [1.0, 0.0, 0.0]
    """

    role = "correctness"  # what it pays for (control runs replace or keep rewards by role)

    def __init__(self, correct: float = 1.0, wrong: float = 0.0, unparseable: float = 0.0):
        self.correct, self.wrong, self.unparseable = correct, wrong, unparseable

    def __call__(self, completions: list[str], *, scores: list[Score], **_: Any) -> list[float | None]:
        return [_verdict(s, self.correct, self.wrong, self.unparseable) for s in scores]


def _verdict(score: Score, correct: float, wrong: float, unparseable: float) -> float | None:
    """The reward for the scorer's verdict on one completion; None for a bad gold (no reward either way)."""
    if score.status == "correct":
        return correct
    if score.status == "unparseable":
        return unparseable
    return None if score.status == "bad_gold" else wrong


@checked("LengthShaping")
class LengthShaping:
    """Brevity shaping: ``reward`` for a reply up to ``target`` long, falling linearly to 0 at twice that.

    Args:
        target: length (in ``unit``) that earns the full reward.
        unit: ``chars`` or ``words``.
        reward: the full reward.
        only_correct: shape only correct answers (others get 0), so a short wrong reply earns nothing: without
            it, the cheapest way to this reward is to answer at once and wrongly.

    >>> r = LengthShaping(target=10, unit="chars")
    >>> r(["x" * 5, "x" * 15, "x" * 30, "x"], scores=[Score("1", "correct", 1.0)] * 3 + [Score("2", "wrong", 0.0)])
    [1.0, 0.5, 0.0, 0.0]
    """

    role = "shaping"  # what it pays for (control runs replace or keep rewards by role)

    def __init__(self, target: AtLeastOne = 400, unit: Literal["chars", "words"] = "chars", reward: float = 1.0,
                 only_correct: bool = True):
        self.target, self.unit, self.reward, self.only_correct = target, unit, reward, only_correct

    def __call__(self, completions: list[str], *, scores: list[Score], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for text, s in zip(completions, scores):
            if s.status == "bad_gold":
                out.append(None)
            elif self.only_correct and not s.correct:
                out.append(0.0)
            else:
                n = len(text.split()) if self.unit == "words" else len(text)
                out.append(self.reward * min(1.0, max(0.0, 2.0 - n / self.target)))
        return out
