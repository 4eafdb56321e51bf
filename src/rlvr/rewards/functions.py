"""Reward functions. Each one is a class configured from YAML (``_target_`` + its parameters + ``weight``).

Contract (TRL's, extended): ``reward(completions, *, scores, answer_format, **columns) -> list[float | None]``
where ``completions`` are the completion texts, ``scores`` the shared :class:`~rlvr.interfaces.Score` of each
(extraction + verifier, computed once per batch) and ``columns`` the dataset columns (``answer``, ``task``...).
``None`` masks a sample out of that reward. A plain TRL reward function ``f(completions, **kwargs)`` also works.
"""

from __future__ import annotations

from typing import Any

from rlvr.data.prompts import AnswerFormat
from rlvr.interfaces import Score
from rlvr.rewards.extract import blocks


class Correctness:
    """The task's own verifier (reasoning-gym ``score_answer``, numeric match, ...) on the extracted answer.

    Args:
        correct: reward for a correct answer (partial verifier credit is scaled by it).
        wrong: reward for a wrong answer.
        unparseable: reward when no answer could be extracted.

    >>> r = Correctness()
    >>> r(["7", "x"], scores=[Score("7", "correct", 1.0), Score(None, "unparseable", 0.0)], answer_format=None)
    [1.0, 0.0]
    """

    def __init__(self, correct: float = 1.0, wrong: float = 0.0, unparseable: float = 0.0):
        self.correct, self.wrong, self.unparseable = correct, wrong, unparseable

    def __call__(self, completions: list[str], *, scores: list[Score], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for s in scores:
            if s.status == "correct":
                out.append(self.correct * s.value)
            elif s.status == "unparseable":
                out.append(self.unparseable)
            elif s.status == "bad_gold":
                out.append(None)  # a data problem: no reward either way, counted by the suite
            else:
                out.append(self.wrong if s.value <= 0 else self.correct * s.value)
        return out


class StrictFormat:
    """Rewards a completion that follows the prompt's format exactly once: one answer block (and one
    reasoning block when the prompt asks for it), answer block last. Without markers: a readable number.

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


def is_well_formatted(text: str, fmt: AnswerFormat) -> bool:
    """Exactly one of each configured block (no repeats, no stray markers), the answer block last."""
    from rlvr.rewards.extract import last_number

    answer = fmt.answer_markers
    if answer is None:
        return last_number(text) is not None
    for markers in filter(None, (fmt.reasoning_markers, answer)):
        start, end = markers
        if text.count(start) != 1 or text.count(end) != 1 or len(blocks(text, start, end)) != 1:
            return False
    if not blocks(text, *answer)[0].strip():
        return False
    return text.rstrip().endswith(answer[1])
