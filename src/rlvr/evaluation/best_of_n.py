"""Held-out evaluation of a learned scorer (``train=prm``, ``train=reward_model``): best-of-N reranking. The policy
samples ``n`` completions per held-out question, once; each evaluation ranks them with the model it is handed and
counts the question right when the completion ranked first is correct. Beside that, from the same samples:
majority vote (``maj@n``), a random pick (its expected accuracy: the mean sampled accuracy, ``pass@1``) and the
oracle that always picks a correct one when there is one (``pass@n``).

- A process reward model ranks by its step scores aggregated over the steps (``eval.aggregation``: min, last or
  product); a reward model by its score, an ensemble by its heads' mean minus ``eval.uncertainty_penalty`` times
  their spread (:mod:`rlvr.rewards.learned`, as the rewards do).
- The baseline evaluation is handed the policy, before any scorer is trained: it samples, and its accuracy is the
  random pick's. So the regression gate compares the trained scorer's pick with a random one.
- The samples are drawn at the baseline from the model it is handed; a resumed run (whose baseline was evaluated
  before it was killed) draws them again from ``eval.policy`` (the run's own ``model``), loaded only then, with
  the same seed: the same samples.

    python run_pipeline.py train=prm eval=best_of_n

To rerank a policy's samples with a scorer saved by an earlier run, use ``eval=sampled eval/rerank=prm`` instead.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from rlvr.data.preferences import sample
from rlvr.errors import ConfigError
from rlvr.evaluation.evaluator import EVAL_FIELDS
from rlvr.evaluation.metrics import best, pass_at_k, voted_correct
from rlvr.interfaces import AtLeastOne, Count, EvalResult, ModelComponent, NonNegative, Positive, Probability
from rlvr.model.reward_head import is_process_reward_model, is_reward_model
from rlvr.rewards.learned import (
    Aggregation,
    aggregate,
    conservative,
    head_scores,
    step_scores,
    verifier_disagreement,
)
from rlvr.schema import checked
from rlvr.scoring import Scorer, is_well_formatted

log = logging.getLogger(__name__)


@checked("eval")
class BestOfNEvaluator:
    """Best-of-N accuracy of a learned scorer on held-out questions, beside majority vote, a random pick and the
    oracle.

    Args:
        policy: the model that samples (``${model}``, the run's own): loaded only to sample again after a resume.
        n: completions sampled per question.
        num_examples: held-out rows used (null: all).
        batch_size: sequences generated (and scored) together.
        max_new_tokens: tokens per completion.
        temperature, top_p: sampling.
        seed: sampling seed (the global RNG is left as it was).
        aggregation: how a process reward model's step scores make a solution's: ``min``, ``last``, ``product``.
        uncertainty_penalty: an ensemble's spread subtracted from its mean (times this).
        eval_steps: also evaluate every N training steps (0: only before and after training).
        baseline: evaluate before training (it samples; its accuracy is a random pick's).
    """

    # what a training loop trains that it can evaluate
    evaluates: ClassVar[frozenset[str]] = frozenset({"policy", "process_reward_model", "reward_model"})

    def __init__(
        self,
        policy: ModelComponent | None = None,
        n: AtLeastOne = 8,
        num_examples: AtLeastOne | None = None,
        batch_size: AtLeastOne = 32,
        max_new_tokens: AtLeastOne = 40,
        temperature: Positive = 1.0,
        top_p: Probability = 1.0,
        seed: int = 0,
        aggregation: Aggregation = "min",
        uncertainty_penalty: NonNegative = 0.0,
        eval_steps: Count = 0,
        baseline: bool = True,
    ):
        self.policy, self.n, self.num_examples, self.batch_size = policy, n, num_examples, batch_size
        self.max_new_tokens, self.temperature, self.top_p, self.seed = max_new_tokens, temperature, top_p, seed
        self.aggregation, self.uncertainty_penalty = aggregation, uncertainty_penalty
        self.eval_steps, self.baseline = eval_steps, baseline
        self._samples: list[str] | None = None  # n per question, in question order

    def measures(self) -> set[str]:
        """Best-of-n accuracy (``accuracy``: the scorer's pick, or a random pick's for the policy), the completion
        statistics of the picks, pass@1, pass@n and maj@n; ``verifier_disagreement`` when a scorer ranks."""
        return {*EVAL_FIELDS, "n", "pass@1", f"pass@{self.n}", f"maj@{self.n}", "verifier_disagreement"}

    def evaluate(self, model: Any, tokenizer: Any, dataset: Any, scorer: Scorer, name: str,
                 step: int | None = None) -> EvalResult:
        """Rank each question's samples with ``model`` (a trained scorer), or, handed the policy, report a random
        pick's accuracy."""
        rows = dataset if self.num_examples is None else dataset.select(range(min(self.num_examples, len(dataset))))
        rows = rows.to_list()
        prompts = [r["prompt"] for r in rows for _ in range(self.n)]
        scoring = is_process_reward_model(model) or is_reward_model(model)
        texts = self.samples(None if scoring else model, tokenizer, rows)
        values = self.rank(model, tokenizer, prompts, texts) if scoring else None
        return self.result(rows, texts, values, scorer, tokenizer, name, step)

    def samples(self, policy: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> list[str]:
        """The ``n`` samples per question: drawn once, from ``policy`` (the baseline's model) or else from
        ``eval.policy`` loaded for the purpose."""
        if self._samples is None:
            if policy is None:
                if self.policy is None:
                    raise ConfigError("eval=best_of_n: the samples to rerank come from the policy at the baseline "
                                      "evaluation, which this run did not do: set eval.policy=${model} (the default "
                                      "of eval=best_of_n) or eval.baseline=true.")
                log.info("[rlvr] best-of-%d: loading the policy to sample the held-out completions", self.n)
                policy, tokenizer = self.policy.load()
            self._samples = sample(policy, tokenizer, [r["prompt"] for r in rows], k=self.n,
                                   max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                                   batch_size=self.batch_size, seed=self.seed)
        return self._samples

    def rank(self, model: Any, tokenizer: Any, prompts: list[Any], texts: list[str]) -> list[float]:
        """Each completion's score by the scorer ``model``."""
        was_training = model.training
        model.eval()
        try:
            if is_process_reward_model(model):
                steps = step_scores(model, tokenizer, prompts, texts, model.config.step_separator, self.batch_size)
                return [aggregate(s, self.aggregation) for s in steps]
            heads = head_scores(model, tokenizer, prompts, texts, self.batch_size)
            return [conservative(h, self.uncertainty_penalty) for h in heads]
        finally:
            model.train(was_training)

    def result(self, rows: list[dict[str, Any]], texts: list[str], values: list[float] | None, scorer: Scorer,
               tokenizer: Any, name: str, step: int | None) -> EvalResult:
        """The evaluation: best-of-n accuracy by ``values`` (None: a random pick's), and the other pickers'."""
        n, k = len(rows), self.n
        scored = [scorer(t, rows[j // k]) for j, t in enumerate(texts)]
        picked = p1 = pk = maj = 0.0
        disagreement: list[float] = []
        samples, chosen = [], []
        for i, row in enumerate(rows):
            group, scores = texts[i * k : (i + 1) * k], scored[i * k : (i + 1) * k]
            c = sum(s.correct for s in scores)
            p1, pk, maj = p1 + c / k, pk + pass_at_k(k, c, k), maj + voted_correct(scores)
            mine = values[i * k : (i + 1) * k] if values is not None else None
            top = best(mine) if mine is not None else 0
            picked += scores[top].correct if mine is not None else c / k
            if mine is not None and (d := verifier_disagreement(list(mine), scores)) is not None:
                disagreement.append(d)
            chosen.append(group[top])
            samples.append({"question": row.get("question"), "gold": row["answer"], "correct_of_n": c,
                            **({"picked": group[top], "status": scores[top].status, "scores": mine}
                               if mine is not None else {})})
        tokens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in chosen]
        extra = {"n": k, "pass@1": p1 / n, f"pass@{k}": pk / n, f"maj@{k}": maj / n,
                 **({"verifier_disagreement": sum(disagreement) / len(disagreement)} if disagreement else {})}
        return EvalResult(
            name=name, accuracy=picked / n, n=n,
            format_rate=sum(is_well_formatted(t, scorer.fmt) for t in texts) / len(texts),
            parse_rate=sum(s.status != "unparseable" for s in scored) / len(scored),
            mean_completion_tokens=sum(tokens) / n, truncation_rate=sum(t >= self.max_new_tokens for t in tokens) / n,
            extra=extra, samples=samples, step=step)
