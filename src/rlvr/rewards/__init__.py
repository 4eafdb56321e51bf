"""Rewards: the configured reward functions and the suite that adapts them to TRL (scoring lives in
:mod:`rlvr.scoring`)."""

from rlvr.rewards.functions import (
    AnswerCheck,
    ApproximateFormat,
    Correctness,
    LengthShaping,
    NumberCheck,
    StrictFormat,
    SymbolicMatch,
)
from rlvr.rewards.suite import RewardSuite

__all__ = [
    "AnswerCheck", "ApproximateFormat", "Correctness", "LengthShaping", "NumberCheck", "RewardSuite", "StrictFormat",
    "SymbolicMatch",
]
