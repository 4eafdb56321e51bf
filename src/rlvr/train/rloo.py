"""REINFORCE Leave-One-Out (Ahmadian et al., 2024) through TRL's ``RLOOTrainer``, with our reward functions as
GRPO uses them: each completion's baseline is the mean reward of the other completions of its prompt.

Run it:  python run_pipeline.py train=rloo
"""

from __future__ import annotations

from dataclasses import dataclass

from rlvr.interfaces import Positive
from rlvr.train.trl_bridge import GroupLoop


@dataclass(eq=False, kw_only=True)
class RLOOLoop(GroupLoop):
    """RLOO with verifiable rewards. Settings besides those of every loop over groups of rewarded completions
    (:class:`rlvr.train.trl_bridge.GroupLoop`; its ``beta`` puts the KL in the reward, as in the RLOO paper, and
    the leave-one-out baseline needs ``num_generations`` of at least 2):

    Args:
        normalize_advantages: divide advantages by their standard deviation.
        epsilon: clip range of the importance ratio (with num_iterations > 1).
    """

    normalize_advantages: bool = False
    epsilon: Positive = 0.2

    def trl_classes(self) -> tuple[type, type]:
        from trl import RLOOConfig, RLOOTrainer

        return RLOOConfig, RLOOTrainer
