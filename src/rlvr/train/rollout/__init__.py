"""Sampling GRPO rollouts fast, with the trainer's own weights: :class:`RolloutEngine` (see its module)."""

from rlvr.train.rollout.engine import Rollout, RolloutEngine
from rlvr.train.rollout.sampling import Sampling

__all__ = ["Rollout", "RolloutEngine", "Sampling"]
