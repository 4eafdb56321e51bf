"""A reward model through TRL's ``RewardTrainer``: the policy's transformer body with a sequence-classification
head (one score per sequence, :func:`rlvr.model.reward_head.reward_model_from`), trained with the Bradley-Terry
loss to score the chosen completion of each pair above the rejected one. The pairs come from the policy's own
samples scored by the verifier, or from a dataset (see :mod:`rlvr.train.preference`).

``train.ensemble_size=k`` trains an ensemble of k heads on one body: head ``i`` starts from its own seed and learns
from its own bootstrap sample of the pairs (n pairs drawn with replacement, seeded by the run's seed and ``i``: each
pair weighs as many times as it was drawn, about a third of them not at all), so the heads disagree where the data
leaves the reward open. As a reward (:class:`rlvr.rewards.RewardModelScore`) the ensemble pays the heads' mean minus
``uncertainty_penalty`` times their spread, and logs the spread each step.

The trained reward model is the stage's output (saved to ``model/``; load it with
``AutoModelForSequenceClassification``: ``logits`` has one column per head). It does not generate, so its held-out
evaluation is pairwise accuracy on held-out pairs (``eval=pairwise``: the heads' mean) or best-of-N reranking of
the policy's samples (``eval=best_of_n``).

Run it:  python run_pipeline.py train=reward_model eval=pairwise train.ensemble_size=4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rlvr.interfaces import AtLeastOne, Positive, TrainInputs
from rlvr.model.reward_head import reward_model_from
from rlvr.train.preference import PreferenceLoop

BOOTSTRAP = "bootstrap"  # the column of each pair's weight in every head's bootstrap sample


@dataclass(eq=False, kw_only=True)
class RewardModelLoop(PreferenceLoop):
    """Bradley-Terry reward modelling on preference pairs. Settings besides the preference loops'
    (:class:`rlvr.train.preference.PreferenceLoop`):

    Args:
        learning_rate: peak learning rate (the new head learns from scratch: higher than the policy loops').
        center_rewards_coefficient: weight of a penalty on the mean reward, keeping scores centred on 0 (null:
            none).
        ensemble_size: reward heads trained on the one body, each from its own seed and bootstrap sample of the
            pairs (1: a single reward model on every pair).
    """

    trains: ClassVar[str] = "reward_model"  # not a policy: evaluated by an evaluator that scores text

    learning_rate: Positive = 1e-5
    center_rewards_coefficient: float | None = None
    ensemble_size: AtLeastOne = 1

    def trl_classes(self) -> tuple[type, type]:
        from trl import RewardConfig, RewardTrainer

        return RewardConfig, RewardTrainer

    def trainer_class(self, inputs: TrainInputs) -> type:
        trainer_cls = super().trainer_class(inputs)
        return trainer_cls if self.ensemble_size == 1 else ensemble_trainer(trainer_cls)

    def model(self, inputs: TrainInputs) -> Any:
        """The reward model, made from the policy: its body and new, seeded heads; the stage's result."""
        return reward_model_from(inputs.model, seed=inputs.seed, heads=self.ensemble_size)

    def rows(self, inputs: TrainInputs) -> Any:
        """The pairs, each with its weight in every head's bootstrap sample (an ensemble only)."""
        rows = super().rows(inputs)
        if self.ensemble_size == 1:
            return rows
        return rows.add_column(BOOTSTRAP, bootstrap_counts(len(rows), self.ensemble_size, inputs.seed))


def bootstrap_counts(n: int, heads: int, seed: int) -> list[list[int]]:
    """How many times each of ``n`` pairs is drawn in each head's bootstrap sample (n draws with replacement,
    head ``i`` seeded by ``seed`` and ``i``): one row per pair, one column per head.

    >>> counts = bootstrap_counts(5, 3, seed=0)
    >>> [sum(c[i] for c in counts) for i in range(3)]
    [5, 5, 5]
    """
    import torch

    columns = [torch.bincount(torch.randint(n, (n,), generator=torch.Generator().manual_seed(seed * 7919 + i)),
                              minlength=n).tolist() for i in range(heads)]
    return [list(row) for row in zip(*columns)]


def bootstrap_loss(chosen: Any, rejected: Any, weights: Any) -> Any:
    """The ensemble's Bradley-Terry loss: per head (column), its pairs' ``-log sigmoid(chosen - rejected)`` averaged
    with the times each pair was drawn for that head as weights (a pair not drawn teaches it nothing), then the
    mean over heads. All three are ``(pairs, heads)``."""
    import torch

    per_head = (weights * -torch.nn.functional.logsigmoid(chosen - rejected)).sum(0) / weights.sum(0).clamp(min=1)
    return per_head.mean()


def ensemble_trainer(base: type) -> type:
    """``base`` (TRL's RewardTrainer) training every head on its own bootstrap sample: each head's Bradley-Terry
    loss is its pairs' mean weighted by the times each was drawn for it, and the heads' losses are averaged.
    Logs TRL's ``accuracy`` and ``margin`` (over heads and pairs) and ``ensemble/std``, the heads' mean spread."""
    import torch

    class EnsembleRewardTrainer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, model: Any, **kwargs: Any):
            labels = model.config.id2label, model.config.label2id
            model.config.num_labels = 1  # TRL insists on one score per sequence; compute_loss reads every head's
            try:
                super().__init__(*args, model=model, **kwargs)
            finally:
                model.config.id2label, model.config.label2id = labels
            collate = self.data_collator

            def with_weights(examples: list[dict[str, Any]]) -> dict[str, Any]:
                batch = collate(examples)
                batch[BOOTSTRAP] = torch.tensor([e[BOOTSTRAP] for e in examples], dtype=torch.float)
                return batch

            self.data_collator = with_weights

        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            if BOOTSTRAP not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, BOOTSTRAP]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weights = inputs.pop(BOOTSTRAP)
            outputs = model(**inputs, use_cache=False)
            chosen, rejected = torch.chunk(outputs.logits.float(), chunks=2)  # (pairs, heads) each
            loss = bootstrap_loss(chosen, rejected, weights.to(chosen.device))
            if self.args.center_rewards_coefficient is not None:
                loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
            mode = "train" if model.training else "eval"
            with torch.no_grad():
                metrics = self._metrics[mode]
                metrics["accuracy"].append((chosen > rejected).float().mean().item())
                metrics["margin"].append((chosen - rejected).mean().item())
                metrics["ensemble/std"].append(torch.cat([chosen, rejected]).std(dim=1, unbiased=False).mean().item())
            return (loss, outputs) if return_outputs else loss

    return EnsembleRewardTrainer
