"""The behaviour checks: a few training prompts, ``num_generations`` completions each, sampled with the configured
model and sampling settings through the run's own generation path, scored by the run's scorer and reward suite.

Sampling follows TRL's trainer: the chat template with the generation prompt, the sampling settings TRL builds
into its ``GenerationConfig`` (temperature, top-p, top-k, min-p, repetition penalty, ``generation_kwargs``, the
model's and the tokenizer's EOS tokens, ``max_completion_length``), the rollout engine where
``train.rollout=engine`` (:mod:`rlvr.train.rollout`) and ``model.generate`` otherwise (vLLM is not started for a
preflight: the engine samples in its place). The reward functions are the suite's TRL functions, called as TRL
calls them (the rows' columns repeated per completion), and the total is TRL's weighted sum with masked values
left out. A group is *flat* when its completions' totals are all equal: its advantages are zero and it teaches
nothing. The timed training step (:mod:`rlvr.preflight.timing`) samples its own groups from the same untrained model
before its update; they join the sample (:func:`from_calls`), so ``preflight.sample`` prompts cost one step's worth
less sampling.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rlvr.interfaces import Rewards, Score
from rlvr.preflight.report import Check
from rlvr.scoring import Scorer, is_well_formatted
from rlvr.train.rollout import RolloutEngine, Sampling


@dataclass
class Behaviour:
    """What the sample showed: per completion its text, token count, whether it was cut off, its score and
    each reward function's value; ``group`` completions per prompt, in order."""

    group: int
    texts: list[str]
    tokens: list[int]
    truncated: list[bool]
    scores: list[Score]
    rewards: dict[str, list[float | None]]
    weights: dict[str, float]
    well_formatted: list[bool]
    metrics: dict[str, float] = field(default_factory=dict)  # what the suite logged (score/parse_rate, ...)

    def __add__(self, other: Behaviour) -> Behaviour:
        """Both samples' completions, in groups of the same size."""
        return Behaviour(self.group, self.texts + other.texts, self.tokens + other.tokens,
                         self.truncated + other.truncated, self.scores + other.scores,
                         {k: v + other.rewards.get(k, [None] * len(other.texts)) for k, v in self.rewards.items()},
                         self.weights, self.well_formatted + other.well_formatted, self.metrics or other.metrics)

    @property
    def totals(self) -> list[float]:
        """TRL's total per completion: the weighted sum of the functions' values, masked ones left out."""
        out = []
        for i in range(len(self.texts)):
            values = [self.weights[n] * v for n, vs in self.rewards.items() if (v := vs[i]) is not None]
            out.append(sum(values))
        return out

    def groups(self) -> list[str]:
        """Each group's kind: ``mixed`` (rewards differ: something to learn), or, when flat, ``all_correct``,
        ``no_answer`` (no completion stated a readable answer), ``all_wrong`` or ``same_reward`` (mixed verdicts
        that the reward pays alike)."""
        kinds, totals = [], self.totals
        for start in range(0, len(totals), self.group):
            values, scores = totals[start:start + self.group], self.scores[start:start + self.group]
            if max(values) - min(values) > 1e-6:
                kinds.append("mixed")
            elif all(s.correct for s in scores):
                kinds.append("all_correct")
            elif all(s.status == "unparseable" for s in scores):
                kinds.append("no_answer")
            elif not any(s.correct for s in scores):
                kinds.append("all_wrong")
            else:
                kinds.append("same_reward")
        return kinds


def generation_config(settings: dict[str, Any], extra: dict[str, Any], model: Any, tokenizer: Any) -> Any:
    """The ``GenerationConfig`` TRL's GRPO/RLOO trainers sample rollouts with, for a loop's settings."""
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if tokenizer.eos_token_id not in eos:
        eos = [tokenizer.eos_token_id, *eos]
    kwargs = {"max_new_tokens": settings["max_completion_length"], "do_sample": True,
              "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id, "eos_token_id": eos,
              "temperature": settings.get("temperature", 1.0), "top_p": settings.get("top_p", 1.0),
              "top_k": extra.get("top_k", 0), "min_p": extra.get("min_p"),
              "repetition_penalty": extra.get("repetition_penalty", 1.0)}
    kwargs.update(extra.get("generation_kwargs") or {})
    return GenerationConfig(**kwargs)


