"""Held-out evaluation of a reward model (``train=reward_model``): pairwise accuracy, the share of held-out
preference pairs whose chosen completion it scores above the rejected one, and the mean margin between them.

The held-out pairs are the held-out rows' own ``chosen``/``rejected`` columns (``pairs=dataset``, from
``data.columns``), or built from the policy's samples on the held-out prompts, scored by the verifier, best
against worst (``pairs=samples``, as the training pairs are; :func:`rlvr.data.preferences.sample_pairs`). Those
are sampled once, at the baseline evaluation, which receives the policy; later evaluations receive the reward
model and score the same pairs. The baseline is the untrained reward head on the policy's body (chance level).

    python run_pipeline.py train=reward_model eval=pairwise
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from rlvr.data.preferences import dataset_pairs, sample_pairs
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Count, EvalResult, Positive
from rlvr.model.reward_head import is_reward_model, reward_model_from
from rlvr.schema import checked


@checked("eval")
class PairwiseEvaluator:
    """Pairwise accuracy of a reward model on held-out preference pairs.

    Args:
        pairs: where the held-out pairs come from: ``dataset`` (the rows' chosen/rejected columns) or ``samples``
            (the policy's own, scored; needs the baseline evaluation, which samples them).
        num_examples: held-out rows used (null: all).
        batch_size: sequences scored together.
        eval_steps: also evaluate every N training steps (0: only before and after training).
        baseline: evaluate the untrained reward head before training.
        samples_per_prompt, max_new_tokens, temperature: how held-out completions are sampled (``pairs=samples``).
        seed: sampling seed and the seed of the untrained head of the baseline.
    """

    # what a training loop trains that it can evaluate
    evaluates: ClassVar[frozenset[str]] = frozenset({"policy", "reward_model"})

    def __init__(
        self,
        pairs: Literal["dataset", "samples"] = "dataset",
        num_examples: AtLeastOne | None = None,
        batch_size: AtLeastOne = 16,
        eval_steps: Count = 0,
        baseline: bool = True,
        samples_per_prompt: AtLeastOne = 4,
        max_new_tokens: AtLeastOne = 40,
        temperature: Positive = 1.0,
        seed: int = 0,
    ):
        if pairs == "samples" and not baseline:
            raise ConfigError("eval.pairs=samples samples the held-out pairs from the policy at the baseline "
                              "evaluation: keep eval.baseline=true, or use eval.pairs=dataset.")
        self.pairs, self.num_examples, self.batch_size = pairs, num_examples, batch_size
        self.eval_steps, self.baseline = eval_steps, baseline
        self.samples_per_prompt, self.max_new_tokens, self.temperature, self.seed = (
            samples_per_prompt, max_new_tokens, temperature, seed)
        self._held_out: list[dict[str, Any]] | None = None

    def measures(self) -> set[str]:
        """Pairwise accuracy (``accuracy``) and the mean margin."""
        return {"accuracy", "pairwise_margin"}

    def evaluate(self, model: Any, tokenizer: Any, dataset: Any, scorer: Any, name: str,
                 step: int | None = None) -> EvalResult:
        """Score every held-out pair with ``model`` (a reward model, or the policy, given an untrained head)."""
        rows = dataset if self.num_examples is None else dataset.select(range(min(self.num_examples, len(dataset))))
        pairs = self.held_out(model, tokenizer, rows, scorer)
        reward_model = model if is_reward_model(model) else reward_model_from(model, seed=self.seed)
        chosen = self.score(reward_model, tokenizer, [p["prompt"] + p["chosen"] for p in pairs])
        rejected = self.score(reward_model, tokenizer, [p["prompt"] + p["rejected"] for p in pairs])
        margins = [c - r for c, r in zip(chosen, rejected)]
        n = len(pairs)
        samples = [{"prompt": p["prompt"][-1]["content"], "chosen": p["chosen"][0]["content"],
                    "rejected": p["rejected"][0]["content"], "margin": m} for p, m in zip(pairs, margins)]
        return EvalResult(name=name, accuracy=sum(m > 0 for m in margins) / n, n=n, format_rate=0.0, parse_rate=0.0,
                          mean_completion_tokens=0.0, truncation_rate=0.0,
                          extra={"pairwise_margin": sum(margins) / n}, samples=samples, step=step)

    def held_out(self, model: Any, tokenizer: Any, rows: Any, scorer: Any) -> list[dict[str, Any]]:
        """The held-out pairs: the rows' own, or (once) the policy's scored samples of the held-out prompts."""
        if self.pairs == "dataset":
            return dataset_pairs(rows, "eval.pairs=dataset")
        if self._held_out is None:
            if is_reward_model(model):
                raise ConfigError("eval.pairs=samples: the held-out pairs are sampled from the policy at the baseline "
                                  "evaluation, which this run did not do (a resumed run skips it); use "
                                  "eval.pairs=dataset, or start the run again.")
            self._held_out = sample_pairs(model, tokenizer, rows, scorer, k=self.samples_per_prompt,
                                          max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                          seed=self.seed).rows("pairs")
        return self._held_out

    def score(self, model: Any, tokenizer: Any, conversations: list[list[dict]]) -> list[float]:
        """The reward model's score of each conversation (prompt and reply, in the chat template); an ensemble's
        is the mean of its heads."""
        import torch

        was_training = model.training
        model.eval()
        texts = tokenizer.apply_chat_template(conversations, tokenize=False)
        device = next(model.parameters()).device
        out: list[float] = []
        try:
            with torch.inference_mode():
                for start in range(0, len(texts), self.batch_size):
                    enc = tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True,
                                    add_special_tokens=False).to(device)
                    out += model(**enc).logits.float().mean(-1).tolist()  # an ensemble: its heads' mean
        finally:
            model.train(was_training)
        return out
