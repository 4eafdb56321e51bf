"""Rewards: the configured reward functions (the learned ones, a process reward model and a reward model or
ensemble, in :mod:`rlvr.rewards.learned`) and the suite that adapts them to TRL (scoring lives in
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
from rlvr.rewards.learned import ProcessReward, RewardModelScore
from rlvr.rewards.suite import RewardSuite
from rlvr.rewards.total import weighted_total

__all__ = [
    "AnswerCheck", "ApproximateFormat", "Correctness", "LengthShaping", "NumberCheck", "ProcessReward",
    "RewardModelScore", "RewardSuite", "StrictFormat", "SymbolicMatch", "weighted_total",
]
