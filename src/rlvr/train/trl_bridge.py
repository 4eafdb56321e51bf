"""What every TRL-based training loop shares: the callback bridge from a ``transformers.Trainer`` to our
events (metrics with plain-words diagnostics at each logging step, a hook after each optimizer step), the
training arguments that follow the loaded model rather than TRL's defaults, and running the trainer.

A loop over another TRL trainer (SFT, DPO, ...) builds its trainer and calls :func:`run_trainer`.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable

from rlvr.errors import ConfigError
from rlvr.interfaces import TrainEvents, TrainResult
from rlvr.train.checkpoints import StopOnSignal
from rlvr.train.diagnostics import Diagnoser


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


def bridge(events: TrainEvents, diagnoser: Diagnoser, stop: StopOnSignal | None = None,
           save_at_end: bool = False) -> Any:
    """A ``TrainerCallback`` that forwards a Trainer's logs (with diagnoses) and step ends to ``events``; saves
    and stops after a step when ``stop`` received a signal, and saves the last step when ``save_at_end``."""
    from transformers import TrainerCallback

    class Bridge(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            metrics = {k: float(v) for k, v in (logs or {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if "loss" in metrics or "reward" in metrics:
                final = state.global_step >= state.max_steps
                events.log(state.global_step, metrics, diagnoser.update(metrics, final=final))

        def on_step_end(self, args, state, control, model=None, **kw):
            if stop is not None and stop.received:
                control.should_save = control.should_training_stop = True
            elif save_at_end and state.global_step >= state.max_steps:
                control.should_save = True  # the finished run is a checkpoint too: resume finds nothing to redo
            events.step_end(state.global_step, model)

    return Bridge()


def run_trainer(trainer: Any, events: TrainEvents, diagnoser: Diagnoser, resume_from: str | None = None,
                save_at_end: bool = False) -> TrainResult:
    """Train with ``trainer`` reporting to ``events``, from ``resume_from`` (a checkpoint) if given; the trained
    model, its step count, time, log history, and the signal that stopped it early (after a checkpoint)."""
    from transformers import PrinterCallback

    with StopOnSignal() as stop:
        trainer.add_callback(bridge(events, diagnoser, stop, save_at_end))
        trainer.remove_callback(PrinterCallback)  # our console observer prints the step lines
        start = time.perf_counter()
        with warnings.catch_warnings():  # TRL 1.16 itself reads transformers' deprecated is_gradient_checkpointing
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                    category=FutureWarning)
            trainer.train(resume_from_checkpoint=resume_from)
        runtime = time.perf_counter() - start
    history = [h for h in trainer.state.log_history if "loss" in h or "reward" in h]
    return TrainResult(trainer.model, trainer.state.global_step, runtime, history, stopped_by=stop.received,
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
