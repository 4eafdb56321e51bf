"""A process reward model (PRM): the policy's body with a token-classification head that says, at the last token of
each step of a solution, whether the step is right (:func:`rlvr.model.reward_head.process_reward_model_from`).

The step labels come from the verifier, not from people: Math-Shepherd's estimate
(:mod:`rlvr.data.step_labels`), made with the policy as loaded before the first step, cached in the checkpoint
directory and picked up where a killed run stopped. Training is transformers' ``Trainer`` with a soft cross-entropy
on the labelled tokens only (:func:`step_loss`: a hard label is 0 or 1, a soft one the share of rollouts that
reached a correct answer); every other token is ignored.

The trained PRM is the stage's output (saved to ``model/``; load it with ``AutoModelForTokenClassification``; its
config records the step separator). Use it as a reward (``reward=verifier_prm``: :class:`rlvr.rewards.ProcessReward`)
or to rerank samples: ``eval=best_of_n`` in this run, ``eval/rerank=prm`` in any other.

Run it:  python run_pipeline.py train=prm eval=best_of_n
"""

from __future__ import annotations

import codecs
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rlvr import distributed
from rlvr.data.step_labels import Estimate, Labelling, label_steps
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Positive, TrainInputs
from rlvr.model.reward_head import process_reward_model_from
from rlvr.rewards.learned import prompt_text
from rlvr.scoring.steps import step_ends
from rlvr.train.trl_bridge import TRLLoop, model_args

log = logging.getLogger(__name__)

IGNORED = -100.0  # the label of every token but a step's last (the Trainer counts labels other than -100)


@dataclass(eq=False, kw_only=True)
class PRMLoop(TRLLoop):
    """Process reward modelling on step labels made by the verifier. Settings besides those of every TRL loop
    (:class:`rlvr.train.trl_bridge.TRLLoop`):

    Args:
        learning_rate: peak learning rate (the new head learns from scratch: higher than the policy loops').
        step_separator: what splits a solution into steps (a new line by default; on the command line, escapes
            are read: ``train.step_separator='\\n\\n'`` is a blank line); recorded in the saved PRM.
        estimate: the step label: ``hard`` (1 when any rollout from the step reaches a correct answer) or
            ``soft`` (the share that does).
        label_prompts: training problems labelled (the first N rows; null: every row).
        solutions_per_prompt: solutions sampled per problem.
        rollouts: continuations sampled from each step to label it (Math-Shepherd's N).
        sample_temperature: sampling temperature of solutions and rollouts.
        sample_batch_size: sequences generated together while labelling.
        max_length: tokens of prompt and solution the PRM reads; longer ones are cut (their later steps unlabelled).
    """

    trains: ClassVar[str] = "process_reward_model"  # not a policy: evaluated by an evaluator that reranks

    learning_rate: Positive = 1e-5
    per_device_train_batch_size: AtLeastOne = 8
    step_separator: str = "\n"
    estimate: Estimate = "hard"
    label_prompts: AtLeastOne | None = 32
    solutions_per_prompt: AtLeastOne = 4
    rollouts: AtLeastOne = 4
    sample_temperature: Positive = 1.0
    sample_batch_size: AtLeastOne = 32
    max_length: AtLeastOne = 512

    def check(self) -> None:
        if "\\" in self.step_separator:  # typed on the command line ('\n\n'): escapes read as in Python and YAML
            self.step_separator = codecs.decode(self.step_separator, "unicode_escape")
        if not self.step_separator:
            raise ConfigError("train.step_separator must not be empty: it splits a solution into steps.")
        if distributed.launched():
            raise ConfigError("train=prm labels and trains in one process for now; launch it without "
                              "torchrun/accelerate.")

    def trl_classes(self) -> tuple[type, type]:
        from transformers import Trainer, TrainingArguments

        return TrainingArguments, Trainer

    def trainer(self, inputs: TrainInputs) -> Any:
        """The Trainer of the PRM over the labelled steps of ``inputs.train`` (labelled first: that needs the
        policy)."""
        rows = self.rows(inputs)
        model = process_reward_model_from(inputs.model, self.step_separator, seed=inputs.seed)
        pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
        return self.build(self.trainer_class(inputs), inputs, model=model, train_dataset=rows,
                          data_collator=functools.partial(collate, pad_id=pad), compute_loss_func=step_loss,
                          args=self.config(inputs.output_dir, inputs.seed, **model_args(model)))

    def rows(self, inputs: TrainInputs) -> Any:
        """The ``datasets.Dataset`` the PRM trains on: per labelled solution, ``input_ids`` (prompt and solution)
        and ``labels`` (each step's label at its last token, :data:`IGNORED` elsewhere)."""
        from datasets import Dataset

        n = self.label_prompts
        problems = inputs.train if n is None else inputs.train.select(range(min(n, len(inputs.train))))
        how = Labelling(self.step_separator, self.solutions_per_prompt, self.rollouts, self.estimate,
                        self.max_completion_length, self.sample_temperature, self.sample_batch_size, inputs.seed)
        solutions = label_steps(inputs.model, inputs.tokenizer, problems.to_list(), inputs.scorer, how,
                                Path(inputs.output_dir))
        if not solutions:
            raise ConfigError("train=prm: no sampled solution had a step to label (every one was empty). Raise "
                              "train.max_completion_length or change the prompt.")
        return Dataset.from_list([tokenized(inputs.tokenizer, s, self.max_length) for s in solutions])


def tokenized(tokenizer: Any, solution: dict[str, Any], max_length: int) -> dict[str, list]:
    """One labelled solution as the PRM reads it: ids of the prompt (chat template, assistant turn opened) and the
    solution, each step's label at its last token and :data:`IGNORED` elsewhere, cut at ``max_length``."""
    ids, ends = step_ends(tokenizer, prompt_text(tokenizer, solution["prompt"]), solution["steps"])
    labels = [IGNORED] * len(ids)
    for end, label in zip(ends, solution["labels"], strict=True):
        labels[end] = float(label)
    return {"input_ids": ids[:max_length], "labels": labels[:max_length]}


def collate(examples: list[dict[str, list]], pad_id: int) -> dict[str, Any]:
    """A right-padded batch: ``input_ids``, ``attention_mask`` and float ``labels`` (padding ignored)."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORED)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n], mask[i, :n], labels[i, :n] = torch.tensor(e["input_ids"]), 1, torch.tensor(e["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def step_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy of the PRM's two labels against each labelled token's target ``p`` (the probability the step
    is right: 0 or 1 for hard labels, a share for soft ones): ``-(p log q_right + (1 - p) log q_wrong)``, summed
    over labelled tokens and divided by their count in the whole optimizer step (``num_items_in_batch``, which
    the Trainer counts over the micro-batches of gradient accumulation), else averaged over the batch's."""
    import torch

    labelled = labels != IGNORED
    logp = torch.log_softmax(outputs.logits[labelled].float(), dim=-1)
    target = labels[labelled].to(logp.dtype)
    total = -(target * logp[:, 1] + (1 - target) * logp[:, 0]).sum()
    count = num_items_in_batch if num_items_in_batch is not None else labelled.sum()
    return total / count.clamp(min=1) if hasattr(count, "clamp") else total / max(int(count), 1)
