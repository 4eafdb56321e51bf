"""Supervised fine-tuning through TRL's ``SFTTrainer``: the format warm-up before (or instead of) GRPO.

Each training row becomes a conversational prompt-completion pair: the row's chat messages, and an assistant
reply that gives the row's gold answer in the prompt's answer format (:func:`rlvr.scoring.completions.
gold_completion`), or the dataset's own completion (``completion_field``). Every completion is scored with the
run's scorer first and only those that score ``correct`` are trained on: a gold answer the scorer cannot verify
is never taught. The tokenizer's chat template applies; the loss is on the completion only by default.

Run it alone:  python run_pipeline.py train=sft
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from typing import Any

from rlvr.data.streaming import StreamReader, TrainStream
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Count, NonNegative, Positive, TrainInputs, TrainResult
from rlvr.scoring.completions import gold_completion
from rlvr.train.checkpoints import atomic_checkpoints
from rlvr.train.diagnostics import Diagnoser
from rlvr.train.trl_bridge import OnNonFinite, check_extra, checkpointing, model_args, run_trainer

log = logging.getLogger(__name__)
PEEK = 64  # rows of a stream whose completions are checked before training


class SFTLoop:
    """Supervised fine-tuning on verified completions.

    Args:
        max_steps: optimizer steps.
        learning_rate: peak learning rate.
        lr_scheduler_type: transformers scheduler name (``constant``, ``linear``, ``cosine``, ...).
        warmup_steps: warm-up steps, or a fraction of max_steps when below 1.
        per_device_train_batch_size: examples (prompt + completion) per device per step.
        gradient_accumulation_steps: micro-batches per optimizer step.
        max_length: tokens per example (prompt + completion), longer ones are cut from the end; with packing, the
            length of each packed sequence. Null: no limit.
        max_completion_length: tokens the trained model answers in; evaluation's budget follows it
            (``eval.max_new_tokens``), and completions longer than it are counted and warned about.
        completion_only_loss: loss on the completion tokens only (prompt tokens are masked out); false trains on
            the prompt too.
        packing: pack several examples into each sequence of ``max_length`` tokens (fewer pad tokens; each
            example still attends only to itself).
        completion_field: a column of the training rows holding the completion to train on (the assistant reply
            as text) instead of one built from the gold answer; it is verified by the scorer all the same.
        logging_steps: log every N steps.
        save_steps: checkpoint every N steps, and at the last step (0: no checkpoints, so no resume); see
            :mod:`rlvr.train.checkpoints`.
        keep_checkpoints: the newest checkpoints kept; older ones are deleted once a newer one is complete.
        on_nonfinite_loss: as for ``grpo``: a step with a NaN or inf loss never changes the weights; ``skip`` trains
            on, ``stop`` saves a checkpoint and stops.
        extra: any further ``trl.SFTConfig`` field, passed through unchanged (checked against SFTConfig).
    """

    def __init__(
        self,
        max_steps: AtLeastOne = 20,
        learning_rate: Positive = 2e-5,
        lr_scheduler_type: str = "constant",
        warmup_steps: NonNegative = 0,
        per_device_train_batch_size: AtLeastOne = 8,
        gradient_accumulation_steps: AtLeastOne = 1,
        max_length: AtLeastOne | None = 512,
        max_completion_length: AtLeastOne = 40,
        completion_only_loss: bool = True,
        packing: bool = False,
        completion_field: str | None = None,
        logging_steps: AtLeastOne = 1,
        save_steps: Count = 10,
        keep_checkpoints: AtLeastOne = 2,
        on_nonfinite_loss: OnNonFinite = "skip",
        extra: dict[str, Any] = {},  # noqa: B006
    ):
        if max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1, got {max_steps}.")
        if save_steps < 0 or keep_checkpoints < 1:
            raise ConfigError(f"train.save_steps must be >= 0 (0: no checkpoints) and train.keep_checkpoints >= 1, "
                              f"got {save_steps} and {keep_checkpoints}.")
        self.settings = {k: v for k, v in locals().items() if k not in ("self", "extra")}
        self.extra = dict(extra)
        self._check_extra()

    def _check_extra(self) -> None:
        """Build the SFTConfig once now, so a value TRL rejects fails before any model loads."""
        from trl import SFTConfig

        check_extra(SFTConfig, self.extra, self.settings,
                    lambda tmp: self.sft_config(tmp, seed=0, bf16=False, **checkpointing(False)))

    @property
    def max_steps(self) -> int:
        return self.settings["max_steps"]

    def check_streaming(self) -> None:
        """Trains on a stream (``data.streaming=true``), except with packing, which joins rows into sequences so
        that a checkpoint cannot say which row comes next, or with data loader workers, which would each read it."""
        if self.settings["packing"]:
            raise ConfigError("train.packing joins streamed rows into sequences, and a stream's position is counted in "
                              "rows: set data.streaming=false or train.packing=false.")
        if self.extra.get("dataloader_num_workers"):
            raise ConfigError("train.extra.dataloader_num_workers: a stream is read in the training process (its "
                              "position is saved with each checkpoint); remove it or set data.streaming=false.")

    def sft_config(self, output_dir: str, seed: int, **model_args: Any) -> Any:
        """The ``trl.SFTConfig`` for this run; ``model_args`` (precision, checkpointing, device) follow the
        loaded model, see :func:`rlvr.train.trl_bridge.model_args`."""
        from trl import SFTConfig

        s = {k: v for k, v in self.settings.items()
             if k not in ("save_steps", "keep_checkpoints", "max_completion_length", "completion_field",
                          "on_nonfinite_loss")}
        save_steps = self.settings["save_steps"]
        return SFTConfig(
            output_dir=output_dir,
            seed=seed,
            save_strategy="steps" if save_steps else "no",
            save_steps=save_steps or 500,
            **{"report_to": [], "disable_tqdm": True, "use_cpu": True, **model_args},
            **s,
            **self.extra,
        )

    def dataset(self, inputs: TrainInputs, stream: StreamReader | None = None) -> tuple[Any, Counter]:
        """Prompt-completion pairs whose completion scores ``correct`` with ``inputs.scorer``, and the rows dropped
        counted by status (also logged). Raises ConfigError when no row is left to train on. A stream's pairs
        (``data.streaming=true``) are verified as they are read, through ``stream`` (the trainer's reader)."""
        from datasets import Dataset

        field = self.settings["completion_field"]
        verified = VerifiedPair(inputs.scorer, field)
        if isinstance(inputs.train, TrainStream):
            return self._stream(inputs.train, verified, stream), Counter()
        if field is not None and field not in inputs.train.column_names:
            raise ConfigError(f"train.completion_field={field!r}: the training rows have no such column "
                              f"(they have {', '.join(inputs.train.column_names)}).")
        pairs, dropped, too_long = [], Counter(), 0
        for row in inputs.train:
            pair, status = verified.check(row)
            if pair is None:
                dropped[status] += 1
                continue
            text = pair["completion"][0]["content"]
            too_long += len(inputs.tokenizer(text)["input_ids"]) > self.settings["max_completion_length"]
            pairs.append(pair)
        source = f"column {field!r}" if field else "the gold answers"
        if not pairs:
            raise ConfigError(f"train=sft: no completion from {source} scores correct with the prompt's answer "
                              f"format ({_counts(dropped)}): the prompt (prompts.*) and the data's answers disagree.")
        if dropped:
            log.warning("[rlvr] SFT: %d of %d training rows dropped, their completion from %s does not score "
                        "correct (%s); never trained on.", sum(dropped.values()), len(inputs.train), source,
                        _counts(dropped))
        if too_long:
            log.warning("[rlvr] SFT: %d of %d completions are longer than train.max_completion_length=%d tokens: "
                        "evaluation cuts them off.", too_long, len(pairs), self.settings["max_completion_length"])
        log.info("[rlvr] SFT on %d verified completions from %s.", len(pairs), source)
        return Dataset.from_list(pairs), dropped

    def _stream(self, rows: TrainStream, verified: "VerifiedPair", stream: StreamReader | None) -> Any:
        """The verified pairs of a stream, as they come. Its first rows are checked now: a stream whose completions
        do not score correct (a prompt that disagrees with the data's answers) fails before training."""
        first = [verified.check(row) for row in itertools.islice(rows.reader().rows(), PEEK)]
        if not any(pair for pair, _ in first):
            source = f"column {verified.field!r}" if verified.field else "the gold answers"
            raise ConfigError(f"train=sft: none of the first {len(first)} completions from {source} scores correct "
                              f"with the prompt's answer format ({_counts(Counter(s for _, s in first))}): the "
                              "prompt (prompts.*) and the data's answers disagree.")
        log.info("[rlvr] SFT on the verified completions of %s, as they stream (rows that do not score correct are "
                 "left out).", rows.source.where)
        return (stream or rows.reader()).dataset(verified)

    def trainer(self, inputs: TrainInputs) -> Any:
        """The ``trl.SFTTrainer`` (with atomic checkpoints) over the verified completions of ``inputs.train``."""
        import datasets
        from trl import SFTTrainer

        args = self.sft_config(inputs.output_dir, inputs.seed, **model_args(inputs.model))
        s = self.settings
        stream = inputs.train.reader() if isinstance(inputs.train, TrainStream) else None
        trainer_cls = atomic_checkpoints(SFTTrainer, keep=s["keep_checkpoints"],
                                         prompts_per_step=s["per_device_train_batch_size"]
                                         * s["gradient_accumulation_steps"], stream=stream)
        bars = not datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # SFTTrainer tokenizes with four progress bars; our console has its own
        try:
            return trainer_cls(model=inputs.model, args=args, train_dataset=self.dataset(inputs, stream)[0],
                               processing_class=inputs.tokenizer)
        finally:
            if bars:
                datasets.enable_progress_bars()

    def train(self, inputs: TrainInputs) -> TrainResult:
        """Fine-tune on the verified completions of ``inputs.train``; events go to ``inputs.events``."""
        # The Diagnoser's checks read GRPO's metrics (rewards, clipped completions), none of which SFT logs: quiet.
        return run_trainer(self.trainer(inputs), inputs.events, Diagnoser(), resume_from=inputs.resume_from,
                           save_at_end=bool(self.settings["save_steps"]),
                           on_nonfinite_loss=self.settings["on_nonfinite_loss"])


class VerifiedPair:
    """A training row's prompt-completion pair: the completion from the gold answer (or from ``field``), kept only
    when ``scorer`` scores it correct."""

    def __init__(self, scorer: Any, field: str | None):
        self.scorer, self.field = scorer, field

    def check(self, row: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The pair (None when its completion does not score correct) and the completion's status."""
        if self.field is not None and self.field not in row:
            raise ConfigError(f"train.completion_field={self.field!r}: the training rows have no such column "
                              f"(they have {', '.join(row)}).")
        text = gold_completion(row["answer"], self.scorer.fmt) if self.field is None else row[self.field]
        if not isinstance(text, str):
            raise ConfigError(f"train.completion_field={self.field!r} must hold text, got {type(text).__name__}.")
        score = self.scorer(text, row)
        pair = {"prompt": row["prompt"], "completion": [{"role": "assistant", "content": text}]}
        return (pair if score.correct else None), score.status

    def __call__(self, row: dict[str, Any]) -> dict[str, Any] | None:
        return self.check(row)[0]


def _counts(statuses: Counter) -> str:
    return ", ".join(f"{status} {n}" for status, n in statuses.most_common()) or "no rows"
