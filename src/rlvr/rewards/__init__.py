"""Rewards: answer extraction, scoring against the task's verifier, and the configured reward functions."""

from rlvr.rewards.functions import Correctness, StrictFormat
from rlvr.rewards.scoring import Scorer
from rlvr.rewards.suite import RewardSuite

__all__ = ["Correctness", "RewardSuite", "Scorer", "StrictFormat"]
