"""SimPO (Meng et al., 2024) through TRL's experimental ``CPOTrainer`` with ``loss_type="simpo"``: a
reference-free preference loss on length-normalised log-probabilities with a target margin ``simpo_gamma``.
``cpo_alpha`` adds CPO's NLL term on the chosen completion (0: pure SimPO, as in the paper). The pairs come
from the policy's own samples or a dataset, as for ``dpo`` (see :mod:`rlvr.train.preference`).

Run it:  python run_pipeline.py train=simpo
"""

from __future__ import annotations

import warnings
from typing import Any

from rlvr.interfaces import AtLeastOne, Count, NonNegative, Positive, TrainInputs, TrainResult
from rlvr.train.preference import OURS, Source, check_settings, train_with, training_rows, trl_config
from rlvr.train.trl_bridge import OnNonFinite, check_extra, checkpointing, model_args


class SimPOLoop:
    """SimPO: no reference model.

    Args:
        max_steps, learning_rate, lr_scheduler_type, warmup_steps, per_device_train_batch_size,
            gradient_accumulation_steps: as for ``dpo``.
        beta: scale of the length-normalised reward (the paper uses 2 to 10).
        simpo_gamma: target reward margin between chosen and rejected (the paper's gamma; TRL's default 0.5).
        cpo_alpha: weight of the NLL loss on chosen completions (0: pure SimPO).
        max_length: tokens per prompt + completion.
        preferences, samples_per_prompt, sample_prompts, sample_temperature, sample_batch_size,
            max_completion_length: where the
            pairs come from and how they are sampled, as for ``dpo``; ``max_completion_length`` also caps the
            completions CPOTrainer tokenizes.
        logging_steps, save_steps, keep_checkpoints, on_nonfinite_loss: as for ``dpo``.
        extra: any further ``trl.experimental.cpo.CPOConfig`` field (checked against CPOConfig).
    """

    def __init__(
        self,
        max_steps: AtLeastOne = 20,
        learning_rate: Positive = 1e-6,
        lr_scheduler_type: str = "constant",
        warmup_steps: NonNegative = 0,
        per_device_train_batch_size: AtLeastOne = 8,
        gradient_accumulation_steps: AtLeastOne = 1,
        beta: NonNegative = 2.0,
        simpo_gamma: float = 0.5,
        cpo_alpha: float = 0.0,
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
        check_extra(_cpo()[0], self.extra, self.settings,
                    lambda tmp: self.config(tmp, seed=0, bf16=False, **checkpointing(False)))

    @property
    def max_steps(self) -> int:
        return self.settings["max_steps"]

    def config(self, output_dir: str, seed: int, **model_args: Any) -> Any:
        """The ``CPOConfig`` for this run, with ``loss_type="simpo"``."""
        return trl_config(_cpo()[0], self.settings, self.extra, output_dir, seed, OURS - {"max_completion_length"},
                          loss_type="simpo", **model_args)

    def train(self, inputs: TrainInputs) -> TrainResult:
        """SimPO on the preference pairs of ``inputs.train``; events go to ``inputs.events``."""
        s = self.settings
        return train_with(_cpo()[1], inputs, s, s["per_device_train_batch_size"] * s["gradient_accumulation_steps"],
                          model=inputs.model, train_dataset=training_rows(inputs, s, "pairs"),
                          args=self.config(inputs.output_dir, inputs.seed, **model_args(inputs.model)))


def _cpo() -> tuple[type, type]:
    """TRL's ``(CPOConfig, CPOTrainer)``, from ``trl.experimental`` (its warning that the API may change is
    silenced: we chose it, and pin TRL)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are importing from 'trl.experimental'")
        from trl.experimental.cpo import CPOConfig, CPOTrainer

    return CPOConfig, CPOTrainer
