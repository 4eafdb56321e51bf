"""REINFORCE Leave-One-Out (Ahmadian et al., 2024) through TRL's ``RLOOTrainer``, with our reward functions as
GRPO uses them: each completion's baseline is the mean reward of the other completions of its prompt.

Run it:  python run_pipeline.py train=rloo
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from rlvr.interfaces import AtLeastOne, NonNegative, Positive, Probability, Range, TrainInputs
from rlvr.train.grpo import check_groups
from rlvr.train.trl_bridge import TRLLoop, model_args


@dataclass(eq=False, kw_only=True)
class RLOOLoop(TRLLoop):
    """RLOO with verifiable rewards. Settings besides those of every TRL loop (:class:`rlvr.train.trl_bridge.
    TRLLoop`; ``per_device_train_batch_size`` counts completions: prompts x num_generations):

    Args:
        num_generations: completions sampled per prompt (the leave-one-out baseline needs at least 2).
        temperature, top_p: sampling for rollouts.
        beta: KL coefficient against the reference model (in the reward, as in the RLOO paper); 0 skips the
            reference model entirely.
        normalize_advantages: divide advantages by their standard deviation.
        epsilon: clip range of the importance ratio (with num_iterations > 1).
        num_iterations: policy updates per generation batch.
        mask_truncated_completions: drop cut-off completions from the loss.
        max_grad_norm: gradient clipping.
    """

    max_steps: AtLeastOne = 30
    per_device_train_batch_size: AtLeastOne = 16
    num_generations: Annotated[int, Range(ge=2, why="the baseline is the other completions' mean")] = 16
    temperature: Positive = 1.0
    top_p: Probability = 1.0
    beta: NonNegative = 0.0
    normalize_advantages: bool = False
    epsilon: Positive = 0.2
    num_iterations: AtLeastOne = 1
    mask_truncated_completions: bool = False
    max_grad_norm: Positive = 1.0

    def check(self) -> None:
        check_groups(self.per_device_train_batch_size * self.gradient_accumulation_steps, self.num_generations)

    def trl_classes(self) -> tuple[type, type]:
        from trl import RLOOConfig, RLOOTrainer

        return RLOOConfig, RLOOTrainer

    @property
    def prompts_per_step(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps // self.num_generations

    def trainer(self, inputs: TrainInputs) -> Any:
        """TRL's ``RLOOTrainer`` over ``inputs.train`` with ``inputs.rewards``."""
        functions, weights = inputs.rewards.as_lists()
        args = self.config(inputs.output_dir, inputs.seed, reward_weights=weights, **model_args(inputs.model))
        return self.build(self.trl_classes()[1], inputs, model=inputs.model, reward_funcs=functions,
                          args=args, train_dataset=inputs.train)
