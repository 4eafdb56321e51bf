"""GRPO through TRL's ``GRPOTrainer``: our settings map one-to-one onto ``GRPOConfig`` (:class:`rlvr.train.
trl_bridge.TRLLoop` builds it).

We keep TRL's trainer (generation, advantages, loss variants, accelerate/DeepSpeed integration) and add
what it lacks through :mod:`rlvr.train.trl_bridge` (shared by every TRL-based loop): events for our observers,
per-step diagnostics in plain words, and the hook for evaluation during training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, NonNegative, Positive, Range, TrainInputs
from rlvr.train import dynamic_sampling as dynamic
from rlvr.train.rollout import RolloutEngine, Sampling
from rlvr.train.rollout.trainer import with_engine
from rlvr.train.shared_prefix import shared_prefix
from rlvr.train.trl_bridge import GroupLoop

log = logging.getLogger(__name__)

# TRL 1.16's GRPO losses (GRPOConfig.loss_type; a test checks this list against TRL's) and GSPO, which is TRL's
# grpo loss on sequence-level ratios.
LossType = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo", "gspo"]
SEQUENCE_LEVEL = ("gspo", "luspo")  # the losses on one importance ratio per completion


@dataclass(eq=False, kw_only=True)
class GRPOLoop(GroupLoop):
    """Group Relative Policy Optimization. Settings besides those of every loop over groups of rewarded completions
    (:class:`rlvr.train.trl_bridge.GroupLoop`; its ``beta`` weighs a k3 estimate of the KL, weighted by the
    importance ratio, TRL's default):

    Args:
        loss_type: how the clipped per-token objective is aggregated: ``grpo`` (mean over each completion's
            tokens, then over completions; DeepSeekMath), ``dr_grpo`` (sum over tokens / (completions x
            max_completion_length): no length bias; Dr. GRPO), ``dapo`` (mean over every token of the batch; DAPO),
            ``bnpo`` (mean over the tokens of the micro-batch), ``gspo`` (GSPO: one importance ratio per
            completion, the geometric mean of its token ratios, clipped per sequence; pair it with a small
            ``epsilon`` such as 3e-4 and ``epsilon_high`` 4e-4, as the paper does), and TRL's further losses:
            ``cispo`` (MiniMax-M1: the importance weights clipped, at ``epsilon_high``, and detached), ``sapo``
            (Soft Adaptive Policy Optimization: a smooth temperature-controlled gate instead of hard clipping;
            its temperatures via ``extra``), ``luspo`` (GSPO with each sequence's loss scaled by its length;
            sequence-level ratios) and ``vespo`` (a Gamma weighting of sequence-level ratios; its parameters via
            ``extra``). TRL's documentation of ``GRPOConfig.loss_type`` has the details.
        scale_rewards: normalise advantages by the group (``group``), the batch (``batch``) std, or not (``none``).
        epsilon: PPO clip range (lower bound: the ratio is clipped at 1 - epsilon, so below 1).
        epsilon_high: upper clip bound 1 + epsilon_high ("clip-higher", DAPO: 0.28 with epsilon 0.2); null:
            epsilon.
        dynamic_sampling: drop groups whose completions all got the same reward and refill the batch with groups
            of further prompts (DAPO; :mod:`rlvr.train.dynamic_sampling`); the dropped count is logged per step.
        max_resample_rounds: extra generation rounds per step at most, when dynamic sampling refills a batch
            (read only with ``dynamic_sampling``); a batch still short after them is said so in the diagnostics.
        weight_decay, optim: optimizer settings.
        rollout: what samples the completions: ``engine`` (ours, :mod:`rlvr.train.rollout`: one prefill per
            group, finished completions leave the batch; the same sampling as TRL's), ``trl`` (TRL's
            ``model.generate``), or ``vllm`` (TRL's vLLM integration; needs ``pip install "rlvr[vllm]"``).
        rollout_compile: with ``rollout=engine``, a static KV cache and the decoding step compiled
            (``torch.compile``, CUDA graphs on a GPU); the first step pays the compilation.
        shared_prefix: in the training pass, run each group's prompt once and the group's completions on its KV
            cache (:mod:`rlvr.train.shared_prefix`): the same log-probabilities and gradients as TRL's pass, which
            runs the prompt once per completion. The completions of flat groups (advantage 0) are not run where
            they provably add nothing (no KL term, no entropy mask or bonus).
        vllm_mode: with ``rollout=vllm``: ``colocate`` (vLLM in the training process, sharing the GPU) or
            ``server`` (a separate ``trl vllm-serve`` process; set ``extra.vllm_server_base_url``).

    ``extra`` takes any further ``trl.GRPOConfig`` field but ``importance_sampling_level``, which ``loss_type`` sets
    (``gspo`` and ``luspo``: sequence, the others: token).
    """

    # The default job's recipe on the embedded model (bench/recipe.sh; README "The default recipe"): 50 steps of 4
    # prompts x 8 completions (1 x 16 left most steps with every completion alike: nothing to learn; groups of 8
    # sample the rare right answer to a hard question twice as often as groups of 4, and a flat group costs no
    # training pass, so 50 such steps fit in 300 s on 2 cores), temperature 0.8 (at 1.0 half the samples rambled
    # past the budget; at 0.7 a prompt's samples soon all agreed), 16 tokens (the answers are a few), and a LoRA
    # learning rate (the embedded model trains an adapter under GRPO; with every weight trained use 2e-5: 5e-5
    # collapsed).
    learning_rate: Positive = 2e-4
    max_steps: AtLeastOne = 50
    per_device_train_batch_size: AtLeastOne = 32
    max_completion_length: AtLeastOne = 16
    num_generations: Annotated[int, Range(ge=2, why="the advantage compares completions within a group")] = 8
    temperature: Positive = 0.8
    loss_type: LossType = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    epsilon: Annotated[float, Range(gt=0, lt=1, why="the ratio is clipped below at 1 - epsilon")] = 0.2
    epsilon_high: Positive | None = None
    dynamic_sampling: bool = False
    max_resample_rounds: Annotated[int, Range(ge=1, why="0 refills nothing")] = 3
    weight_decay: NonNegative = 0.0
    optim: str = "adamw_torch"
    rollout: Literal["engine", "trl", "vllm"] = "engine"
    rollout_compile: bool = False
    shared_prefix: bool = True
    vllm_mode: Literal["colocate", "server"] = "colocate"

    def check(self) -> None:
        super().check()
        if self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise ConfigError(f"train.epsilon_high ({self.epsilon_high}) is the upper clip bound: it must be >= "
                              f"train.epsilon ({self.epsilon}), or null for the same.")
        if "importance_sampling_level" in self.extra:
            raise ConfigError("train.extra.importance_sampling_level: set by train.loss_type (gspo and luspo: "
                              "sequence-level ratios, aggregated per sequence as in the GSPO paper; the others: "
                              "token-level).")
        if self.dynamic_sampling:
            dynamic.check_settings(self.extra)
        check_rollout(self.rollout, self.rollout_compile, self.extra)

    def trl_classes(self) -> tuple[type, type]:
        from trl import GRPOConfig, GRPOTrainer

        return GRPOConfig, GRPOTrainer

    def trl_settings(self) -> dict[str, Any]:
        derived: dict[str, Any] = {"use_vllm": self.rollout == "vllm"}
        if self.loss_type == "gspo":  # TRL: sequence-level importance ratios, aggregated per sequence
            derived.update(loss_type="grpo", importance_sampling_level="sequence")
        elif self.loss_type in SEQUENCE_LEVEL:
            derived.update(importance_sampling_level="sequence")
        return derived

    def check_streaming(self) -> None:
        """Trains on a stream (``data.streaming=true``), except with dynamic sampling, which draws further prompts
        from anywhere in the training set."""
        if self.dynamic_sampling:
            raise ConfigError("train.dynamic_sampling draws further prompts from anywhere in the training set, which "
                              "a stream cannot give: set data.streaming=false or train.dynamic_sampling=false.")

    def trainer_class(self, inputs: TrainInputs) -> type:
        """TRL's ``GRPOTrainer`` with our rollout engine, shared-prefix pass, feed and dynamic sampling, as set (the
        feed inside dynamic sampling: its refill rounds go through the feed too)."""
        trainer_cls = self.trl_classes()[1]
        if self.rollout == "engine":
            trainer_cls = with_engine(trainer_cls, RolloutEngine(compile=self.rollout_compile))
        if self.shared_prefix:
            trainer_cls = shared_prefix(trainer_cls)
        trainer_cls = self.fed(trainer_cls, inputs)
        if self.dynamic_sampling:
            trainer_cls = dynamic.dynamic_sampling(trainer_cls, self.max_resample_rounds)
        return trainer_cls


def check_rollout(rollout: str, compile: bool, extra: dict[str, Any]) -> None:
    """Refuse, before anything loads, a rollout backend that cannot run here or settings it cannot honour."""
    import importlib.util

    if "use_vllm" in extra:
        raise ConfigError("train.extra.use_vllm: set train.rollout=vllm instead.")
    if compile and rollout != "engine":
        raise ConfigError(f"train.rollout_compile compiles our rollout engine; train.rollout={rollout} does not "
                          f"use it (set train.rollout=engine, or train.rollout_compile=false).")
    if rollout == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ConfigError('train.rollout=vllm needs vLLM, which is not installed: pip install "rlvr[vllm]" (a GPU '
                          'machine), or use train.rollout=engine.')
    if rollout == "engine" and extra.get("generation_kwargs"):
        from transformers import GenerationConfig

        try:
            Sampling.from_generation_config(GenerationConfig(do_sample=True, max_new_tokens=1,
                                                             **extra["generation_kwargs"]))
        except ConfigError as e:
            raise ConfigError(f"train.extra.generation_kwargs: {str(e).removeprefix('rollout: ')}") from None