def sample(model: Any, tokenizer: Any, rows: list[dict[str, Any]], group: int, config: Any, engine: bool,
           compile: bool = False) -> tuple[list[list[int]], list[bool]]:
    """``group`` completions (token ids, stop token included) of each row's prompt, in order, and whether each
    was cut off (its last token is no stop token, TRL's test): through the rollout engine (``engine``) or
    ``model.generate``."""
    prompt_ids = tokenizer.apply_chat_template(conversation=[r["prompt"] for r in rows], add_generation_prompt=True,
                                               tokenize=True, return_dict=True)["input_ids"]
    repeated = [list(p) for p in prompt_ids for _ in range(group)]
    was_training = model.training
    model.eval()
    try:
        if engine:
            rollout = RolloutEngine(compile=compile).generate(model, repeated, Sampling.from_generation_config(config),
                                                              tokenizer.pad_token_id)
            completions = rollout.completion_ids
        else:
            completions = _generate(model, repeated, config, tokenizer.pad_token_id)
    finally:
        model.train(was_training)
    stops = stop_tokens(config, tokenizer)
    return completions, [not ids or ids[-1] not in stops for ids in completions]


def _stops(config: Any) -> set[int]:
    eos = config.eos_token_id
    return set() if eos is None else {eos} if isinstance(eos, int) else set(eos)


def stop_tokens(config: Any, tokenizer: Any) -> set[int]:
    """Tokens that end a completion, and padding: a completion ending in none of them was cut off (TRL's test)."""
    return {*_stops(config), tokenizer.pad_token_id}


def _generate(model: Any, prompt_ids: list[list[int]], config: Any, pad_token_id: int) -> list[list[int]]:
    """``model.generate`` on left-padded prompts; each completion ends at its first stop token."""
    import torch

    device = next(model.parameters()).device
    width = max(map(len, prompt_ids))
    ids = torch.full((len(prompt_ids), width), pad_token_id, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompt_ids):
        ids[i, width - len(p):] = torch.tensor(p, device=device)
        mask[i, width - len(p):] = 1
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)[:, width:].tolist()
    stops = _stops(config)
    return [row[:next((j + 1 for j, t in enumerate(row) if t in stops), len(row))] for row in out]


def score(rows: list[dict[str, Any]], completion_ids: list[list[int]], truncated: list[bool], group: int,
          tokenizer: Any, scorer: Scorer, functions: Rewards) -> Behaviour:
    """Score the completions with the scorer and call each reward function as TRL calls it."""
    texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
    repeated = [r for r in rows for _ in range(group)]
    prompts = [r["prompt"] for r in repeated]
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    columns = {k: [r[k] for r in repeated] for k in repeated[0] if k not in ("prompt", "completion",
                                                                              "completion_ids")}
    logged: dict[str, list[float]] = {}

    def log_metric(key: str, value: float) -> None:
        logged.setdefault(key, []).append(value)

    rewards: dict[str, list[float | None]] = {}
    for name, fn in functions.functions.items():
        values = fn(prompts=prompts, completions=completions, completion_ids=completion_ids, trainer_state=None,
                    log_metric=log_metric, **columns)
        rewards[name] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
                                for v in values]
    return Behaviour(group, texts, [len(i) for i in completion_ids], truncated,
                     [scorer(t, r) for t, r in zip(texts, repeated)], rewards,
                     dict(functions.weights),
                     [is_well_formatted(t, scorer.fmt) for t in texts],
                     {k: sum(v) / len(v) for k, v in logged.items()})


