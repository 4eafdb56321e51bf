"""A reward model through TRL's ``RewardTrainer``: the policy's transformer body with a sequence-classification
head (one score per sequence, :func:`rlvr.model.reward_head.reward_model_from`), trained with the Bradley-Terry
loss to score the chosen completion of each pair above the rejected one. The pairs come from the policy's own
samples scored by the verifier, or from a dataset (see :mod:`rlvr.train.preference`).

The trained reward model is the stage's output (saved to ``model/``; load it with
``AutoModelForSequenceClassification``). It does not generate, so its held-out evaluation is pairwise accuracy
on held-out pairs: use ``eval=pairwise`` with it (:class:`rlvr.evaluation.PairwiseEvaluator`).

Run it:  python run_pipeline.py train=reward_model eval=pairwise
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlvr.interfaces import Positive, TrainInputs
from rlvr.model.reward_head import reward_model_from
from rlvr.train.preference import PreferenceLoop


@dataclass(eq=False, kw_only=True)
class RewardModelLoop(PreferenceLoop):
    """Bradley-Terry reward modelling on preference pairs. Settings besides the preference loops'
    (:class:`rlvr.train.preference.PreferenceLoop`):

    Args:
        learning_rate: peak learning rate (the new head learns from scratch: higher than the policy loops').
        center_rewards_coefficient: weight of a penalty on the mean reward, keeping scores centred on 0 (null:
            none).
    """

    learning_rate: Positive = 1e-5
    center_rewards_coefficient: float | None = None

    def trl_classes(self) -> tuple[type, type]:
        from trl import RewardConfig, RewardTrainer

        return RewardConfig, RewardTrainer

    def model(self, inputs: TrainInputs) -> Any:
        """The reward model, made from the policy: its body and a new, seeded head; the stage's result."""
        return reward_model_from(inputs.model, seed=inputs.seed)
