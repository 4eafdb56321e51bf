"""Completions built from a gold answer, in the answer format the prompt asks for: the targets of supervised
fine-tuning as a format warm-up. The scorer reads the same :class:`AnswerFormat`, so a built completion can be
checked before it is trained on (``rlvr.train.SFTLoop`` keeps only those that score correct).

>>> gold_completion("42", AnswerFormat())
'The answer is 42.'
>>> gold_completion("42", AnswerFormat(answer_style="gsm8k"))
'#### 42'
>>> gold_completion("42", AnswerFormat(answer_tag="answer"))
'<answer>42</answer>'
>>> print(gold_completion("42", AnswerFormat(answer_tag="answer", reasoning_tag="think")))
<think>
Working through the problem step by step gives 42.
</think>
<answer>42</answer>
"""

from __future__ import annotations

from typing import Any

from rlvr.scoring.extract import HASHES
from rlvr.scoring.formats import AnswerFormat

REASONING = "Working through the problem step by step gives {answer}."


def gold_completion(answer: str, fmt: AnswerFormat, reasoning: str = REASONING) -> str:
    """A well-formatted completion giving ``answer`` in ``fmt``: the answer block (preceded by a short
    ``reasoning`` block when the format has reasoning markers); without answer markers, GSM8K's answer line
    ``#### answer`` in the ``gsm8k`` style, else a plain line ending in the answer, which the last-number
    extraction reads. ``reasoning`` may name ``{answer}``.

    The result is not checked here: a gold answer the format cannot carry (a word where the last number is
    read) gives a completion the scorer does not score correct, and the caller drops it.
    """
    answer = str(answer).strip()
    markers = fmt.answer_markers
    if markers is None:
        return f"{HASHES} {answer}" if fmt.answer_style == "gsm8k" else f"The answer is {answer}."
    block = f"{markers[0]}{answer}{markers[1]}"
    if fmt.reasoning_markers is None:
        return block
    start, end = fmt.reasoning_markers
    return f"{start}\n{reasoning.format(answer=answer)}\n{end}\n{block}"


def completion_text(completion: Any) -> str:
    """A completion as text: TRL passes conversational ones as ``[{"role": "assistant", "content": ...}]``.

    >>> completion_text([{"role": "assistant", "content": "42"}]), completion_text("42")
    ('42', '42')
    """
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
