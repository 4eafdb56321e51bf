"""Kahneman-Tversky Optimization through TRL's ``KTOTrainer``: unpaired examples labelled desirable or not.
From the policy's own samples (``train.preferences=samples``), each sample of a prompt whose samples do not all
score alike is desirable when the verifier scores it correct; from a dataset, its ``completion``/``label`` columns,
or its chosen/rejected pairs unpaired. See :mod:`rlvr.train.preference`.

Run it:  python run_pipeline.py train=kto
"""

from __future__ import annotations

from typing import Any, Literal

from rlvr.interfaces import AtLeastOne, Count, NonNegative, Positive, TrainInputs, TrainResult
from rlvr.train.preference import OURS, Source, check_settings, train_with, training_rows, trl_config
from rlvr.train.trl_bridge import OnNonFinite, check_extra, checkpointing, model_args


class KTOLoop:
    """KTO against a frozen reference (the policy before training).

    Args:
        max_steps, learning_rate, lr_scheduler_type, warmup_steps, gradient_accumulation_steps: as for ``dpo``.
        per_device_train_batch_size: labelled examples per device per step (at least 2: KTO estimates its KL term
            from mismatched examples of the batch).
        beta: strength of the pull towards the reference.
        loss_type: ``kto`` or ``apo_zero_unpaired``.
        desirable_weight, undesirable_weight: loss weights of the two labels (raise the rarer one's).
        reference: ``model`` (a frozen copy run each step) or ``precomputed`` (reference log-probs computed once).
        max_length: tokens per prompt + completion.
        preferences, samples_per_prompt, sample_prompts, sample_temperature, sample_batch_size,
            max_completion_length: where the
            examples come from and how they are sampled, as for ``dpo``.
        logging_steps, save_steps, keep_checkpoints, on_nonfinite_loss: as for ``dpo``.
        extra: any further ``trl.KTOConfig`` field (checked against KTOConfig).
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
        loss_type: Literal["kto", "apo_zero_unpaired"] = "kto",
        desirable_weight: float = 1.0,
        undesirable_weight: float = 1.0,
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
        from trl import KTOConfig

        check_extra(KTOConfig, self.extra, self.settings,
                    lambda tmp: self.config(tmp, seed=0, bf16=False, **checkpointing(False)))

    @property
    def max_steps(self) -> int:
        return self.settings["max_steps"]

    def config(self, output_dir: str, seed: int, **model_args: Any) -> Any:
        """The ``trl.KTOConfig`` for this run."""
        from trl import KTOConfig

        s = {k: v for k, v in self.settings.items() if k != "reference"}
        return trl_config(KTOConfig, s, self.extra, output_dir, seed, OURS,
                          precompute_ref_log_probs=self.settings["reference"] == "precomputed", **model_args)

    def train(self, inputs: TrainInputs) -> TrainResult:
        """KTO on labelled completions of ``inputs.train``'s prompts; events go to ``inputs.events``."""
        from trl import KTOTrainer

        s = self.settings
        return train_with(KTOTrainer, inputs, s, s["per_device_train_batch_size"] * s["gradient_accumulation_steps"],
                          model=inputs.model, train_dataset=training_rows(inputs, s, "labels"),
                          args=self.config(inputs.output_dir, inputs.seed, **model_args(inputs.model)))
