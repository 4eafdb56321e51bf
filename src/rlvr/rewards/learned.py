"""Learned rewards: a process reward model (:class:`ProcessReward`, trained by ``train=prm``) and a reward model or an
ensemble of reward heads (:class:`RewardModelScore`, trained by ``train=reward_model``), each loaded with
transformers' own classes from where a run saved it (``<run>/model``). Both are reward functions (weighted beside
the verifier like any other, in GRPO, RLOO and PPO) and rerankers for best-of-N evaluation (their :meth:`rate`).

Each reports per batch, as metrics the reward suite logs under the function's name
(:class:`~rlvr.interfaces.RewardOutput`):

- ``verifier_disagreement``: of the pairs of completions in the batch that the verifier tells apart (one correct,
  one not), the share the learned reward orders the other way (ties count half): one minus its AUROC as a detector
  of correct answers, 0.5 being chance. The console warns when it stays high (:mod:`rlvr.train.diagnostics`): the
  policy is then paid for something the verifier does not credit;
- an ensemble's ``ensemble_std``: the mean spread of its heads' scores (how much the members disagree).

The model loads on first use, in the process that scores (a reward worker, see :mod:`rlvr.rewards.isolation`), so
the function travels to it as a path; its first call includes the loading time (raise ``reward.timeout_s`` for
a large model).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, NonNegative, RewardOutput, Score
from rlvr.schema import checked
from rlvr.scoring.steps import split_steps, step_ends

Aggregation = Literal["min", "last", "product"]


class SavedModel:
    """A scoring model saved with transformers (``save_pretrained``, with its tokenizer), loaded on first use.
    Pickled, it is only its path (a reward worker loads its own copy).

    Args:
        path: the directory (a run's ``model/``).
        head: ``sequence`` (a reward model) or ``token`` (a process reward model): the head the saved model must
            have, checked when constructed, from its ``config.json``.
        setting: how the user names it (for messages).
        device: where it runs (null: the GPU when there is one).
    """

    def __init__(self, path: str, head: Literal["sequence", "token"], setting: str, device: str | None = None):
        config = Path(path).expanduser() / "config.json"
        if not config.is_file():
            raise ConfigError(f"{setting}.path: {path} holds no saved model (no config.json); point it at the "
                              f"model/ directory of a train={'prm' if head == 'token' else 'reward_model'} run.")
        architectures = json.loads(config.read_text()).get("architectures") or [""]
        wanted = "ForTokenClassification" if head == "token" else "ForSequenceClassification"
        if not architectures[0].endswith(wanted):
            raise ConfigError(f"{setting}.path: {path} holds a {architectures[0] or 'model'}, not a "
                              f"{'process reward model (train=prm)' if head == 'token' else 'reward model'}.")
        self.path, self.head, self.device = str(Path(path).expanduser()), head, device
        self._loaded: tuple[Any, Any] | None = None

    def load(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``, loaded once, in evaluation mode."""
        if self._loaded is None:
            import torch
            import transformers

            auto = (transformers.AutoModelForTokenClassification if self.head == "token" else
                    transformers.AutoModelForSequenceClassification)
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            model = auto.from_pretrained(self.path).to(device).eval()
            self._loaded = model, transformers.AutoTokenizer.from_pretrained(self.path)
        return self._loaded

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": None}


@checked("ProcessReward")
class ProcessReward:
    """A process reward model's verdict on a solution: the probability it gives each step of being right (read at
    the step's last token; steps split at the separator it was trained with, its config's ``step_separator``),
    aggregated over the steps: ``min`` (the weakest step, the usual choice: one wrong step spoils a solution),
    ``last`` (the final step) or ``product`` (all steps right). In [0, 1]; a completion with no step scores 0.

    Args:
        path: the saved process reward model (the ``model/`` directory of a ``train=prm`` run).
        aggregation: ``min``, ``last`` or ``product``.
        batch_size: sequences scored together.
        device: where the model runs (null: the GPU when there is one).
    """

    def __init__(self, path: str, aggregation: Aggregation = "min", batch_size: AtLeastOne = 16,
                 device: str | None = None):
        self.model = SavedModel(path, "token", "ProcessReward", device)
        self.aggregation, self.batch_size = aggregation, batch_size

    def rate(self, prompts: list[Any], completions: list[str]) -> list[float]:
        """The aggregated score of each completion of its prompt (chat messages)."""
        model, tokenizer = self.model.load()
        steps = step_scores(model, tokenizer, prompts, completions, model.config.step_separator, self.batch_size)
        return [aggregate(s, self.aggregation) for s in steps]

    def __call__(self, completions: list[str], *, prompts: list[Any] | None = None, prompt: list[Any] | None = None,
                 scores: list[Score] | None = None, **_: Any) -> RewardOutput:
        """The reward contract (see :mod:`rlvr.rewards.functions`); the question is TRL's ``prompts``, or the rows'
        ``prompt`` column where a caller passes the rows (the audit)."""
        values = self.rate(_questions(prompts, prompt, len(completions)), completions)
        return RewardOutput(list(values), batch_metrics(values, scores))


@checked("RewardModelScore")
class RewardModelScore:
    """A reward model's score of a completion (its sequence head, read at the last token of prompt and reply in the
    chat template, as TRL's RewardTrainer trains it). An ensemble (``train.ensemble_size=k``: k heads) gives the
    mean of its heads minus ``uncertainty_penalty`` times their standard deviation (population; 0 for one head),
    so a completion the members disagree on earns less: the conservative objective of reward-model ensembles
    against overoptimisation (Coste et al. 2024).

    Args:
        path: the saved reward model (the ``model/`` directory of a ``train=reward_model`` run).
        uncertainty_penalty: weight of the heads' standard deviation subtracted from their mean.
        batch_size: sequences scored together.
        device: where the model runs (null: the GPU when there is one).
    """

    def __init__(self, path: str, uncertainty_penalty: NonNegative = 0.0, batch_size: AtLeastOne = 16,
                 device: str | None = None):
        self.model = SavedModel(path, "sequence", "RewardModelScore", device)
        self.uncertainty_penalty, self.batch_size = uncertainty_penalty, batch_size

    def rate(self, prompts: list[Any], completions: list[str]) -> list[float]:
        """The (penalised) score of each completion of its prompt (chat messages)."""
        return [conservative(h, self.uncertainty_penalty) for h in self.heads(prompts, completions)]

    def heads(self, prompts: list[Any], completions: list[str]) -> list[list[float]]:
        """Every head's score of each completion."""
        model, tokenizer = self.model.load()
        return head_scores(model, tokenizer, prompts, completions, self.batch_size)

    def __call__(self, completions: list[str], *, prompts: list[Any] | None = None, prompt: list[Any] | None = None,
                 scores: list[Score] | None = None, **_: Any) -> RewardOutput:
        """The reward contract (see :mod:`rlvr.rewards.functions`), with the heads' spread in the metrics."""
        heads = self.heads(_questions(prompts, prompt, len(completions)), completions)
        values = [conservative(h, self.uncertainty_penalty) for h in heads]
        metrics = batch_metrics(values, scores)
        if heads and len(heads[0]) > 1:
            metrics["ensemble_std"] = sum(_std(h) for h in heads) / len(heads)
        return RewardOutput(values, metrics)


# --- scoring with a loaded model --------------------------------------------------------------------------------
def step_scores(model: Any, tokenizer: Any, prompts: list[Any], completions: list[str], separator: str,
                batch_size: int = 16) -> list[list[float]]:
    """For each completion of its prompt, the probability the process reward ``model`` gives each of its steps of
    being right (label 1), read at the step's last token (:func:`rlvr.scoring.steps.step_ends`)."""
    import torch

    items = [step_ends(tokenizer, prompt_text(tokenizer, p), split_steps(c, separator))
             for p, c in zip(prompts, completions, strict=True)]
    out: list[list[float]] = []
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            ids, mask = _padded([ids for ids, _ in batch], model)
            right = torch.softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)[..., 1]
            out += [right[b, ends].tolist() for b, (_, ends) in enumerate(batch)]
    return out


