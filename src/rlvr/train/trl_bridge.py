"""What every TRL-based training loop shares: its common settings and the way its TRL config is built
(:class:`TRLLoop`), the callback bridge from a ``transformers.Trainer`` to our events (metrics with plain-words
diagnostics at each logging step, a hook after each optimizer step), the training arguments that follow the loaded
model rather than TRL's defaults, a guard against non-finite losses (:class:`NonFiniteGuard`:
``train.on_nonfinite_loss``), atomic checkpoints, and running the trainer.

A loop over a TRL trainer is a dataclass extending :class:`TRLLoop` (:class:`GroupLoop` for GRPO and RLOO,
:class:`rlvr.train.preference.PreferenceLoop` for the preference loops): its own settings as fields, its TRL
classes, and how it builds its trainer.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from dataclasses import dataclass, field, fields
from typing import Annotated, Any, Callable, ClassVar, Literal

from rlvr import distributed
from rlvr.data.streaming import StreamReader, TrainStream
from rlvr.errors import ConfigError
from rlvr.interfaces import (
    AtLeastOne,
    Count,
    NonNegative,
    Positive,
    Probability,
    Range,
    TrainEvents,
    TrainInputs,
    TrainResult,
)
from rlvr.schema import check_arguments
from rlvr.train.checkpoints import StopOnSignal, atomic_checkpoints
from rlvr.train.diagnostics import Diagnoser
from rlvr.train.feed import feed_state, with_feed

log = logging.getLogger(__name__)

OnNonFinite = Literal["skip", "stop"]
SKIPPED = "nonfinite/skipped_steps"  # the metric: steps whose update was not applied so far


@dataclass(eq=False, kw_only=True)
class TRLLoop:
    """The settings every loop over a TRL trainer has (the first part of each ``train`` option's schema), and what
    it does with them. A loop is a dataclass extending this one, with its own settings as fields; it names its TRL
    classes (:meth:`trl_classes`), derives what TRL wants in another form (:meth:`trl_settings`), adds its rules
    that tie several settings together (:meth:`check`) and builds its trainer (:meth:`trainer`). Constructing one
    checks every setting against the fields' annotations (:func:`rlvr.schema.check_arguments`, as the config check
    does), then :meth:`check`, then builds its TRL config once, so a value TRL rejects fails before any model loads.

    Args:
        max_steps: optimizer steps.
        learning_rate: peak learning rate.
        lr_scheduler_type: transformers scheduler name (``constant``, ``linear``, ``cosine``, ...).
        warmup_steps: warm-up steps, or a fraction of max_steps when below 1.
        per_device_train_batch_size: examples per device per step (completions for GRPO and RLOO, pairs or
            labelled examples for the preference loops).
        gradient_accumulation_steps: micro-batches per optimizer step.
        max_completion_length: tokens per completion the policy writes (rollouts, sampled preference data);
            evaluation's budget (``eval.max_new_tokens``) follows it.
        logging_steps: log (and diagnose) every N steps.
        save_steps: checkpoint every N steps, and at the last step (0: no checkpoints, so no resume). Each holds
            the model (or adapter), optimizer, scheduler, RNG states and data position; written atomically
            (:mod:`rlvr.train.checkpoints`).
        keep_checkpoints: the newest checkpoints kept; older ones are deleted once a newer one is complete.
        on_nonfinite_loss: a step whose loss (or gradient) is NaN or inf never changes the weights; ``skip``
            trains on (the step counted in ``nonfinite/skipped_steps`` and said in its warnings), ``stop`` saves
            a checkpoint at that step and stops the run, saying the step and why (:class:`NonFiniteGuard`).
        extra: any further field of the loop's TRL config, passed through unchanged (checked against it).
        rounds: run the loop this many times in a row, each round a stage of its own (trained, evaluated, judged by
            ``pipeline.gate`` and rolled back when refused, resumed), from the model the last kept round left, with
            the seed + round - 1 (:mod:`rlvr.orchestration.stages`): expert iteration's rounds, GRPO rounds.
    """

    max_steps: AtLeastOne = 20
    learning_rate: Positive = 2e-5
    lr_scheduler_type: str = "constant"
    warmup_steps: NonNegative = 0
    per_device_train_batch_size: AtLeastOne = 8
    gradient_accumulation_steps: AtLeastOne = 1
    max_completion_length: AtLeastOne = 40
    logging_steps: AtLeastOne = 1
    save_steps: Count = 10
    keep_checkpoints: AtLeastOne = 2
    on_nonfinite_loss: OnNonFinite = "skip"
    extra: dict[str, Any] = field(default_factory=dict)
    rounds: AtLeastOne = 1

    def __post_init__(self) -> None:
        check_arguments(type(self), {f.name: getattr(self, f.name) for f in fields(self)}, "train.")
        self.extra = dict(self.extra)
        self.check()
        check_extra(self.trl_classes()[0], self.extra, self.settings, lambda tmp: self.config(tmp, seed=0))

    # --- what each loop defines ----------------------------------------------------------------------------
    def trl_classes(self) -> tuple[type, type]:
        """TRL's ``(config class, trainer class)`` of this loop."""
        raise NotImplementedError

    def check(self) -> None:
        """The loop's rules that tie several settings together; a ConfigError says how to fix one."""

    def trl_settings(self) -> dict[str, Any]:
        """TRL config fields this loop derives from its settings (a setting TRL names or shapes otherwise)."""
        return {}

    def trainer(self, inputs: TrainInputs) -> Any:
        """The TRL trainer of this run, built with :meth:`build`."""
        raise NotImplementedError

    def trainer_class(self, inputs: TrainInputs) -> type:
        """The trainer class to build for ``inputs``: TRL's (:meth:`trl_classes`), which a loop may wrap."""
        return self.trl_classes()[1]

    # --- shared --------------------------------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        """Every setting but ``extra``, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}

    @property
    def prompts_per_step(self) -> int:
        """Training rows one optimizer step consumes (the data position a checkpoint records)."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps

    def config(self, output_dir: str, seed: int, **args: Any) -> Any:
        """The TRL config of this run, built the one way every loop's is: each setting that is a field of the
        config class goes in under its own name (the others are ours: checkpoint rotation, where data comes
        from, ...), then what :meth:`trl_settings` derives, the training arguments that replace TRL's defaults
        (:func:`model_args`; ``args`` overrides them: the loaded model's, reward weights) and ``train.extra``."""
        config_cls = self.trl_classes()[0]
        values = {k: v for k, v in self.settings.items() if k in config_cls.__dataclass_fields__}
        values.update(output_dir=output_dir, seed=seed, save_strategy="steps" if self.save_steps else "no",
                      save_steps=self.save_steps or 500)
        for more in (model_args(), self.trl_settings(), args, self.extra):
            values.update(more)
        return config_cls(**values)

    def build(self, trainer_cls: type, inputs: TrainInputs, stream: StreamReader | None = None, **kwargs: Any) -> Any:
        """``trainer_cls`` with atomic checkpoints (:func:`rlvr.train.checkpoints.atomic_checkpoints`; with the
        ``stream`` it trains on, they hold its position; with a feed, its state), built from ``kwargs`` and the
        run's tokenizer."""
        import datasets

        cls = atomic_checkpoints(trainer_cls, keep=self.keep_checkpoints, prompts_per_step=self.prompts_per_step,
                                 stream=stream, extra_state=functools.partial(feed_state, inputs.feed)
                                 if inputs.feed is not None else None)
        bars = not datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # the trainers tokenize with progress bars; our console has its own
        try:
            return cls(processing_class=inputs.tokenizer, **kwargs)
        finally:
            if bars:
                datasets.enable_progress_bars()

    def train(self, inputs: TrainInputs) -> TrainResult:
        """Train on ``inputs`` with the trainer of :meth:`trainer`; events go to ``inputs.events``."""
        diagnoser = Diagnoser(max_completion_length=self.max_completion_length)
        return run_trainer(self.trainer(inputs), inputs.events, diagnoser, resume_from=inputs.resume_from,
                           save_at_end=bool(self.save_steps), on_nonfinite_loss=self.on_nonfinite_loss)


@dataclass(eq=False, kw_only=True)
class GroupLoop(TRLLoop):
    """A loop that samples a group of completions per prompt and learns from our reward functions (GRPO, RLOO):
    these settings besides those of every TRL loop; ``per_device_train_batch_size`` counts completions (prompts x
    ``num_generations``), and each prompt's group must fit in one step.

    Args:
        num_generations: completions sampled per prompt (the "group"; the advantage compares them).
        temperature, top_p: sampling for rollouts.
        beta: KL coefficient against the reference model (a frozen copy of the starting policy); 0 skips the
            reference model entirely.
        num_iterations: policy updates per generation batch (mu in the GRPO paper).
        mask_truncated_completions: drop cut-off completions from the loss.
        max_grad_norm: gradient clipping.
    """

    max_steps: AtLeastOne = 30
    per_device_train_batch_size: AtLeastOne = 16
    num_generations: Annotated[int, Range(ge=2, why="the advantage compares completions within a group")] = 16
    temperature: Positive = 1.0
    top_p: Probability = 1.0
    beta: NonNegative = 0.0
    num_iterations: AtLeastOne = 1
    mask_truncated_completions: bool = False
    max_grad_norm: Positive = 1.0

    def check(self) -> None:
        total = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if total % self.num_generations:
            raise ConfigError(
                f"train.per_device_train_batch_size x gradient_accumulation_steps ({total}) must be a multiple of "
                f"train.num_generations ({self.num_generations}): each prompt's group must fit in one step. "
                f"Try train.per_device_train_batch_size={self.num_generations}.")

    @property
    def prompts_per_step(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps // self.num_generations

    takes_feed: ClassVar[bool] = True  # rows chosen as training goes: a curriculum, flat prompts skipped

    def trainer_class(self, inputs: TrainInputs) -> type:
        """The trainer class to build (a loop may wrap TRL's): with a feed (``inputs.feed``), it trains on the rows
        the feed chooses (:func:`rlvr.train.feed.with_feed`)."""
        return self.fed(self.trl_classes()[1], inputs)

    @staticmethod
    def fed(trainer_cls: type, inputs: TrainInputs) -> type:
        """``trainer_cls`` training on the rows ``inputs.feed`` chooses, when there is a feed."""
        return with_feed(trainer_cls, inputs.feed, inputs.scorer) if inputs.feed is not None else trainer_cls

    def trainer(self, inputs: TrainInputs) -> Any:
        """The TRL trainer over ``inputs.train``, rewarded by ``inputs.rewards`` (their weights in TRL's order)."""
        functions, weights = inputs.rewards.as_lists()
        stream = inputs.train.reader() if isinstance(inputs.train, TrainStream) else None
        # A stream comes shuffled in its own (resumable) order; TRL's buffered shuffle on top would lose rows on resume.
        args = self.config(inputs.output_dir, inputs.seed, reward_weights=weights, **model_args(inputs.model),
                           **({"shuffle_dataset": False} if stream else {}))
        return self.build(self.trainer_class(inputs), inputs, stream=stream, model=inputs.model, reward_funcs=functions,
                          args=args, train_dataset=stream.dataset() if stream else inputs.train)


def model_args(model: Any | None = None) -> dict[str, Any]:
    """The training arguments we set instead of TRL's defaults: precision, gradient checkpointing and device that
    follow the loaded ``model`` (``model.dtype``, ``model.gradient_checkpointing``), one knob each, not TRL's
    (bf16 and checkpointing on, which fail or slow down on CPU); no TRL/transformers progress bar or reporting (our
    observers do that). Without a model (settings are checked before one loads): float32, no checkpointing, CPU."""
    import torch

    return {
        "bf16": model is not None and next(model.parameters()).dtype == torch.bfloat16,
        **checkpointing(model is not None and is_checkpointing(model)),
        "use_cpu": model is None or not torch.cuda.is_available(),
        "ddp_find_unused_parameters": False,  # every weight takes part in the loss (DDP would search every step)
        "report_to": [],
        "disable_tqdm": True,
        # On CPU under an FSDP/DeepSpeed launch: accelerate's state set up for it. Not while settings are checked
        # (no model yet): a DeepSpeed ZeRO-3 config made then would make the model load partitioned, before any
        # Trainer holds it, and the baseline evaluation would run on empty shards.
        **(distributed.trainer_arguments() if model is not None else {}),
    }


def is_checkpointing(model: Any) -> bool:
    """Whether the model recomputes activations in the backward pass (under either of transformers' names)."""
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        if hasattr(type(model), name) or hasattr(model, name):
            return bool(getattr(model, name))
    return False


def checkpointing(on: bool) -> dict[str, bool]:
    """The training argument for gradient (activation) checkpointing under its current name: transformers 5
    renamed ``gradient_checkpointing`` to ``activation_checkpointing`` and warns on every use of the old one."""
    from transformers import TrainingArguments

    new = "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    return {"activation_checkpointing" if new else "gradient_checkpointing": on}


def check_extra(config_cls: type, extra: dict[str, Any], settings: dict[str, Any],
                build: Callable[[str], Any]) -> None:
    """Check ``train.extra`` against a TRL config class and build the config once, so a value TRL rejects fails
    before any model loads: unknown keys, keys that are settings of their own, values outside the choices the
    class lists (TRL lists some without checking them), and whatever the class's own checks refuse.
    ``build(output_dir)`` makes the config."""
    import tempfile

    fields = config_cls.__dataclass_fields__
    name = f"trl.{config_cls.__name__}"
    unknown = [k for k in extra if k not in fields]
    if unknown:
        raise ConfigError(f"train.extra has keys that {name} does not know: {', '.join(unknown)}.")
    ours = [k for k in extra if k in settings]
    if ours:
        raise ConfigError(f"train.extra.{ours[0]}: a setting of its own, set train.{ours[0]} instead.")
    for key, value in extra.items():
        choices = fields[key].metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"Invalid value {value!r} for 'train.extra.{key}'. Valid choices: "
                              f"{', '.join(map(str, choices))}.")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            build(tmp)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"train: {name} rejects these settings: {e}") from None


