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

from typing import Any

from rlvr.interfaces import AtLeastOne, Count, NonNegative, Positive, TrainInputs, TrainResult
from rlvr.model.reward_head import reward_model_from
from rlvr.train.preference import OURS, Source, check_settings, train_with, training_rows, trl_config
from rlvr.train.trl_bridge import OnNonFinite, check_extra, checkpointing, model_args


class RewardModelLoop:
    """Bradley-Terry reward modelling on preference pairs.

    Args:
        max_steps, learning_rate, lr_scheduler_type, warmup_steps, per_device_train_batch_size,
            gradient_accumulation_steps: as for ``dpo``.
        center_rewards_coefficient: weight of a penalty on the mean reward, keeping scores centred on 0 (null:
            none).
        max_length: tokens per prompt + completion.
        preferences, samples_per_prompt, sample_prompts, sample_temperature, sample_batch_size,
            max_completion_length: where the
            pairs come from and how they are sampled, as for ``dpo``.
        logging_steps, save_steps, keep_checkpoints, on_nonfinite_loss: as for ``dpo``.
        extra: any further ``trl.RewardConfig`` field (checked against RewardConfig).
    """

    def __init__(
        self,
        max_steps: AtLeastOne = 20,
        learning_rate: Positive = 1e-5,
        lr_scheduler_type: str = "constant",
        warmup_steps: NonNegative = 0,
        per_device_train_batch_size: AtLeastOne = 8,
        gradient_accumulation_steps: AtLeastOne = 1,
        center_rewards_coefficient: float | None = None,
        max_length: AtLeastOne | None = 512,
        preferences: Source = "samples",
        samples_per_prompt: AtLeastOne = 4,
        sample_prompts: AtLeastOne | None = 128,
        sample_temperature: Positive = 1.0,
        sample_batch_size: AtLeastOne = 32,
        max_completion_length: AtLeastOne = 40,
        logging_steps: AtLeastOne = 1,
        save_steps: Count = 10,
        keep_checkpoints: AtLeastOne = 2,
        on_nonfinite_loss: OnNonFinite = "skip",
        extra: dict[str, Any] = {},  # noqa: B006
    ):
        self.settings = {k: v for k, v in locals().items() if k not in ("self", "extra")}
        self.extra = dict(extra)
        check_settings(self.settings)
        from trl import RewardConfig

        check_extra(RewardConfig, self.extra, self.settings,
                    lambda tmp: self.config(tmp, seed=0, bf16=False, **checkpointing(False)))

    @property
    def max_steps(self) -> int:
        return self.settings["max_steps"]

    def config(self, output_dir: str, seed: int, **model_args: Any) -> Any:
        """The ``trl.RewardConfig`` for this run."""
        from trl import RewardConfig

        return trl_config(RewardConfig, self.settings, self.extra, output_dir, seed, OURS, **model_args)

    def train(self, inputs: TrainInputs) -> TrainResult:
        """Train a reward model, made from ``inputs.model``, on the preference pairs of ``inputs.train``. The
        pairs are built first (sampling needs the policy); the result's model is the reward model."""
        from trl import RewardTrainer

        s = self.settings
        pairs = training_rows(inputs, s, "pairs")
        model = reward_model_from(inputs.model, seed=inputs.seed)
        return train_with(RewardTrainer, inputs, s, s["per_device_train_batch_size"] * s["gradient_accumulation_steps"],
                          model=model, train_dataset=pairs,
                          args=self.config(inputs.output_dir, inputs.seed, **model_args(model)))
