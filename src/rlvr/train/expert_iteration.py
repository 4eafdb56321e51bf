"""Expert iteration (STaR, rejection-sampling fine-tuning, ReST-EM): rounds of sample -> verify -> fine-tune.

Each round samples ``samples_per_prompt`` completions for ``sample_prompts`` training prompts from the policy as the
round starts, scores them with the run's verifier and fine-tunes (TRL's ``SFTTrainer``, as ``train=sft``) on the
distinct correct ones, at most ``keep_per_prompt`` per prompt. With ``train.refine`` set, a prompt whose samples
were all wrong gets a critique-and-refine pass (:mod:`rlvr.data.refine`) on its first sample, and a refined answer
that ends correct joins the data: STaR's rationalization, with the model's own critique (told, with
``train.refine.feedback=verifier``, that the answer was wrong) in place of the gold answer as a hint.

Each round is a stage of its own (``train.rounds``; :mod:`rlvr.orchestration.stages`): evaluated, judged by the
regression gate (``pipeline.gate``) and rolled back when refused, resumed after a kill. A round's prompts and
samples are drawn with the round's seed, so the next round after a refused one learns from other samples. Like
ReST-EM, each round continues from the model the last kept round left (STaR restarts from the base model).

    python run_pipeline.py train=expert_iteration                  (3 rounds)
    python run_pipeline.py train=expert_iteration train.rounds=5 train.refine.feedback=verifier
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rlvr.data.preferences import reply
from rlvr.data.refine import Refinement, refine, sampler
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Positive, TrainInputs, TrainResult
from rlvr.train.sft import SFTLoop, _counts

log = logging.getLogger(__name__)


@dataclass(eq=False, kw_only=True)
class ExpertIterationLoop(SFTLoop):
    """Fine-tuning on the policy's own verified samples, in rounds. Settings besides those of SFT
    (:class:`rlvr.train.sft.SFTLoop`; ``max_steps`` is per round):

    Args:
        samples_per_prompt: completions sampled per prompt.
        sample_prompts: training prompts sampled each round (a different draw each round; null: every row).
        sample_temperature: sampling temperature.
        sample_batch_size: sequences generated together while sampling.
        keep_per_prompt: distinct correct completions kept per prompt.
        refine: critique-and-refine the first sample of prompts with no correct sample, keeping the refined answers
            that end correct (:class:`rlvr.data.refine.Refinement`); null: only the samples.
    """

    rounds: AtLeastOne = 3
    max_steps: AtLeastOne = 10
    samples_per_prompt: AtLeastOne = 4
    sample_prompts: AtLeastOne | None = 64
    sample_temperature: Positive = 1.0
    sample_batch_size: AtLeastOne = 32
    keep_per_prompt: AtLeastOne = 1
    refine: Refinement | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.refine = Refinement.of(self.refine, "train.refine")

    def check(self) -> None:
        if self.completion_field is not None:
            raise ConfigError("train.completion_field: expert iteration trains on the policy's own verified samples; "
                              "to fine-tune on a column of the data use train=sft.")

    def train(self, inputs: TrainInputs) -> TrainResult:
        """One round: sample, verify, fine-tune. A round none of whose samples is correct trains nothing (the
        model is handed on as it was, and the next round draws other samples), and says so."""
        try:
            return super().train(inputs)
        except NothingCorrect as e:
            log.warning("[rlvr] expert iteration: none of the %s is correct: this round trains nothing. Raise "
                        "train.samples_per_prompt or train.sample_prompts, set train.refine, or start from a model "
                        "that solves some of the task (an SFT stage first, as in experiment=sft_then_grpo).", e)
            return TrainResult(inputs.model, 0, 0.0)

    def check_streaming(self) -> None:
        """Refuses a stream: each round samples ``sample_prompts`` prompts drawn from the whole training set."""
        raise ConfigError("train=expert_iteration samples each round's prompts from the whole training set, which a "
                          "stream (data.streaming=true) cannot give: set data.streaming=false.")

    def dataset(self, inputs: TrainInputs, stream: Any = None) -> tuple[Any, Counter]:
        """This round's prompt-completion pairs: the verified-correct samples (and refined answers), with the
        samples counted by status (never a stream: :meth:`check_streaming`). Raises :class:`NothingCorrect` when
        none is correct."""
        from datasets import Dataset

        rows = inputs.train.shuffle(seed=inputs.seed)
        rows = list(rows if self.sample_prompts is None else rows.select(range(min(self.sample_prompts, len(rows)))))
        k = self.samples_per_prompt
        generate = sampler(inputs.model, inputs.tokenizer, temperature=self.sample_temperature,
                           batch_size=self.sample_batch_size, seed=inputs.seed)
        texts = generate([r["prompt"] for r in rows], self.max_completion_length, k)
        statuses, pairs, failed = Counter(), [], []
        for i, row in enumerate(rows):
            completions = texts[i * k : (i + 1) * k]
            scores = [inputs.scorer(t, row) for t in completions]
            statuses.update(s.status for s in scores)
            kept = list(dict.fromkeys(t.strip() for t, s in zip(completions, scores) if s.correct))
            pairs += [_pair(row, t) for t in kept[: self.keep_per_prompt]]
            if not kept:
                failed.append((row, completions[0]))
        refined = 0
        if self.refine is not None and failed:
            traces = refine([r for r, _ in failed], [t for _, t in failed], inputs.scorer, self.refine,
                            generate, self.max_completion_length)
            improved = [(t.row, t.improved) for t in traces if t.improved is not None]
            pairs += [_pair(row, text) for row, text in improved]
            refined = len(improved)
        accuracy = statuses["correct"] / max(1, sum(statuses.values()))
        said = (f"{len(rows) * k} samples of {len(rows)} prompts, sampled accuracy {accuracy:.0%} "
                f"({_counts(statuses)})")
        if not pairs:
            raise NothingCorrect(said)
        log.info("[rlvr] expert iteration: %s; fine-tuning on %d verified completions%s.", said, len(pairs),
                 f" ({refined} of them refined answers, of {len(failed)} prompts with no correct sample)"
                 if self.refine is not None else "")
        return Dataset.from_list(pairs), statuses


class NothingCorrect(Exception):
    """No sample of a round is correct (the message says how many were drawn)."""


def _pair(row: dict[str, Any], text: str) -> dict[str, Any]:
    return {"prompt": row["prompt"], "completion": reply(text)}
