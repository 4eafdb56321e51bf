"""Scoring, the bottom layer that data, rewards and evaluation all use: answer formats, extraction, number
handling, verifiers and the :class:`Scorer` that turns a completion into a :class:`~rlvr.interfaces.Score`."""

from rlvr.scoring.extract import (
    answer_block,
    canonical_number,
    extract_answer,
    is_well_formatted,
    last_number,
)
from rlvr.scoring.formats import MARKER_NAMES, MARKER_STYLES, AnswerFormat
from rlvr.scoring.numbers import UnparseableAnswer, compare_numbers
from rlvr.scoring.scorer import Scorer
from rlvr.scoring.verifiers import (
    FinQAVerifier,
    MathVerifier,
    NumberVerifier,
    ReasoningGymVerifier,
    TextVerifier,
)

__all__ = [
    "MARKER_NAMES", "MARKER_STYLES", "AnswerFormat", "FinQAVerifier", "MathVerifier", "NumberVerifier",
    "ReasoningGymVerifier", "Scorer", "TextVerifier", "UnparseableAnswer", "answer_block", "canonical_number",
    "compare_numbers", "extract_answer", "is_well_formatted", "last_number",
]