class NonFiniteGuard:
    """Keeps a non-finite loss (NaN or inf, in any micro-batch of an optimizer step) or a non-finite gradient out
    of the weights. Such a step's gradients are dropped just before the optimizer runs, so the weights and the
    optimizer's state stay exactly as they were (the step still counts: the learning-rate schedule and the data
    move on). Then ``skip`` goes on training, the step counted in the metric ``nonfinite/skipped_steps`` and said
    in that step's warnings; ``stop`` saves a checkpoint at that step and ends training, ``stopped`` saying why.
    Under a launcher every rank takes the same decision (a loss is per rank; the gradients are all-reduced). Under
    DeepSpeed the engine applies the update inside the backward pass (``can_skip`` False): the step is still found,
    counted and stopped at, but said to be applied."""

    def __init__(self, policy: OnNonFinite = "skip", can_skip: bool = True):
        self.policy, self.can_skip = policy, can_skip
        self.skipped: list[int] = []  # steps found non-finite (their update not applied, where it can be withheld)
        self.stopped: str | None = None  # why training stopped (policy ``stop``)
        self.pending: list[str] = []  # warnings for the next logging step
        self._loss: float | None = None  # the first non-finite micro-batch loss of the current step

    def watch(self, trainer: Any) -> None:
        """Read every micro-batch's loss as ``trainer.training_step`` returns it."""
        training_step = trainer.training_step

        def watched(*args: Any, **kwargs: Any) -> Any:
            loss = training_step(*args, **kwargs)
            value = float(loss.detach().float().sum())
            if self._loss is None and not math.isfinite(value):
                self._loss = value
            return loss

        trainer.training_step = watched

    def before_optimizer_step(self, step: int, model: Any) -> None:
        """Called once the step's gradients are summed (and clipped), before ``optimizer.step()``."""
        found = self._finding(model)
        self._loss = None
        found = next((f for f in distributed.gather(found) if f), None)
        if found is None:
            return
        if self.can_skip:
            for p in model.parameters():  # the optimizer leaves a parameter without a gradient untouched
                p.grad = None
        self.skipped.append(step)
        update = ("its update is not applied" if self.can_skip else
                  "its update could not be withheld (DeepSpeed's engine applies it in the backward pass)")
        if self.policy == "stop":
            self.stopped = f"a non-finite loss ({found}; train.on_nonfinite_loss=stop)"
            log.error("[rlvr] step %d: %s; %s, and training stops after saving a checkpoint "
                      "(train.on_nonfinite_loss=stop).", step, found, update)
        elif self.can_skip:
            self.pending.append(f"Step {step}: {found}, so its update was skipped and the weights left unchanged "
                                f"(train.on_nonfinite_loss=skip); {len(self.skipped)} step(s) skipped so far.")
        else:
            self.pending.append(f"Step {step}: {found}; {update}. {len(self.skipped)} such step(s) so far.")

    def _finding(self, model: Any) -> str | None:
        """What was not finite in this step, in words, or None."""
        import torch

        if self._loss is not None:
            return f"the loss was {self._loss}"
        finite: dict[Any, list[Any]] = {}  # per device, so one synchronisation each
        for p in model.parameters():
            if p.grad is not None:
                grad = p.grad.to_local() if hasattr(p.grad, "to_local") else p.grad  # FSDP: this rank's shard
                finite.setdefault(grad.device, []).append(torch.isfinite(grad).all())
        if not all(bool(torch.stack(flags).all()) for flags in finite.values()):
            return "a gradient was not finite"
        return None


