"""REINFORCE Leave-One-Out (Ahmadian et al., 2024) through TRL's ``RLOOTrainer``, with our reward functions as
GRPO uses them: each completion's baseline is the mean reward of the other completions of its prompt.

Run it:  python run_pipeline.py train=rloo
"""

from __future__ import annotations

from typing import Annotated, Any

from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Count, NonNegative, Positive, Probability, Range, TrainInputs, TrainResult
from rlvr.train.checkpoints import atomic_checkpoints
from rlvr.train.diagnostics import Diagnoser
from rlvr.train.feed import with_feed
from rlvr.train.preference import trl_config
from rlvr.train.trl_bridge import OnNonFinite, check_extra, checkpointing, model_args, run_trainer


class RLOOLoop:
    """RLOO with verifiable rewards.

    Args:
        max_steps: optimizer steps.
        learning_rate: peak learning rate.
        lr_scheduler_type: transformers scheduler name (``constant``, ``linear``, ``cosine``, ...).
        warmup_steps: warm-up steps, or a fraction of max_steps when below 1.
        per_device_train_batch_size: completions per device per step (prompts x num_generations).
        gradient_accumulation_steps: micro-batches per optimizer step.
        num_generations: completions sampled per prompt (the leave-one-out baseline needs at least 2).
        max_completion_length: tokens per completion; answers beyond it are cut off.
        temperature, top_p: sampling for rollouts.
        beta: KL coefficient against the reference model (in the reward, as in the RLOO paper); 0 skips the
            reference model entirely.
        normalize_advantages: divide advantages by their standard deviation.
        epsilon: clip range of the importance ratio (with num_iterations > 1).
        num_iterations: policy updates per generation batch.
        mask_truncated_completions: drop cut-off completions from the loss.
        max_grad_norm: gradient clipping.
        logging_steps, save_steps, keep_checkpoints, on_nonfinite_loss: as for ``grpo``.
        extra: any further ``trl.RLOOConfig`` field (checked against RLOOConfig).
    """

    takes_feed = True  # rows chosen as training goes: a curriculum, flat prompts skipped (rlvr.train.feed)

    def __init__(
        self,
        max_steps: AtLeastOne = 30,
        learning_rate: Positive = 2e-5,
        lr_scheduler_type: str = "constant",
        warmup_steps: NonNegative = 0,
        per_device_train_batch_size: AtLeastOne = 16,
        gradient_accumulation_steps: AtLeastOne = 1,
        num_generations: Annotated[int, Range(ge=2, why="the advantage compares completions within a group")] = 16,
        max_completion_length: AtLeastOne = 40,
        temperature: Positive = 1.0,
        top_p: Probability = 1.0,
        beta: NonNegative = 0.0,
        normalize_advantages: bool = False,
        epsilon: Positive = 0.2,
        num_iterations: AtLeastOne = 1,
        mask_truncated_completions: bool = False,
        max_grad_norm: Positive = 1.0,
        logging_steps: AtLeastOne = 1,
        save_steps: Count = 10,
        keep_checkpoints: AtLeastOne = 2,
        on_nonfinite_loss: OnNonFinite = "skip",
        extra: dict[str, Any] = {},  # noqa: B006
    ):
        if max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1, got {max_steps}.")
        if num_generations < 2:
            raise ConfigError("train.num_generations must be >= 2: RLOO's baseline is the other completions' mean.")
        total = per_device_train_batch_size * gradient_accumulation_steps
        if total % num_generations:
            raise ConfigError(
                f"train.per_device_train_batch_size x gradient_accumulation_steps ({total}) must be a multiple of "
                f"train.num_generations ({num_generations}). Try train.per_device_train_batch_size={num_generations}.")
        if save_steps < 0 or keep_checkpoints < 1:
            raise ConfigError(f"train.save_steps must be >= 0 (0: no checkpoints) and train.keep_checkpoints >= 1, "
                              f"got {save_steps} and {keep_checkpoints}.")
        self.settings = {k: v for k, v in locals().items() if k not in ("self", "extra", "total")}
        self.extra = dict(extra)
        from trl import RLOOConfig

        check_extra(RLOOConfig, self.extra, self.settings,
                    lambda tmp: self.config(tmp, seed=0, reward_weights=None, bf16=False, **checkpointing(False)))

    @property
    def max_steps(self) -> int:
        return self.settings["max_steps"]

    def config(self, output_dir: str, seed: int, reward_weights: list[float] | None, **model_args: Any) -> Any:
        """The ``trl.RLOOConfig`` for this run."""
        from trl import RLOOConfig

        return trl_config(RLOOConfig, self.settings, self.extra, output_dir, seed,
                          frozenset({"save_steps", "keep_checkpoints", "on_nonfinite_loss"}),
                          reward_weights=reward_weights, **model_args)

    def train(self, inputs: TrainInputs) -> TrainResult:
        """Run RLOO on ``inputs.train`` with ``inputs.reward_functions``; events go to ``inputs.events``."""
        from trl import RLOOTrainer

        s = self.settings
        args = self.config(inputs.output_dir, inputs.seed, inputs.reward_weights, **model_args(inputs.model))
        prompts_per_step = s["per_device_train_batch_size"] * s["gradient_accumulation_steps"] // s["num_generations"]
        trainer_cls = atomic_checkpoints(RLOOTrainer, keep=s["keep_checkpoints"], prompts_per_step=prompts_per_step)
        if inputs.feed is not None:
            trainer_cls = with_feed(trainer_cls, inputs.feed, inputs.scorer)
        trainer = trainer_cls(
            model=inputs.model, reward_funcs=inputs.reward_functions, args=args, train_dataset=inputs.train,
            processing_class=inputs.tokenizer)
        return run_trainer(trainer, inputs.events, Diagnoser(max_completion_length=s["max_completion_length"]),
                           resume_from=inputs.resume_from, save_at_end=bool(s["save_steps"]),
                           on_nonfinite_loss=s["on_nonfinite_loss"])