def from_calls(calls: list[tuple[str, dict[str, Any], list[Any]]], group: int, scorer: Scorer, stops: set[int],
               weights: dict[str, float]) -> Behaviour | None:
    """The completions a training step's reward calls saw (``(function, its keyword arguments, its values)``, as
    TRL made them: each prompt's group consecutive), as a sample; None when there was none."""
    if not calls:
        return None
    kwargs = calls[0][1]
    texts = [c if isinstance(c, str) else "".join(m.get("content", "") for m in c) for c in kwargs["completions"]]
    ids = kwargs["completion_ids"]
    columns = {k: v for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(texts)
               and k not in ("prompts", "completions", "completion_ids")}
    rows = [{k: v[i] for k, v in columns.items()} for i in range(len(texts))]
    rewards: dict[str, list[float | None]] = {}
    for name, _, values in calls:
        rewards[name] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]
    return Behaviour(group, texts, [len(i) for i in ids], [not i or i[-1] not in stops for i in ids],
                     [scorer(t, r) for t, r in zip(texts, rows)], rewards, weights,
                     [is_well_formatted(t, scorer.fmt) for t in texts])


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _where(fmt: Any) -> str:
    if fmt.answer_markers:
        return f"between {fmt.answer_markers[0]} and {fmt.answer_markers[1]}"
    return "after '####'" if fmt.answer_style == "gsm8k" else "as the reply's last number"


