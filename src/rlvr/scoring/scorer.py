"""Scoring a completion against its row: find the final answer, read it by type, judge it. Training rewards
and evaluation both call :class:`Scorer`, so what counts as correct can never differ between the two."""

from __future__ import annotations

import logging
from typing import Any

from rlvr.interfaces import Score, Verifier
from rlvr.scoring.extract import Reader, final_answer
from rlvr.scoring.formats import AnswerFormat
from rlvr.scoring.numbers import UnparseableAnswer

log = logging.getLogger(__name__)


class Scorer:
    """Find the final answer of a completion in ``fmt``, read it as the data's answer type, judge it with the
    data's ``verifier``.

    No single answer (none, two candidates, a number denied or part of an expression, a sentence where an
    expression is asked) is ``unparseable``, with the reason in ``Score.note``. A verifier that raises
    ``ValueError`` means the gold answer is unusable: the row scores ``bad_gold`` (no reward, counted as a data
    problem), never full marks. Any other exception (a bug) is logged and scored like ``bad_gold``: no reward
    either way, never a crash in the middle of training. A verifier's value below 1 (partial credit) is
    ``wrong``; the value is kept for rewards that opt in to partial credit.

    >>> from rlvr.scoring.verifiers import NumberVerifier
    >>> scorer = Scorer(AnswerFormat(answer_tag="answer"), NumberVerifier())
    >>> [scorer(c, {"answer": g}).status for c, g in [("<answer>$1,234</answer>", "1234"),
    ...     ("<answer>7</answer>", "8"), ("<answer>7 or 8</answer>", "7"), ("<answer>7</answer>", "n/a")]]
    ['correct', 'wrong', 'unparseable', 'bad_gold']
    """

    def __init__(self, fmt: AnswerFormat, verifier: Verifier):
        self.fmt = fmt
        self.verifier = verifier

    def __call__(self, completion: str, row: dict[str, Any]) -> Score:
        extracted = None
        try:
            self.verifier.gold(str(row["answer"]))  # a gold the type cannot read is the data's problem, first
            extracted = final_answer(completion, self.fmt, self._reader(row))
            value = float(self.verifier(extracted, row))
        except UnparseableAnswer as e:
            return Score(extracted, "unparseable", 0.0, note=str(e))
        except ValueError as e:
            return Score(extracted, "bad_gold", 0.0, note=str(e))
        except Exception as e:  # noqa: BLE001 - a verifier bug must not stop training: no reward, logged
            log.warning("verifier %s raised %s: %s; the row is scored like a bad gold answer (no reward)",
                        type(self.verifier).__name__, type(e).__name__, e)
            return Score(extracted, "bad_gold", 0.0, note=f"{type(e).__name__}: {e}")
        value = min(max(value, 0.0), 1.0) if value == value else 0.0  # a verifier's NaN is never credit
        # Full marks are exactly 1: a task scorer whose partial credit sums to 0.9999999999999998 (spell_backward
        # on the gold with junk after it) has not said "correct".
        return Score(extracted, "correct" if value >= 1.0 else "wrong", value)

    def _reader(self, row: dict[str, Any]) -> Reader:
        return lambda text, how: self.verifier.read(text, how, row, self.fmt)

    def score_batch(self, completions: list[str], columns: dict[str, list[Any]]) -> list[Score]:
        """Score ``completions[i]`` against the row made of ``columns[k][i]``."""
        keys = [k for k, v in columns.items() if isinstance(v, list) and len(v) == len(completions)]
        return [self(c, {k: columns[k][i] for k in keys}) for i, c in enumerate(completions)]
