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
from dataclasses import dataclass
from typing import Any

from rlvr.data.streaming import StreamReader, TrainStream
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, TrainInputs
from rlvr.scoring.completions import gold_completion
from rlvr.train.trl_bridge import TRLLoop, model_args

log = logging.getLogger(__name__)
PEEK = 64  # rows of a stream whose completions are checked before training


@dataclass(eq=False, kw_only=True)
class SFTLoop(TRLLoop):
    """Supervised fine-tuning on verified completions. Settings besides those of every TRL loop (:class:`rlvr.train.
    trl_bridge.TRLLoop`; ``per_device_train_batch_size`` counts examples, prompt + completion; completions longer
    than ``max_completion_length`` are counted and warned about):

    Args:
        max_length: tokens per example (prompt + completion), longer ones are cut from the end; with packing, the
            length of each packed sequence. Null: no limit.
        completion_only_loss: loss on the completion tokens only (prompt tokens are masked out); false trains on
            the prompt too.
        packing: pack several examples into each sequence of ``max_length`` tokens (fewer pad tokens; each
            example still attends only to itself).
        completion_field: a column of the training rows holding the completion to train on (the assistant reply
            as text) instead of one built from the gold answer; it is verified by the scorer all the same.
    """

    max_length: AtLeastOne | None = 512
    completion_only_loss: bool = True
    packing: bool = False
    completion_field: str | None = None

    def trl_classes(self) -> tuple[type, type]:
        from trl import SFTConfig, SFTTrainer

        return SFTConfig, SFTTrainer

    def check_streaming(self) -> None:
        """Trains on a stream (``data.streaming=true``), except with packing, which joins rows into sequences so
        that a checkpoint cannot say which row comes next, or with data loader workers, which would each read it."""
        if self.packing:
            raise ConfigError("train.packing joins streamed rows into sequences, and a stream's position is counted in "
                              "rows: set data.streaming=false or train.packing=false.")
        if self.extra.get("dataloader_num_workers"):
            raise ConfigError("train.extra.dataloader_num_workers: a stream is read in the training process (its "
                              "position is saved with each checkpoint); remove it or set data.streaming=false.")

    def dataset(self, inputs: TrainInputs, stream: StreamReader | None = None) -> tuple[Any, Counter]:
        """Prompt-completion pairs whose completion scores ``correct`` with ``inputs.scorer``, and the rows dropped
        counted by status (also logged). Raises ConfigError when no row is left to train on. A stream's pairs
        (``data.streaming=true``) are verified as they are read, through ``stream`` (the trainer's reader)."""
        from datasets import Dataset

        field = self.completion_field
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
            too_long += len(inputs.tokenizer(text)["input_ids"]) > self.max_completion_length
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
                        "evaluation cuts them off.", too_long, len(pairs), self.max_completion_length)
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
        """TRL's ``SFTTrainer`` over the verified completions of ``inputs.train`` (read as it streams, with
        ``data.streaming=true``)."""
        stream = inputs.train.reader() if isinstance(inputs.train, TrainStream) else None
        return self.build(self.trl_classes()[1], inputs, stream=stream, model=inputs.model,
                          train_dataset=self.dataset(inputs, stream)[0],
                          args=self.config(inputs.output_dir, inputs.seed, **model_args(inputs.model)))


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