def bridge(events: TrainEvents, diagnoser: Diagnoser, stop: StopOnSignal | None = None,
           save_at_end: bool = False, guard: NonFiniteGuard | None = None) -> Any:
    """A ``TrainerCallback`` that forwards a Trainer's logs (with diagnoses) and step ends to ``events``; saves
    and stops after a step when ``stop`` received a signal or ``guard`` stops on a non-finite loss, and saves
    the last step when ``save_at_end``."""
    from transformers import TrainerCallback

    class Bridge(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if 0 < state.max_steps <= state.global_step:
                raise TrainingComplete(state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            metrics = {k: float(v) for k, v in (logs or {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if "loss" in metrics or "reward" in metrics:
                final = state.global_step >= state.max_steps
                warned = diagnoser.update(metrics, final=final)
                if guard is not None:
                    metrics[SKIPPED] = float(len(guard.skipped))
                    warned, guard.pending = [*guard.pending, *warned], []
                events.log(state.global_step, metrics, warned)

        def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
            if guard is not None:
                guard.before_optimizer_step(state.global_step + 1, model)

        def on_step_end(self, args, state, control, model=None, **kw):
            if (stop is not None and stop.should_stop()) or (guard is not None and guard.stopped):
                control.should_save = control.should_training_stop = True
            elif save_at_end and state.global_step >= state.max_steps:
                control.should_save = True  # the finished run is a checkpoint too: resume finds nothing to redo
            events.step_end(state.global_step, model)

    return Bridge()


class TrainingComplete(Exception):
    """Raised before a step when the run has already taken its last one: resumed from the checkpoint of its last
    step (a run killed after that checkpoint, before it ended), transformers' loop would train one step more
    than ``max_steps`` (it checks the step count only after a step), and the weights would differ from the
    uninterrupted run's."""


def run_trainer(trainer: Any, events: TrainEvents, diagnoser: Diagnoser, resume_from: str | None = None,
                save_at_end: bool = False, on_nonfinite_loss: OnNonFinite = "skip") -> TrainResult:
    """Train with ``trainer`` reporting to ``events``, from ``resume_from`` (a checkpoint) if given, a step with a
    non-finite loss skipped or stopped at as ``on_nonfinite_loss`` says (:class:`NonFiniteGuard`); the trained
    model, its step count, time, log history, and what stopped it early (after a checkpoint): a signal's name,
    or the non-finite loss."""
    from transformers import PrinterCallback

    guard = NonFiniteGuard(on_nonfinite_loss, can_skip=not getattr(trainer, "is_deepspeed_enabled", False))
    guard.watch(trainer)
    with StopOnSignal() as stop:
        trainer.add_callback(bridge(events, diagnoser, stop, save_at_end, guard))
        trainer.remove_callback(PrinterCallback)  # our console observer prints the step lines
        start = time.perf_counter()
        with warnings.catch_warnings():  # TRL 1.16 itself reads transformers' deprecated is_gradient_checkpointing
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                    category=FutureWarning)
            try:
                trainer.train(resume_from_checkpoint=resume_from)
            except TrainingComplete:
                pass  # resumed from the last step's checkpoint: its weights and state are loaded, nothing to train
        runtime = time.perf_counter() - start
    history = [h for h in trainer.state.log_history if "loss" in h or "reward" in h]
    return TrainResult(trainer.model, trainer.state.global_step, runtime, history,
                       stopped_by=stop.received or guard.stopped,
                       state_dict=gathered_weights(trainer))


def sharded(trainer: Any) -> bool:
    """Whether the trainer splits the weights across ranks (FSDP, or DeepSpeed ZeRO-3)."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    plugin = trainer.accelerator.state.deepspeed_plugin if getattr(trainer, "is_deepspeed_enabled", False) else None
    return plugin is not None and plugin.zero_stage == 3


def gathered_weights(trainer: Any) -> dict[str, Any] | None:
    """The full weights of a sharded model, gathered on rank 0 (every rank takes part); None when each rank holds
    them whole anyway (one process, DDP, ZeRO-1/2): ``save_pretrained`` of the model itself is right then."""
    if not sharded(trainer):
        return None
    return trainer.accelerator.get_state_dict(trainer.model_wrapped)
