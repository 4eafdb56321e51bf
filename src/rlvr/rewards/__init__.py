"""Rewards: answer extraction, scoring against the task's verifier, and the configured reward functions."""

from rlvr.rewards.functions import (
    AnswerCheck,
    ApproximateFormat,
    Correctness,
    LengthShaping,
    NumberCheck,
    StrictFormat,
    SymbolicMatch,
)
from rlvr.rewards.scoring import Scorer, UnparseableAnswer
from rlvr.rewards.suite import RewardSuite
from rlvr.rewards.verifiers import MathVerifier, NumberVerifier, TextVerifier

__all__ = [
    "AnswerCheck", "ApproximateFormat", "Correctness", "LengthShaping", "MathVerifier", "NumberCheck",
    "NumberVerifier", "RewardSuite", "Scorer", "StrictFormat", "SymbolicMatch", "TextVerifier", "UnparseableAnswer",
]
