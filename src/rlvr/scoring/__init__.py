"""Scoring, the bottom layer that data, rewards and evaluation all use: answer formats, where the final answer
stands (:mod:`~rlvr.scoring.extract`), how it is read by type (:mod:`~rlvr.scoring.numbers`,
:mod:`~rlvr.scoring.verifiers`) and the :class:`Scorer` that turns a completion into a
:class:`~rlvr.interfaces.Score`."""

from rlvr.scoring.extract import (
    answer_block,
    canonical_number,
    extract_answer,
    final_answer,
    is_well_formatted,
    last_number,
    read_text,
)
from rlvr.scoring.formats import MARKER_NAMES, MARKER_STYLES, AnswerFormat
from rlvr.scoring.numbers import UnparseableAnswer, compare_numbers, read_number
from rlvr.scoring.scorer import Scorer
from rlvr.scoring.verifiers import (
    ANSWER_TYPES,
    AnswerType,
    ChoiceVerifier,
    FinQAVerifier,
    ListVerifier,
    MathVerifier,
    NumberVerifier,
    ReasoningGymVerifier,
    TextVerifier,
)

__all__ = [
    "ANSWER_TYPES", "MARKER_NAMES", "MARKER_STYLES", "AnswerFormat", "AnswerType", "ChoiceVerifier", "FinQAVerifier",
    "ListVerifier", "MathVerifier", "NumberVerifier", "ReasoningGymVerifier", "Scorer", "TextVerifier",
    "UnparseableAnswer", "answer_block", "canonical_number", "compare_numbers", "extract_answer", "final_answer",
    "is_well_formatted", "last_number", "read_number", "read_text",
]
