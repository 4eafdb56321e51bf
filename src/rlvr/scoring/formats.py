"""Answer formats: where the answer (and the reasoning) sits in a completion.

The prompt asks for a format and the scorer reads the same one, so they cannot drift apart. Named marker
styles (``xml``: ``<think>``/``<answer>``; ``working_out``: the seeds' ``<start_working_out>``/``<SOLUTION>``)
are what ``${get_marker:NAME,STYLE}`` in a prompt config refers to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rlvr.errors import ConfigError

ANSWER_STYLES = ("last_number", "gsm8k")

MARKER_NAMES = ("reasoning_start", "reasoning_end", "answer_start", "answer_end")
MARKER_STYLES: dict[str, dict[str, str]] = {
    "xml": {"reasoning_start": "<think>", "reasoning_end": "</think>",
            "answer_start": "<answer>", "answer_end": "</answer>"},
    "working_out": {"reasoning_start": "<start_working_out>", "reasoning_end": "<end_working_out>",
                    "answer_start": "<SOLUTION>", "answer_end": "</SOLUTION>"},
}


@dataclass(frozen=True)
class AnswerFormat:
    """Where the answer sits in a completion.

    ``answer_tag="answer"`` means ``<answer>...</answer>``; without answer markers ``answer_style`` says where
    the answer is: ``last_number``, the last number of the reply, or ``gsm8k``, the number right after
    ``####`` (GSM8K's reference solutions end in ``#### 72``), else after the last "answer is", else the last
    number (see :func:`rlvr.scoring.extract.extract_answer`). ``reasoning_tag`` (e.g. ``think``) is only
    checked by format rewards. Tags may also be full markers (``start``/``end`` pairs) as in the seeds'
    ``<start_working_out>`` style, see ``markers``.

    ``negative_parentheses``: whether a number in brackets, ``(42)``, is negative. Accounting writes losses
    that way (FinQA's tables: ``(1,234)`` is -1234), so it is by default; in GSM8K's worked answers a bracket
    is an aside (``72 (42 + 30)``) and ``(42)`` is 42. None follows the style: negative everywhere except in
    ``gsm8k``.
    """

    answer_tag: str | None = None
    reasoning_tag: str | None = None
    answer_start: str | None = None
    answer_end: str | None = None
    reasoning_start: str | None = None
    reasoning_end: str | None = None
    fallback_last_number: bool = True
    answer_style: Literal["last_number", "gsm8k"] = "last_number"
    negative_parentheses: bool | None = None

    def __post_init__(self) -> None:
        if self.answer_style not in ANSWER_STYLES:
            raise ConfigError(f"prompts.answer_style must be one of {', '.join(ANSWER_STYLES)}, "
                              f"got {self.answer_style!r}.")
        if self.answer_style != "last_number" and self.answer_markers is not None:
            raise ConfigError(f"prompts.answer_style={self.answer_style} reads the answer after '####' and takes "
                              "no answer markers: unset prompts.answer_tag/answer_start/answer_end.")

    @property
    def parentheses_negate(self) -> bool:
        """Whether ``(42)`` reads as -42 in this format (``negative_parentheses``, else by style)."""
        if self.negative_parentheses is not None:
            return self.negative_parentheses
        return self.answer_style != "gsm8k"

    @property
    def answer_markers(self) -> tuple[str, str] | None:
        if self.answer_start and self.answer_end:
            return self.answer_start, self.answer_end
        if self.answer_tag:
            return f"<{self.answer_tag}>", f"</{self.answer_tag}>"
        return None

    @property
    def reasoning_markers(self) -> tuple[str, str] | None:
        if self.reasoning_start and self.reasoning_end:
            return self.reasoning_start, self.reasoning_end
        if self.reasoning_tag:
            return f"<{self.reasoning_tag}>", f"</{self.reasoning_tag}>"
        return None