def head_scores(model: Any, tokenizer: Any, prompts: list[Any], completions: list[str],
                batch_size: int = 16) -> list[list[float]]:
    """Every head's score of each completion of its prompt, by the reward ``model`` (one row per completion)."""
    import torch

    texts = tokenizer.apply_chat_template([_messages(p) + [{"role": "assistant", "content": c}]
                                           for p, c in zip(prompts, completions, strict=True)], tokenize=False)
    out: list[list[float]] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            ids, mask = _padded([tokenizer(t, add_special_tokens=False)["input_ids"]
                                 for t in texts[start : start + batch_size]], model)
            out += model(input_ids=ids, attention_mask=mask).logits.float().tolist()
    return out


def aggregate(steps: list[float], how: Aggregation) -> float:
    """A solution's score from its steps' (``min``, ``last`` or ``product``); 0 without a step.

    >>> aggregate([0.9, 0.5, 0.8], "min"), aggregate([0.9, 0.5, 0.8], "last"), aggregate([0.5, 0.5], "product")
    (0.5, 0.8, 0.25)
    """
    if not steps:
        return 0.0
    return min(steps) if how == "min" else steps[-1] if how == "last" else math.prod(steps)


def conservative(heads: list[float], penalty: float) -> float:
    """The mean of an ensemble's scores minus ``penalty`` times their (population) standard deviation.

    >>> conservative([1.0, 3.0], 0.5), conservative([2.0], 1.0)
    (1.5, 2.0)
    """
    return sum(heads) / len(heads) - penalty * _std(heads)


