"""Scoring a completion against its row: extract, then verify. Training rewards and evaluation both call
:class:`Scorer`, so what counts as correct can never differ between the two."""

from __future__ import annotations

import logging
from typing import Any

from rlvr.interfaces import Score, Verifier
from rlvr.scoring.extract import extract_answer
from rlvr.scoring.formats import AnswerFormat
from rlvr.scoring.numbers import UnparseableAnswer

log = logging.getLogger(__name__)


class Scorer:
    """Extract the answer from a completion in ``fmt`` and score it with the data's ``verifier``.

    A verifier that raises ``ValueError`` means the gold answer is unusable: the row scores ``bad_gold``
    (no reward, counted as a data problem), never full marks. A verifier that raises :class:`UnparseableAnswer`
    means the completion's answer cannot be read: ``unparseable``, like a completion with no answer at all.
    Any other exception from the verifier (a bug) is logged and scored like ``bad_gold``: no reward either way,
    never a crash in the middle of training.

    >>> from rlvr.scoring.verifiers import NumberVerifier
    >>> scorer = Scorer(AnswerFormat(answer_tag="answer"), NumberVerifier())
    >>> [scorer(c, {"answer": g}).status for c, g in [("<answer>$1,234</answer>", "1234"),
    ...     ("<answer>7</answer>", "8"), ("<answer>seven</answer>", "7"), ("<answer>7</answer>", "n/a")]]
    ['correct', 'wrong', 'unparseable', 'bad_gold']
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
        except UnparseableAnswer:
            return Score(extracted, "unparseable", 0.0)
        except ValueError:
            return Score(extracted, "bad_gold", 0.0)
        except Exception as e:  # noqa: BLE001 - a verifier bug must not stop training: no reward, logged
            log.warning("verifier %s raised %s: %s; the row is scored like a bad gold answer (no reward)",
                        type(self.verifier).__name__, type(e).__name__, e)
            return Score(extracted, "bad_gold", 0.0)
        value = min(max(value, 0.0), 1.0) if value == value else 0.0  # a verifier's NaN is never credit
        return Score(extracted, "correct" if value >= 1.0 - 1e-9 else "wrong", value)

    def score_batch(self, completions: list[str], columns: dict[str, list[Any]]) -> list[Score]:
        """Score ``completions[i]`` against the row made of ``columns[k][i]``."""
        keys = [k for k, v in columns.items() if isinstance(v, list) and len(v) == len(completions)]
        return [self(c, {k: columns[k][i] for k in keys}) for i, c in enumerate(completions)]
