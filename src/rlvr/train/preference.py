"""What the preference loops (``dpo``, ``kto``, ``simpo``, ``reward_model``) share: checking their common
settings, building their training data from the source ``train.preferences`` names, building the TRL config, and
running the trainer through :mod:`rlvr.train.trl_bridge` (events, diagnostics, atomic checkpoints, resume).

``train.preferences=samples`` (the default, RLVR-native) samples ``train.samples_per_prompt`` completions per
training prompt from the policy as it is before training, scores them with the run's verifier and keeps the best
against the worst of each prompt (:func:`rlvr.data.preferences.sample_pairs`); the sampling is seeded and leaves
the training RNG alone, so a resumed run rebuilds the same pairs. ``train.preferences=dataset`` reads the rows'
``chosen``/``rejected`` (or ``completion``/``label``) columns that ``data.columns`` filled.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from rlvr.data.preferences import dataset_labels, dataset_pairs, sample_pairs
from rlvr.errors import ConfigError
from rlvr.interfaces import TrainInputs, TrainResult
from rlvr.train.checkpoints import atomic_checkpoints
from rlvr.train.diagnostics import Diagnoser
from rlvr.train.trl_bridge import run_trainer

log = logging.getLogger(__name__)

Source = Literal["samples", "dataset"]
# Our settings that are no field of a TRL config (checkpoint rotation, where the pairs come from, sampling).
OURS = frozenset({"save_steps", "keep_checkpoints", "preferences", "samples_per_prompt", "sample_prompts",
                  "sample_temperature", "sample_batch_size", "max_completion_length", "on_nonfinite_loss"})


def check_settings(settings: dict[str, Any]) -> None:
    """The rules every preference loop's settings follow; a ConfigError names the first one broken."""
    if settings["max_steps"] < 1:
        raise ConfigError(f"train.max_steps must be >= 1, got {settings['max_steps']}.")
    if settings["save_steps"] < 0 or settings["keep_checkpoints"] < 1:
        raise ConfigError(f"train.save_steps must be >= 0 (0: no checkpoints) and train.keep_checkpoints >= 1, "
                          f"got {settings['save_steps']} and {settings['keep_checkpoints']}.")
    if settings["preferences"] == "samples":
        if settings["samples_per_prompt"] < 2:
            raise ConfigError("train.samples_per_prompt must be >= 2: a pair needs two completions of one prompt.")
        if settings["sample_prompts"] is not None and settings["sample_prompts"] < 1:
            raise ConfigError("train.sample_prompts must be >= 1, or null for every training row.")
        if settings["sample_temperature"] <= 0:
            raise ConfigError(f"train.sample_temperature must be > 0, got {settings['sample_temperature']}.")


def training_rows(inputs: TrainInputs, settings: dict[str, Any], form: Literal["pairs", "labels"]) -> Any:
    """The ``datasets.Dataset`` a preference trainer trains on: ``{prompt, chosen, rejected}`` pairs or KTO's
    ``{prompt, completion, label}``, from the source ``settings["preferences"]`` names."""
    from datasets import Dataset

    if settings["preferences"] == "dataset":
        rows = dataset_pairs(inputs.train) if form == "pairs" else dataset_labels(inputs.train)
        log.info("[rlvr] %d preference %s from the dataset.", len(rows), "pairs" if form == "pairs" else "examples")
    else:
        n = settings["sample_prompts"]
        prompts = inputs.train if n is None else inputs.train.select(range(min(n, len(inputs.train))))
        built = sample_pairs(inputs.model, inputs.tokenizer, prompts, inputs.scorer,
                             k=settings["samples_per_prompt"], max_new_tokens=settings["max_completion_length"],
                             temperature=settings["sample_temperature"], batch_size=settings["sample_batch_size"],
                             seed=inputs.seed)
        rows = built.rows(form)
    return Dataset.from_list(rows)


def trl_config(config_cls: type, settings: dict[str, Any], extra: dict[str, Any], output_dir: str, seed: int,
               ours: frozenset[str] = OURS, **model_args: Any) -> Any:
    """``config_cls`` (a TRL config) from our settings (those in ``ours`` left out), ``train.extra`` and the
    arguments that follow the loaded model (:func:`rlvr.train.trl_bridge.model_args`)."""
    save_steps = settings["save_steps"]
    return config_cls(
        output_dir=output_dir,
        seed=seed,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        **{"report_to": [], "disable_tqdm": True, "use_cpu": True, **model_args},
        **{k: v for k, v in settings.items() if k not in ours},
        **extra,
    )


def train_with(trainer_cls: type, inputs: TrainInputs, settings: dict[str, Any], prompts_per_step: int,
               **trainer_kwargs: Any) -> TrainResult:
    """Build ``trainer_cls`` (with atomic checkpoints) from ``trainer_kwargs`` and run it, events to
    ``inputs.events``, from ``inputs.resume_from`` if set."""
    import datasets

    cls = atomic_checkpoints(trainer_cls, keep=settings["keep_checkpoints"], prompts_per_step=prompts_per_step)
    bars = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # the trainers tokenize with progress bars; our console has its own
    try:
        trainer = cls(processing_class=inputs.tokenizer, **trainer_kwargs)
    finally:
        if bars:
            datasets.enable_progress_bars()
    return run_trainer(trainer, inputs.events, Diagnoser(), resume_from=inputs.resume_from,
                       save_at_end=bool(settings["save_steps"]), on_nonfinite_loss=settings["on_nonfinite_loss"])
