"""Prompt templates (the ``prompts`` config group) and the answer format the prompt asks for.

The prompt and the reward must agree on where the answer is. ``PromptTemplate.answer_format`` is the one
object both the rewards and the evaluator read, so changing ``prompts.answer_tag`` changes what is asked and
what is parsed together.
"""

from __future__ import annotations

from typing import Any, Literal

from rlvr.errors import ConfigError
from rlvr.schema import checked
from rlvr.scoring.formats import AnswerFormat


@checked("prompts")
class PromptTemplate:
    """Turns a question into chat messages; the tokenizer's chat template is applied by the trainer.

    Args:
        system: system message (null for none). To name the markers in it, use ``${get_marker:answer_start}``
            and friends: they follow the markers configured here (see ``rlvr.config.resolvers``).
        user: user message template with ``{question}``.
        answer_tag: tag name the answer must be wrapped in (``answer`` -> ``<answer>42</answer>``);
            null means "the last number of the reply".
        reasoning_tag: optional tag for the reasoning block (``think``), checked by format rewards.
        answer_start/answer_end, reasoning_start/reasoning_end: explicit markers, overriding the tags
            (the seeds' ``<start_working_out>``/``<SOLUTION>`` style).
        fallback_last_number: with tags, read the last number when no answer block is present; in the
            ``gsm8k`` style, when the reply has neither ``####`` nor "answer is".
        answer_style: without answer markers, where the answer is: ``last_number`` (the last number of the
            reply) or ``gsm8k`` (the number right after ``####``, else after the last "answer is"; see
            ``rlvr.scoring.extract``). ``prompts=gsm8k`` asks for it.
        negative_parentheses: whether ``(42)`` is -42 (accounting, as in FinQA) or 42 (an aside); null: by
            ``answer_style``, negative everywhere except in ``gsm8k``.
    """

    def __init__(
        self,
        system: str | None = "Solve the problem. Give the final answer as a number on the last line.",
        user: str = "{question}",
        answer_tag: str | None = None,
        reasoning_tag: str | None = None,
        answer_start: str | None = None,
        answer_end: str | None = None,
        reasoning_start: str | None = None,
        reasoning_end: str | None = None,
        fallback_last_number: bool = True,
        answer_style: Literal["last_number", "gsm8k"] = "last_number",
        negative_parentheses: bool | None = None,
    ):
        if "{question}" not in user:
            raise ConfigError(f"prompts.user must contain '{{question}}', got {user!r}.")
        self.system = system
        self.user = user
        self.answer_format = AnswerFormat(
            answer_tag=answer_tag, reasoning_tag=reasoning_tag, answer_start=answer_start, answer_end=answer_end,
            reasoning_start=reasoning_start, reasoning_end=reasoning_end,
            fallback_last_number=fallback_last_number, answer_style=answer_style,
            negative_parentheses=negative_parentheses,
        )

    def messages(self, question: str) -> list[dict[str, Any]]:
        """Chat messages for one question: ``[system?, user]``."""
        out = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        out.append({"role": "user", "content": self.user.format(question=question)})
        return out
