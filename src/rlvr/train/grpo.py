"""GRPO through TRL's ``GRPOTrainer``: our config fields map one-to-one onto ``GRPOConfig``.

We keep TRL's trainer (generation, advantages, loss variants, accelerate/DeepSpeed integration) and add
what it lacks through :mod:`rlvr.train.trl_bridge` (shared by every TRL-based loop): events for our observers,
per-step diagnostics in plain words, and the hook for evaluation during training.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Count, NonNegative, Positive, Probability, Range, TrainInputs, TrainResult
from rlvr.train import dynamic_sampling as dynamic
from rlvr.train.checkpoints import atomic_checkpoints
from rlvr.train.diagnostics import Diagnoser
from rlvr.train.feed import with_feed
from rlvr.train.rollout import RolloutEngine, Sampling
from rlvr.train.rollout.trainer import with_engine
from rlvr.train.shared_prefix import shared_prefix
from rlvr.train.trl_bridge import OnNonFinite, check_extra, checkpointing, model_args, run_trainer

log = logging.getLogger(__name__)


class GRPOLoop:
    """Group Relative Policy Optimization.

    Args:
        max_steps: optimizer steps.
        learning_rate: peak learning rate.
        lr_scheduler_type: transformers scheduler name (``constant``, ``linear``, ``cosine``, ...).
        warmup_steps: warm-up steps, or a fraction of max_steps when below 1.
        per_device_train_batch_size: completions per device per step (prompts x num_generations).
        gradient_accumulation_steps: micro-batches per optimizer step.
        num_generations: completions sampled per prompt (the "group").
        max_completion_length: tokens per completion; answers beyond it are cut off.
        temperature, top_p: sampling for rollouts.
        beta: KL coefficient against the reference model (a frozen copy of the starting policy; k3 estimator
            weighted by the importance ratio, TRL's default); 0 skips the reference model entirely.
        loss_type: how the clipped per-token objective is aggregated: ``grpo`` (mean over each completion's
            tokens, then over completions; DeepSeekMath), ``dr_grpo`` (sum over tokens / (completions x
            max_completion_length): no length bias; Dr. GRPO), ``dapo`` (mean over every token of the batch; DAPO),
            ``bnpo`` (mean over the tokens of the micro-batch), ``gspo`` (GSPO: one importance ratio per
            completion, the geometric mean of its token ratios, clipped per sequence; pair it with a small
            ``epsilon`` such as 3e-4 and ``epsilon_high`` 4e-4, as the paper does).
        scale_rewards: normalise advantages by the group (``group``), the batch (``batch``) std, or not (``none``).
        epsilon: PPO clip range (lower bound: the ratio is clipped at 1 - epsilon, so below 1).
        epsilon_high: upper clip bound 1 + epsilon_high ("clip-higher", DAPO: 0.28 with epsilon 0.2); null:
            epsilon.
        num_iterations: policy updates per generation batch (mu in the GRPO paper).
        mask_truncated_completions: drop cut-off completions from the loss.
        dynamic_sampling: drop groups whose completions all got the same reward and refill the batch with groups
            of further prompts (DAPO; :mod:`rlvr.train.dynamic_sampling`); the dropped count is logged per step.
        max_resample_rounds: extra generation rounds per step at most, when dynamic sampling refills a batch
            (read only with ``dynamic_sampling``); a batch still short after them is said so in the diagnostics.
        max_grad_norm, weight_decay, optim: optimizer settings.
        logging_steps: log (and diagnose) every N steps.
        save_steps: checkpoint every N steps, and at the last step (0: no checkpoints, so no resume). Each holds
            the model (or adapter), optimizer, scheduler, RNG states and data position; written atomically.
        keep_checkpoints: the newest checkpoints kept; older ones are deleted once a newer one is complete.
        rollout: what samples the completions: ``engine`` (ours, :mod:`rlvr.train.rollout`: one prefill per
            group, finished completions leave the batch; the same sampling as TRL's), ``trl`` (TRL's
            ``model.generate``), or ``vllm`` (TRL's vLLM integration; needs ``pip install "rlvr[vllm]"``).
        rollout_compile: with ``rollout=engine``, a static KV cache and the decoding step compiled
            (``torch.compile``, CUDA graphs on a GPU); the first step pays the compilation.
        shared_prefix: in the training pass, run each group's prompt once and the group's completions on its KV
            cache (:mod:`rlvr.train.shared_prefix`): the same log-probabilities and gradients as TRL's pass, which
            runs the prompt once per completion.
        vllm_mode: with ``rollout=vllm``: ``colocate`` (vLLM in the training process, sharing the GPU) or
            ``server`` (a separate ``trl vllm-serve`` process; set ``extra.vllm_server_base_url``).
        on_nonfinite_loss: a step whose loss (or gradient) is NaN or inf never changes the weights; ``skip``
            trains on (the step counted in ``nonfinite/skipped_steps`` and said in its warnings), ``stop`` saves
            a checkpoint at that step and stops the run, saying the step and why
            (:class:`rlvr.train.trl_bridge.NonFiniteGuard`).
        extra: any further ``trl.GRPOConfig`` field, passed through unchanged (checked against GRPOConfig);
            not ``importance_sampling_level``, which ``loss_type`` sets (``gspo``: sequence, otherwise token).
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
        loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "gspo"] = "dapo",
        scale_rewards: Literal["group", "batch", "none"] = "group",
        epsilon: Annotated[float, Range(gt=0, lt=1, why="the ratio is clipped below at 1 - epsilon")] = 0.2,
        epsilon_high: Positive | None = None,
        num_iterations: AtLeastOne = 1,
        mask_truncated_completions: bool = False,
        dynamic_sampling: bool = False,
        max_resample_rounds: Annotated[int, Range(ge=1, why="0 refills nothing")] = 3,
        max_grad_norm: Positive = 1.0,
        weight_decay: NonNegative = 0.0,
        optim: str = "adamw_torch",
        logging_steps: AtLeastOne = 1,
        save_steps: Count = 10,
        keep_checkpoints: AtLeastOne = 2,
        rollout: Literal["engine", "trl", "vllm"] = "engine",
        rollout_compile: bool = False,
        shared_prefix: bool = True,
        vllm_mode: Literal["colocate", "server"] = "colocate",
        on_nonfinite_loss: OnNonFinite = "skip",
        extra: dict[str, Any] = {},  # noqa: B006
    ):
        if max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1, got {max_steps}.")
        if num_generations < 2:
            raise ConfigError("train.num_generations must be >= 2: GRPO compares completions within a group.")
        total = per_device_train_batch_size * gradient_accumulation_steps
        if total % num_generations:
            raise ConfigError(
                f"train.per_device_train_batch_size x gradient_accumulation_steps ({total}) must be a multiple of "
                f"train.num_generations ({num_generations}): each prompt's group must fit in one step. "
                f"Try train.per_device_train_batch_size={num_generations}."
            )
        if save_steps < 0 or keep_checkpoints < 1:
            raise ConfigError(f"train.save_steps must be >= 0 (0: no checkpoints) and train.keep_checkpoints >= 1, "
                              f"got {save_steps} and {keep_checkpoints}.")
        if not 0 < temperature:
            raise ConfigError(f"train.temperature must be > 0 for sampling rollouts, got {temperature}.")
        if epsilon_high is not None and epsilon_high < epsilon:
            raise ConfigError(f"train.epsilon_high ({epsilon_high}) is the upper clip bound: it must be >= "
                              f"train.epsilon ({epsilon}), or null for the same.")
        if not 0 < epsilon < 1:
            raise ConfigError(f"train.epsilon must be in (0, 1): the ratio is clipped below at 1 - epsilon; got "
                              f"{epsilon}.")
        if "importance_sampling_level" in extra:
            raise ConfigError("train.extra.importance_sampling_level: set by train.loss_type (gspo: sequence-level "
                              "ratios, aggregated per sequence as in the GSPO paper; the others: token-level).")
        if dynamic_sampling:
            dynamic.check_settings(extra)
        check_rollout(rollout, rollout_compile, extra)
        self.settings = {k: v for k, v in locals().items() if k not in ("self", "extra", "total")}
        self.extra = dict(extra)
        self._check_extra()

    def _check_extra(self) -> None:
        """Build the GRPOConfig once now, so a value TRL rejects fails before any model loads."""
        from trl import GRPOConfig

        check_extra(GRPOConfig, self.extra, self.settings,
                    lambda tmp: self.grpo_config(tmp, seed=0, reward_weights=None, bf16=False, **checkpointing(False)))

    @property
    def max_steps(self) -> int:
        return self.settings["max_steps"]

    def grpo_config(self, output_dir: str, seed: int, reward_weights: list[float] | None, **model_args: Any) -> Any:
        """The ``trl.GRPOConfig`` for this run; ``model_args`` (precision, checkpointing, device) follow the
        loaded model, see :func:`rlvr.train.trl_bridge.model_args`."""
        from trl import GRPOConfig

        s = dict(self.settings)
        save_steps = s.pop("save_steps")
        for ours in ("keep_checkpoints", "dynamic_sampling", "max_resample_rounds", "on_nonfinite_loss", "rollout",
                     "rollout_compile", "shared_prefix"):
            s.pop(ours)
        s["use_vllm"] = self.settings["rollout"] == "vllm"
        if s["loss_type"] == "gspo":  # TRL: sequence-level importance ratios, aggregated per sequence
            s.update(loss_type="grpo", importance_sampling_level="sequence")
        return GRPOConfig(
            output_dir=output_dir,
            seed=seed,
            reward_weights=reward_weights,
            save_strategy="steps" if save_steps else "no",
            save_steps=save_steps or 500,
            **{"report_to": [], "disable_tqdm": True, "use_cpu": True, **model_args},
            **s,
            **self.extra,
        )

    def train(self, inputs: TrainInputs) -> TrainResult:
        """Run GRPO on ``inputs.train`` with ``inputs.reward_functions``; events go to ``inputs.events``."""
        from trl import GRPOTrainer

        args = self.grpo_config(inputs.output_dir, inputs.seed, inputs.reward_weights, **model_args(inputs.model))
        s = self.settings
        prompts_per_step = s["per_device_train_batch_size"] * s["gradient_accumulation_steps"] // s["num_generations"]
        trainer_cls = atomic_checkpoints(GRPOTrainer, keep=s["keep_checkpoints"], prompts_per_step=prompts_per_step)
        if s["rollout"] == "engine":
            trainer_cls = with_engine(trainer_cls, RolloutEngine(compile=s["rollout_compile"]))
        if s["shared_prefix"]:
            trainer_cls = shared_prefix(trainer_cls)
        if inputs.feed is not None:  # inside dynamic sampling: its refill rounds go through the feed too
            trainer_cls = with_feed(trainer_cls, inputs.feed, inputs.scorer)
        if s["dynamic_sampling"]:
            trainer_cls = dynamic.dynamic_sampling(trainer_cls, s["max_resample_rounds"])
        trainer = trainer_cls(
            model=inputs.model,
            reward_funcs=inputs.reward_functions,
            args=args,
            train_dataset=inputs.train,
            processing_class=inputs.tokenizer,
        )
        diagnoser = Diagnoser(max_completion_length=self.settings["max_completion_length"])
        return run_trainer(trainer, inputs.events, diagnoser, resume_from=inputs.resume_from,
                           save_at_end=bool(s["save_steps"]), on_nonfinite_loss=s["on_nonfinite_loss"])


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

