"""Answer formats: where the answer (and the reasoning) sits in a completion.

The prompt asks for a format and the scorer reads the same one, so they cannot drift apart. Named marker
styles (``xml``: ``<think>``/``<answer>``; ``working_out``: the seeds' ``<start_working_out>``/``<SOLUTION>``)
are what ``${get_marker:NAME,STYLE}`` in a prompt config refers to.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    ``answer_tag="answer"`` means ``<answer>...</answer>``; ``None`` means the last number of the reply.
    ``reasoning_tag`` (e.g. ``think``) is only checked by format rewards. Tags may also be full markers
    (``start``/``end`` pairs) as in the seeds' ``<start_working_out>`` style, see ``markers``.
    """

    answer_tag: str | None = None
    reasoning_tag: str | None = None
    answer_start: str | None = None
    answer_end: str | None = None
    reasoning_start: str | None = None
    reasoning_end: str | None = None
    fallback_last_number: bool = True

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

