"""Held-out evaluation: batched greedy generation (left padding, the training prompt and chat template) and
the same :class:`~rlvr.rewards.scoring.Scorer` the rewards use."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from rlvr.config.schema import ConfigError
from rlvr.interfaces import EvalResult
from rlvr.rewards.functions import is_well_formatted
from rlvr.rewards.scoring import Scorer

log = logging.getLogger(__name__)


class Evaluator:
    """Greedy accuracy, format compliance, parse rate, completion length and truncation on held-out rows.

    Args:
        num_examples: rows evaluated (null: the whole held-out set).
        batch_size: prompts generated together.
        max_new_tokens: generation budget; keep it equal to the training completion length.
        eval_steps: also evaluate every N training steps (0: only before and after training).
        num_samples_saved: completions kept per evaluation for ``samples_<name>.jsonl``.
        baseline: evaluate the untrained model before training.
    """

    def __init__(
        self,
        num_examples: int | None = None,
        batch_size: int = 32,
        max_new_tokens: int = 40,
        eval_steps: int = 0,
        num_samples_saved: int = 16,
        baseline: bool = True,
    ):
        if batch_size < 1 or max_new_tokens < 1:
            raise ConfigError("eval.batch_size and eval.max_new_tokens must be >= 1.")
        if eval_steps < 0:
            raise ConfigError("eval.eval_steps must be >= 0 (0 disables evaluation during training).")
        self.num_examples, self.batch_size, self.max_new_tokens = num_examples, batch_size, max_new_tokens
        self.eval_steps, self.num_samples_saved, self.baseline = eval_steps, num_samples_saved, baseline

    def generate(self, model: Any, tokenizer: Any, prompts: list[list[dict]]) -> list[tuple[str, int, bool]]:
        """Greedy completions: ``(text, n_tokens, truncated)`` per prompt, in order."""
        import torch

        was_training = model.training
        model.eval()
        tokenizer.padding_side = "left"  # batched generation needs the prompts right-aligned
        device = next(model.parameters()).device
        out: list[tuple[str, int, bool]] = []
        eos = {tokenizer.eos_token_id, *([model.generation_config.eos_token_id] if isinstance(
            model.generation_config.eos_token_id, int) else (model.generation_config.eos_token_id or []))}
        try:
            for i in range(0, len(prompts), self.batch_size):
                batch = prompts[i : i + self.batch_size]
                texts = tokenizer.apply_chat_template(batch, add_generation_prompt=True, tokenize=False)
                enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                with torch.inference_mode():
                    gen = model.generate(
                        **enc, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
                    )
                for row in gen[:, enc["input_ids"].shape[1] :].tolist():
                    n = len(row)
                    while n and row[n - 1] == tokenizer.pad_token_id and tokenizer.pad_token_id not in eos:
                        n -= 1
                    ended = any(t in eos for t in row[:n])
                    if ended:
                        n = next(j for j, t in enumerate(row) if t in eos) + 1
                    text = tokenizer.decode(row[:n], skip_special_tokens=True)
                    out.append((text, n, not ended))
        finally:
            model.train(was_training)
        return out

    def evaluate(self, model: Any, tokenizer: Any, dataset: Any, scorer: Scorer, name: str,
                 step: int | None = None) -> EvalResult:
        rows = dataset if self.num_examples is None else dataset.select(range(min(self.num_examples, len(dataset))))
        rows = rows.to_list()
        if not rows:
            raise ValueError("The held-out set is empty.")
        generations = self.generate(model, tokenizer, [r["prompt"] for r in rows])
        per_task: dict[str, list[bool]] = defaultdict(list)
        samples, correct, formatted, parsed, lengths, truncated = [], 0, 0, 0, 0, 0
        for row, (text, n_tokens, cut) in zip(rows, generations):
            score = scorer(text, row)
            correct += score.correct
            parsed += score.status != "unparseable"
            formatted += is_well_formatted(text, scorer.fmt)
            lengths += n_tokens
            truncated += cut
            per_task[row.get("task", "all")].append(score.correct)
            if len(samples) < self.num_samples_saved:
                samples.append({"question": row.get("question"), "gold": row["answer"], "completion": text,
                                "extracted": score.extracted, "status": score.status})
        n = len(rows)
        return EvalResult(
            name=name,
            accuracy=correct / n,
            n=n,
            format_rate=formatted / n,
            parse_rate=parsed / n,
            mean_completion_tokens=lengths / n,
            truncation_rate=truncated / n,
            per_task={t: sum(v) / len(v) for t, v in sorted(per_task.items())},
            samples=samples,
            step=step,
        )
