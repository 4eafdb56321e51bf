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
from rlvr.rewards.total import weighted_total

__all__ = [
    "AnswerCheck", "ApproximateFormat", "Correctness", "LengthShaping", "NumberCheck", "RewardSuite", "StrictFormat",
    "SymbolicMatch", "weighted_total",
]
