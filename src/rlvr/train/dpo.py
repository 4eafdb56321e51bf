"""Direct Preference Optimization through TRL's ``DPOTrainer``, on pairs built from the policy's own samples
scored by the verifier (``train.preferences=samples``) or on a dataset's chosen/rejected pairs
(``train.preferences=dataset``); see :mod:`rlvr.train.preference`.

Run it:  python run_pipeline.py train=dpo          (or experiment=dpo_from_samples)
"""

from __future__ import annotations

from typing import Any, Literal

from rlvr.interfaces import AtLeastOne, Count, NonNegative, Positive, TrainInputs, TrainResult
from rlvr.train.preference import OURS, Source, check_settings, train_with, training_rows, trl_config
from rlvr.train.trl_bridge import OnNonFinite, check_extra, checkpointing, model_args


class DPOLoop:
    """DPO against a frozen reference: the policy as it was before training.

    Args:
        max_steps: optimizer steps.
        learning_rate: peak learning rate.
        lr_scheduler_type: transformers scheduler name (``constant``, ``linear``, ``cosine``, ...).
        warmup_steps: warm-up steps, or a fraction of max_steps when below 1.
        per_device_train_batch_size: pairs per device per step.
        gradient_accumulation_steps: micro-batches per optimizer step.
        beta: strength of the pull towards the reference (for ``ipo``, its tau).
        loss_type: ``sigmoid`` (the DPO paper's), ``hinge`` (SLiC) or ``ipo``.
        reference: ``model`` keeps a frozen copy of the policy and runs it each step; ``precomputed`` computes
            the reference log-probs of every pair once before training (less memory, no second model).
        max_length: tokens per prompt + completion; longer ones are cut.
        preferences: where the pairs come from: ``samples`` (the policy's own, scored) or ``dataset``.
        samples_per_prompt: completions sampled per training prompt to pick the best and the worst from.
        sample_prompts: training prompts sampled (the first N rows; null: every row): sampling costs
            ``sample_prompts x samples_per_prompt`` generations before the first step.
        sample_temperature: sampling temperature of those completions.
        sample_batch_size: sequences generated together while sampling.
        max_completion_length: token budget of the sampled completions; evaluation's budget follows it.
        logging_steps: log (and diagnose) every N steps.
        save_steps: checkpoint every N steps, and at the last step (0: no checkpoints, so no resume).
        keep_checkpoints: the newest checkpoints kept.
        on_nonfinite_loss: as for ``grpo``: a step with a NaN or inf loss never changes the weights; ``skip`` trains
            on, ``stop`` saves a checkpoint and stops.
        extra: any further ``trl.DPOConfig`` field, passed through unchanged (checked against DPOConfig).
    """

    def __init__(
        self,
        max_steps: AtLeastOne = 20,
        learning_rate: Positive = 1e-6,
        lr_scheduler_type: str = "constant",
        warmup_steps: NonNegative = 0,
        per_device_train_batch_size: AtLeastOne = 8,
        gradient_accumulation_steps: AtLeastOne = 1,
        beta: NonNegative = 0.1,
        loss_type: Literal["sigmoid", "hinge", "ipo"] = "sigmoid",
        reference: Literal["model", "precomputed"] = "model",
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
        from trl import DPOConfig

        check_extra(DPOConfig, self.extra, self.settings,
                    lambda tmp: self.config(tmp, seed=0, bf16=False, **checkpointing(False)))

    @property
    def max_steps(self) -> int:
        return self.settings["max_steps"]

    def config(self, output_dir: str, seed: int, **model_args: Any) -> Any:
        """The ``trl.DPOConfig`` for this run."""
        from trl import DPOConfig

        s = {k: v for k, v in self.settings.items() if k not in ("reference", "loss_type")}
        return trl_config(DPOConfig, s, self.extra, output_dir, seed, OURS, loss_type=[self.settings["loss_type"]],
                          precompute_ref_log_probs=self.settings["reference"] == "precomputed", **model_args)

    def train(self, inputs: TrainInputs) -> TrainResult:
        """DPO on the preference pairs of ``inputs.train``; events go to ``inputs.events``."""
        from trl import DPOTrainer

        s = self.settings
        return train_with(DPOTrainer, inputs, s, s["per_device_train_batch_size"] * s["gradient_accumulation_steps"],
                          model=inputs.model, train_dataset=training_rows(inputs, s, "pairs"),
                          args=self.config(inputs.output_dir, inputs.seed, **model_args(inputs.model)))