def verifier_disagreement(values: list[float | None], scores: list[Score] | None) -> float | None:
    """Of the pairs (a correct completion, one not correct: wrong or unparseable) in the batch, the share whose
    learned ``values`` are in the other order (ties count half); None without such a pair.

    >>> right, wrong = Score("1", "correct", 1.0), Score("2", "wrong", 0.0)
    >>> verifier_disagreement([0.9, 0.2, 0.5], [right, wrong, wrong]), verifier_disagreement([0.1, 0.3], [right, wrong])
    (0.0, 1.0)
    """
    if not scores:
        return None
    pairs = [(v, s.correct) for v, s in zip(values, scores) if v is not None and s.status != "bad_gold"]
    right, wrong = [v for v, ok in pairs if ok], [v for v, ok in pairs if not ok]
    if not right or not wrong:
        return None
    against = sum((w > r) + 0.5 * (w == r) for r in right for w in wrong)
    return against / (len(right) * len(wrong))


def batch_metrics(values: list[float | None], scores: list[Score] | None) -> dict[str, float]:
    """What a learned reward reports about a batch: its disagreement with the verifier, when there is a pair."""
    disagreement = verifier_disagreement(values, scores)
    return {} if disagreement is None else {"verifier_disagreement": disagreement}


def prompt_text(tokenizer: Any, prompt: Any) -> str:
    """A prompt as the policy sees it before it answers: chat messages through the chat template with the
    assistant's turn opened (a plain string as it is)."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)


def _messages(prompt: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _questions(prompts: list[Any] | None, prompt: list[Any] | None, n: int) -> list[Any]:
    questions = prompts if prompts is not None else prompt
    if questions is None or len(questions) != n:
        raise ValueError("a learned reward needs the prompt of each completion (TRL's prompts, or a prompt column)")
    return list(questions)


def _padded(sequences: list[list[int]], model: Any) -> tuple[Any, Any]:
    """Right-padded ids and their attention mask, on the model's device."""
    import torch

    width = max(len(s) for s in sequences)
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    device = next(model.parameters()).device
    return ids.to(device), mask.to(device)


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
