"""What every TRL-based training loop shares: the callback bridge from a ``transformers.Trainer`` to our
events (metrics with plain-words diagnostics at each logging step, a hook after each optimizer step), the
training arguments that follow the loaded model rather than TRL's defaults, a guard against non-finite losses
(:class:`NonFiniteGuard`: ``train.on_nonfinite_loss``), and running the trainer.

A loop over another TRL trainer (SFT, DPO, ...) builds its trainer and calls :func:`run_trainer`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any, Callable, Literal

from rlvr import distributed
from rlvr.errors import ConfigError
from rlvr.interfaces import TrainEvents, TrainResult
from rlvr.train.checkpoints import StopOnSignal
from rlvr.train.diagnostics import Diagnoser

log = logging.getLogger(__name__)

OnNonFinite = Literal["skip", "stop"]
SKIPPED = "nonfinite/skipped_steps"  # the metric: steps whose update was not applied so far



def model_args(model: Any) -> dict[str, Any]:
    """Precision, gradient checkpointing and device that follow the loaded model (``model.dtype``,
    ``model.gradient_checkpointing``): one knob each, not TRL's defaults (bf16 and checkpointing on, which fail
    or slow down on CPU). Also: no TRL/transformers progress bar or reporting (our observers do that)."""
    import torch

    return {
        "bf16": next(model.parameters()).dtype == torch.bfloat16,
        **checkpointing(is_checkpointing(model)),
        "use_cpu": not torch.cuda.is_available(),
        "ddp_find_unused_parameters": False,  # every weight takes part in the loss (DDP would search every step)
        "report_to": [],
        "disable_tqdm": True,
        **distributed.trainer_arguments(),  # on CPU under an FSDP/DeepSpeed launch: accelerate's state set up for it
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
            if (stop is not None and stop.received) or (guard is not None and guard.stopped):
                control.should_save = control.should_training_stop = True
            elif save_at_end and state.global_step >= state.max_steps:
                control.should_save = True  # the finished run is a checkpoint too: resume finds nothing to redo
            events.step_end(state.global_step, model)

    return Bridge()


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
            trainer.train(resume_from_checkpoint=resume_from)
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
