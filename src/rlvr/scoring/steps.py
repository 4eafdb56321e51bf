"""The steps of a written solution, for process supervision: where a solution splits into steps (a configurable
separator, a new line by default) and which token ends each step once the prompt and the solution are tokenized
together. Step labels (:mod:`rlvr.data.step_labels`), the process reward model's training and its reward
(:class:`rlvr.rewards.ProcessReward`) all use these two functions, so a step is the same thing everywhere.

>>> split_steps("3 + 4 = 7\\n\\n7 + 2 = 9\\nThe answer is 9", "\\n")
['3 + 4 = 7\\n\\n', '7 + 2 = 9\\n', 'The answer is 9']
>>> split_steps("", "\\n"), split_steps(" \\n ", "\\n")
([], [])
"""

from __future__ import annotations

from typing import Any


def split_steps(text: str, separator: str = "\n") -> list[str]:
    """The steps of ``text``: each piece up to and including a ``separator`` (the last one: up to the end), with
    pieces that hold only whitespace joined to the step before them (a blank line is no step), so
    ``"".join(steps)`` is ``text`` whenever it has a step. Text with nothing but whitespace has no step."""
    if not text.strip():
        return []
    pieces = text.split(separator)
    steps: list[str] = []
    lead = ""  # whitespace before the first step: part of it
    for i, piece in enumerate(pieces):
        part = piece + (separator if i < len(pieces) - 1 else "")
        if not piece.strip():
            if steps:
                steps[-1] += part
            else:
                lead += part
        else:
            steps.append(lead + part)
            lead = ""
    return steps


def step_ends(tokenizer: Any, prefix: str, steps: list[str]) -> tuple[list[int], list[int]]:
    """``prefix + "".join(steps)`` tokenized as generation sees it (no special tokens added: the chat template has
    them), and for each step the position of the token holding its last character that is not whitespace: the
    token where a process reward model reads (and is trained on) that step's label. Needs a fast tokenizer (it
    maps tokens to characters)."""
    text = prefix + "".join(steps)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    ends, at = [], len(prefix)
    for step in steps:
        last = at + len(step.rstrip()) - 1  # the step's last visible character
        at += len(step)
        ends.append(max(j for j, (start, end) in enumerate(offsets) if start <= last and end > start))
    return ids, ends
