"""Reward functions. Each one is a class configured from YAML (``_target_`` + its parameters + ``weight``).

Contract (TRL's, extended): ``reward(completions, *, scores, answer_format, **columns) -> list[float | None]``
where ``completions`` are the completion texts, ``scores`` the shared :class:`~rlvr.interfaces.Score` of each
(extraction + verifier, computed once per batch) and ``columns`` the dataset columns (``answer``, ``task``...).
``None`` masks a sample out of that reward. A plain TRL reward function ``f(completions, **kwargs)`` also works
(see :mod:`rlvr.rewards.suite`).

Every answer reward reads the shared :class:`Score`, so a reward and the evaluation never disagree on what
was answered, and every one keeps "unparseable" (no readable answer) apart from "wrong", and gives a row
whose gold answer is unusable (``bad_gold``) ``None``: no reward either way, counted by the suite.

The defaults of :class:`ApproximateFormat`, :class:`AnswerCheck` and :class:`NumberCheck` are the values of
the seed experiments (Unsloth-style GRPO rewards); ``conf/reward/math_reasoning.yaml`` combines them.
"""

from __future__ import annotations

from typing import Any, Literal

from rlvr.errors import ConfigError
from rlvr.interfaces import Score
from rlvr.scoring.extract import answer_block, extract_answer, is_well_formatted
from rlvr.scoring.formats import AnswerFormat
from rlvr.scoring.numbers import UnparseableAnswer, compare_numbers
from rlvr.scoring.verifiers import MathVerifier


class Correctness:
    """The task's own verifier (reasoning-gym ``score_answer``, numeric match, ...) on the extracted answer.

    Args:
        correct: reward for a correct answer (partial verifier credit is scaled by it).
        wrong: reward for a wrong answer.
        unparseable: reward when no answer could be extracted.
        task: only rows of this task (the ``task`` column, e.g. one reasoning-gym task of a mixture) are
            scored, the others are masked; so each task of a mixture can have its own weight and its own
            logged reward. null scores every row.

    >>> r = Correctness()
    >>> r(["7", "x"], scores=[Score("7", "correct", 1.0), Score(None, "unparseable", 0.0)], answer_format=None)
    [1.0, 0.0]
    >>> Correctness(task="chain_sum")(["7", "7"], scores=[Score("7", "correct", 1.0)] * 2, answer_format=None,
    ...                               task=["chain_sum", "leg_counting"])
    [1.0, None]
    """

    def __init__(self, correct: float = 1.0, wrong: float = 0.0, unparseable: float = 0.0, task: str | None = None):
        self.correct, self.wrong, self.unparseable, self.task = correct, wrong, unparseable, task

    def __call__(self, completions: list[str], *, scores: list[Score], **columns: Any) -> list[float | None]:
        tasks = columns.get("task") or [None] * len(scores)
        out: list[float | None] = []
        for s, task in zip(scores, tasks):
            if self.task is not None and task != self.task:
                out.append(None)  # another task's row: not this reward's business
            elif s.status == "correct":
                out.append(self.correct * s.value)
            elif s.status == "unparseable":
                out.append(self.unparseable)
            elif s.status == "bad_gold":
                out.append(None)  # a data problem: no reward either way, counted by the suite
            else:
                out.append(self.wrong if s.value <= 0 else self.correct * s.value)
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
    """The extracted answer read as a number equals the gold number (the seeds' ``check_numbers``).

    Args:
        correct: the numbers are equal (after normalisation: ``$``, commas, ``72.0``).
        wrong: they differ.
        unparseable: no number was given.

    >>> NumberCheck()(["", "", ""], scores=[Score("72", "correct", 1.0), Score("70", "wrong", 0.0),
    ...                                     Score(None, "unparseable", 0.0)], answer_format=None, answer=["72"] * 3)
    [1.5, 0.0, 0.0]
    """

    def __init__(self, correct: float = 1.5, wrong: float = 0.0, unparseable: float = 0.0, rel_tol: float = 1e-6):
        self.correct, self.wrong, self.unparseable, self.rel_tol = correct, wrong, unparseable, rel_tol

    def __call__(
        self, completions: list[str], *, scores: list[Score], answer: list[str], **_: Any
    ) -> list[float | None]:
        out: list[float | None] = []
        for s, gold in zip(scores, answer):
            if s.status == "bad_gold":
                out.append(None)
                continue
            try:
                equal, _ = compare_numbers(s.extracted or "", str(gold), rel_tol=self.rel_tol)
            except UnparseableAnswer:
                out.append(self.unparseable)
            except ValueError:
                out.append(None)  # the gold is not a number: this check does not apply to the row
            else:
                out.append(self.correct if equal else self.wrong)
        return out


class SymbolicMatch:
    """Symbolic equivalence of the answer and the gold through ``math-verify`` (``1/2`` = ``0.5`` =
    ``\\frac{1}{2}``). Reads the answer block as written, so LaTeX such as ``\\sqrt{2}`` reaches math-verify.

    Args:
        correct, wrong, unparseable: the rewards for each outcome (math-verify cannot parse the answer:
            unparseable; it cannot parse the gold: masked, a data problem).
        float_rounding: decimals math-verify compares floats at.

    >>> fmt = AnswerFormat(answer_tag="answer")
    >>> SymbolicMatch()(["<answer>0.5</answer>", "<answer>2/3</answer>", "<answer>?</answer>"],
    ...                 scores=[None] * 3, answer_format=fmt, answer=["\\\\frac{1}{2}"] * 3)
    [1.0, 0.0, 0.0]
    """

    def __init__(self, correct: float = 1.0, wrong: float = 0.0, unparseable: float = 0.0, float_rounding: int = 6):
        self.correct, self.wrong, self.unparseable = correct, wrong, unparseable
        self.verifier = MathVerifier(float_rounding=float_rounding)

    def __call__(
        self, completions: list[str], *, scores: list[Score], answer_format: AnswerFormat, answer: list[str],
        **_: Any,
    ) -> list[float | None]:
        out: list[float | None] = []
        for text, gold in zip(completions, answer):
            raw = answer_block(text, answer_format)
            pred = raw.strip() if raw is not None else extract_answer(text, answer_format)
            if not pred:
                out.append(self.unparseable)
                continue
            try:
                out.append(self.correct if self.verifier(pred, {"answer": gold}) >= 1.0 else self.wrong)
            except UnparseableAnswer:
                out.append(self.unparseable)
            except ValueError:
                out.append(None)
        return out


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

    def __init__(self, target: int = 400, unit: Literal["chars", "words"] = "chars", reward: float = 1.0,
                 only_correct: bool = True):
        if target < 1:
            raise ConfigError(f"LengthShaping.target must be at least 1, got {target}.")
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