def checks(b: Behaviour, scorer: Scorer, max_completion_length: int, thresholds: Any, harder: str,
           examples: int = 2) -> list[Check]:
    """The behaviour checks of one sample (``thresholds``: the preflight settings; ``harder``: the setting that
    sets the data's difficulty, named in the verdicts)."""
    n = len(b.texts)
    shown = [t[:200] for t in b.texts[:examples]]
    parsed = sum(s.status in ("correct", "wrong") for s in b.scores) / n
    correct = sum(s.correct for s in b.scores) / n
    formatted = sum(b.well_formatted) / n
    cut = sum(b.truncated) / n
    prompts = n // b.group
    out = []
    figures = {"completions": n, "parse_rate": parsed, "accuracy": correct, "examples": shown,
               "notes": dict(Counter(s.note for s in b.scores if s.note).most_common(3))}
    summary = (f"{parsed:.0%} of {n} completions ({prompts} prompts x {b.group}) state a readable answer; "
               f"{correct:.0%} correct")
    if parsed < thresholds.min_parse_rate:
        out.append(Check("parse_rate", "fail", summary,
                         f"only {parsed:.0%} of sampled completions state an answer the scorer can read (it reads the "
                         f"answer {_where(scorer.fmt)}): the model does not answer the way the prompt asks, so the "
                         "rewards carry no signal. Ask more plainly (prompts.system), pick a format this model "
                         "follows (prompts=last_number), or warm it up with SFT (experiment=sft_then_grpo). "
                         f"A sample: {shown[0][:120]!r}", figures))
    else:
        out.append(Check("parse_rate", "pass", summary, figures=figures))
    summary = f"{formatted:.0%} well formatted (answer {_where(scorer.fmt)})"
    if formatted < thresholds.min_format_rate:
        out.append(Check("format_rate", "warn", summary,
                         f"{formatted:.0%} of completions are well formatted: format rewards (reward=verifier_format) "
                         "will pay little at first; fine if the model learns it, else warm up with SFT.",
                         {"format_rate": formatted}))
    else:
        out.append(Check("format_rate", "pass", summary, figures={"format_rate": formatted}))
    tokens = sum(b.tokens) / n
    # A cut completion loses its answer only when the scorer cannot read one in what was written: a reply that
    # states its answer and then rambles on is cut, but scored (the reward teaches it to stop).
    lost = sum(t and s.status not in ("correct", "wrong") for t, s in zip(b.truncated, b.scores)) / n
    summary = (f"{cut:.0%} cut at max_completion_length={max_completion_length} (mean {tokens:.0f} tokens); "
               f"{lost:.0%} cut before a readable answer")
    figures = {"truncated": cut, "truncated_unreadable": lost, "mean_tokens": tokens,
               "max_completion_length": max_completion_length}
    if lost > thresholds.max_truncated_completions:
        out.append(Check("truncation", "fail", summary,
                         f"{lost:.0%} of completions hit train.max_completion_length={max_completion_length} before "
                         "stating an answer, so their answers are lost. Raise train.max_completion_length "
                         "(eval.max_new_tokens follows it) or ask for a shorter answer in the prompt.", figures))
    elif cut > thresholds.max_truncated_completions:
        out.append(Check("truncation", "warn", summary,
                         f"{cut:.0%} of completions hit train.max_completion_length={max_completion_length}, though "
                         f"only {lost:.0%} before a readable answer: the model answers, then rambles on. The reward "
                         "pays the replies that end on their answer, so this usually shrinks as it trains; if the "
                         "answers need more room, raise train.max_completion_length.", figures))
    else:
        out.append(Check("truncation", "pass", summary, figures=figures))
    if b.group < 2:
        out.append(Check("flat_groups", "skip", "one completion per prompt: no groups to compare"))
        return out + [_rewards_check(b)]
    kinds = Counter(b.groups())
    flat = prompts - kinds["mixed"]
    share = flat / max(prompts, 1)
    breakdown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in kinds.most_common() if k != "mixed")
    summary = f"{flat} of {prompts} groups flat ({share:.0%})" + (f": {breakdown}" if breakdown else "")
    figures = {"flat": flat, "groups": prompts, "share": share, "kinds": dict(kinds)}
    if share > thresholds.max_flat_groups:
        kind, count = next(((k, v) for k, v in kinds.most_common() if k != "mixed"))
        why = {
            "all_wrong": f"the task is too hard for this model at this difficulty; lower {harder} or warm up with SFT "
                         "(experiment=sft_then_grpo)",
            "no_answer": "no completion states an answer the scorer reads; fix the prompt's format (see parse_rate) "
                         "or warm up with SFT (experiment=sft_then_grpo)",
            "all_correct": f"the task is too easy for this model; raise {harder}",
            "same_reward": "the reward pays right and wrong answers alike; check reward.functions (python -m "
                           "rlvr.audit), or raise train.num_generations or train.temperature",
        }[kind]
        out.append(Check("flat_groups", "fail", summary,
                         f"{count / prompts:.0%} of groups are {kind.replace('_', '-')}: GRPO has no advantage to "
                         f"learn from in them (the loss is 0 by construction); {why}.", figures))
    else:
        out.append(Check("flat_groups", "pass", summary, figures=figures))
    return out + [_rewards_check(b)]


def _rewards_check(b: Behaviour) -> Check:
    """Each reward function's mean and spread over the sample, and the total's; a function that pays every
    completion alike (with others beside it) is said to add nothing yet."""
    per = {}
    for name, values in b.rewards.items():
        kept = [v for v in values if v is not None]
        mean, std = _mean_std(kept)
        per[name] = {"mean": round(mean, 4), "std": round(std, 4), "masked": len(values) - len(kept)}
    total_mean, total_std = _mean_std(b.totals)
    per["total"] = {"mean": round(total_mean, 4), "std": round(total_std, 4)}
    summary = "; ".join(f"{k} {v['mean']:.2f} ± {v['std']:.2f}" for k, v in per.items())
    constant = [k for k, v in per.items() if k != "total" and v["std"] == 0 and len(b.rewards) > 1]
    if constant:
        return Check("rewards", "warn", summary,
                     f"{', '.join(constant)} paid every sampled completion the same: it adds nothing to the "
                     "advantages yet; fine for a shaping term the model has not reached, else drop it.", per)
    return Check("rewards", "pass", summary, figures=per)
