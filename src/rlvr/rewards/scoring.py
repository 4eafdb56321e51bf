"""Scoring a completion against its row: extract, then verify. Training rewards and evaluation both call
:class:`Scorer`, so what counts as correct can never differ between the two."""

from __future__ import annotations

from typing import Any

from rlvr.data.prompts import AnswerFormat
from rlvr.interfaces import Score, Verifier
from rlvr.rewards.extract import extract_answer


class Scorer:
    """Extract the answer from a completion in ``fmt`` and score it with the data's ``verifier``.

    A verifier that raises ``ValueError`` means the gold answer is unusable: the row scores ``bad_gold``
    (no reward, counted as a data problem), never full marks.
    """

    def __init__(self, fmt: AnswerFormat, verifier: Verifier):
        self.fmt = fmt
        self.verifier = verifier

    def __call__(self, completion: str, row: dict[str, Any]) -> Score:
        extracted = extract_answer(completion, self.fmt)
        if extracted is None:
            return Score(None, "unparseable", 0.0)
        try:
            value = float(self.verifier(extracted, row))
        except ValueError:
            return Score(extracted, "bad_gold", 0.0)
        return Score(extracted, "correct" if value >= 1.0 - 1e-9 else "wrong", value)

    def score_batch(self, completions: list[str], columns: dict[str, list[Any]]) -> list[Score]:
        """Score ``completions[i]`` against the row made of ``columns[k][i]``."""
        keys = [k for k, v in columns.items() if isinstance(v, list) and len(v) == len(completions)]
        return [self(c, {k: columns[k][i] for k in keys}) for i, c in enumerate(completions)]
