"""Held-out evaluation: batched generation (left padding, the training prompt and chat template) scored by the
same :class:`~rlvr.scoring.Scorer` the rewards use.

Greedy decoding gives accuracy, per-task accuracy (and per level, for a curriculum's held-out rows), format
compliance, parse rate, completion length, truncation and repetition; with ``eval.k > 1`` it also samples k
completions per question for pass@k, maj@k and their self-consistency, and for best-of-k by each reranker in
``eval.rerank`` (a saved process reward model or reward model: ``eval/rerank=prm eval.rerank.prm.path=RUN/model``),
beside majority vote and a random pick (whose expected accuracy is pass@1). ``eval.validator`` adds the adversarial
validator's measures (:mod:`rlvr.evaluation.validator`: perplexity under a reference model, consistency with the
question by an NLI model); ``eval.refine`` lets the model critique and refine its greedy answers and reports the
accuracy after each round (``eval=refine``, :mod:`rlvr.data.refine`). The pipeline calls it before, during (every
``eval.eval_steps``) and after training;
``python -m rlvr.benchmark`` calls it for every (model, task) pair.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from dataclasses import fields
from typing import Any, ClassVar

from rlvr import distributed
from rlvr.data.refine import Refinement, accuracy_by_round, refine, turned
from rlvr.errors import ConfigError
from rlvr.evaluation.metrics import best, majority_answer, pass_at_k, repeats
from rlvr.evaluation.validator import Validation, Validator
from rlvr.interfaces import AtLeastOne, Count, EvalResult, Positive, Probability
from rlvr.model.reward_head import is_process_reward_model, is_reward_model
from rlvr.schema import checked
from rlvr.scoring import Scorer, is_well_formatted

log = logging.getLogger(__name__)

Generation = tuple[str, int, bool]  # (text, n_tokens up to and including EOS, truncated)
EVAL_FIELDS = tuple(f.name for f in fields(EvalResult) if f.type == "float")  # accuracy, format_rate, ...


@checked("eval")
class Evaluator:
    """Greedy accuracy and completion statistics on held-out rows, plus pass@k / maj@k from k samples.

    Args:
        num_examples: rows evaluated (null: the whole held-out set).
        batch_size: sequences generated together (with k samples, ``batch_size // k`` questions per batch).
        max_new_tokens: generation budget; keep it equal to the training completion length.
        eval_steps: also evaluate every N training steps (0: only before and after training).
        num_samples_saved: rows whose completion is kept for ``samples_<name>.jsonl`` (null: every row, so the
            report can match baseline and final question by question).
        baseline: evaluate the untrained model before training.
        k: completions sampled per question for pass@k and maj@k (0 or 1: greedy only).
        temperature, top_p: sampling for the k completions.
        seed: sampling seed; the global RNG state (training's) is left untouched.
        progress: show a progress bar over the generation batches (on stderr).
        rerank: ``{name: reranker}`` for best-of-k (with ``k > 1``): each scores a question's k samples (its
            ``rate(prompts, completions)``: :class:`rlvr.rewards.ProcessReward`, :class:`rlvr.rewards.
            RewardModelScore`), the highest is picked, and ``best_of_<k>/<name>`` is the share of questions whose
            pick is correct (null: none). Options: ``eval.rerank=prm``, ``eval.rerank=reward_model``, or both as a list.
        validator: the adversarial validator's models (:class:`rlvr.evaluation.validator.Validation`): a reference
            model for ``ref_perplexity``, an NLI model for ``nli_*``; by default none.
        refine: critique and refine the greedy answers (:class:`rlvr.data.refine.Refinement`) and report
            ``refine_accuracy_<r>`` after each round r and the shares turned ``refine_wrong_to_right`` and
            ``refine_right_to_wrong``; ``accuracy`` stays the first answers'. Null: no refinement.
    """

    evaluates: ClassVar[frozenset[str]] = frozenset({"policy"})  # what a training loop trains that it can evaluate

    def __init__(
        self,
        num_examples: AtLeastOne | None = None,
        batch_size: AtLeastOne = 32,
        max_new_tokens: AtLeastOne = 40,
        eval_steps: Count = 0,
        num_samples_saved: Count | None = None,
        baseline: bool = True,
        k: Count = 0,
        temperature: Positive = 1.0,
        top_p: Probability = 1.0,
        seed: int = 0,
        progress: bool = True,
        rerank: dict[str, Any] | None = None,
        validator: Validation = Validation(),  # noqa: B008 - copied into the schema
        refine: Refinement | None = None,
    ):
        rerank = rerank or {}
        if rerank and k < 2:
            raise ConfigError(f"eval.rerank ({', '.join(rerank)}) picks the best of k samples per question: set "
                              "eval.k to 2 or more (eval=sampled: 8).")
        for name, reranker in rerank.items():
            if not callable(getattr(reranker, "rate", None)):
                raise ConfigError(f"eval.rerank.{name} scores nothing: a reranker needs a _target_ with a "
                                  "rate(prompts, completions) method (rlvr.rewards.ProcessReward, RewardModelScore).")
        self.num_examples, self.batch_size, self.max_new_tokens = num_examples, batch_size, max_new_tokens
        self.eval_steps, self.num_samples_saved, self.baseline = eval_steps, num_samples_saved, baseline
        self.k, self.temperature, self.top_p, self.seed, self.progress = k, temperature, top_p, seed, progress
        self.rerank = dict(rerank)
        self.validator, self.refine = Validator(validator), Refinement.of(refine, "eval.refine")

    def measures(self) -> set[str]:
        """The metrics its evaluations report: :class:`EvalResult`'s, pass@k, maj@k, ``self_consistency`` and each
        reranker's best-of-k with ``k > 1``, the validator's and the refinement's."""
        out = {*EVAL_FIELDS, "generation_s", "generated_tokens_per_s", *self.validator.measures()}
        if self.k > 1:
            out |= {"k", "pass@1", f"pass@{self.k}", f"maj@{self.k}", "self_consistency", "sampling_s",
                    *(f"best_of_{self.k}/{name}" for name in self.rerank)}
        if self.refine is not None:
            out |= {*(f"refine_accuracy_{r}" for r in range(1, self.refine.rounds + 1)), "refine_wrong_to_right",
                    "refine_right_to_wrong"}
        return out

    # --- generation ------------------------------------------------------------------------------------------
    def generate(self, model: Any, tokenizer: Any, prompts: list[list[dict]], num_samples: int = 1,
                 desc: str = "eval", max_new_tokens: int | None = None) -> list[Generation]:
        """Completions for chat ``prompts``: greedy when ``num_samples == 1``, else ``num_samples`` sampled per
        prompt (consecutive in the output). Each is ``(text, n_tokens, truncated)``, in prompt order. ``desc``
        names the progress bar; ``max_new_tokens`` replaces the evaluation's budget.

        Under a launcher each rank generates every ``world_size``-th prompt and the completions are gathered, so
        every rank returns all of them (ranks get equal batch counts: a sharded model, FSDP or ZeRO-3, needs every
        rank in every forward pass)."""
        import torch
        from tqdm.auto import tqdm

        was_training = model.training
        model.eval()
        tokenizer.padding_side = "left"  # batched generation needs the prompts right-aligned
        device = next(model.parameters()).device
        eos = _eos_ids(model, tokenizer)
        texts = tokenizer.apply_chat_template(prompts, add_generation_prompt=True, tokenize=False)
        # Similar lengths batched together: less padding, the same results in the original order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        world, rank = distributed.world_size(), distributed.rank()
        if world > 1:
            share = -(-len(order) // world)
            order = order[rank::world]
            order += order[-1:] * (share - len(order))  # a repeated prompt keeps batch counts equal; dropped below
        synced = world > 1 and _sharded(model)
        per_batch = max(1, self.batch_size // num_samples)
        sampling = (
            {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0,
             "num_return_sequences": num_samples}
            if num_samples > 1 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        out: dict[int, list[Generation]] = {}
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
                torch.manual_seed(self.seed)
                # leave=None: the bar stays on screen after a standalone evaluation, and is cleared after one
                # nested under the training bar.
                batches = tqdm(range(0, len(order), per_batch), desc=desc, unit="batch", file=sys.stderr,
                               disable=not self.progress or rank > 0, leave=None, dynamic_ncols=True)
                for start in batches:
                    idx = order[start : start + per_batch]
                    enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                                    add_special_tokens=False).to(device)
                    gen = model.generate(**enc, max_new_tokens=max_new_tokens or self.max_new_tokens,
                                         pad_token_id=tokenizer.pad_token_id,
                                         use_cache=True,  # training may have switched the cache off
                                         synced_gpus=synced, **sampling)
                    rows = gen[:, enc["input_ids"].shape[1] :].tolist()
                    for j, i in enumerate(idx):
                        out[i] = [_decode(tokenizer, r, eos) for r in rows[j * num_samples : (j + 1) * num_samples]]
        finally:
            model.train(was_training)
        if world > 1:
            out = {i: g for part in distributed.gather(out) for i, g in part.items()}
        return [g for i in range(len(texts)) for g in out[i]]

    # --- evaluation ------------------------------------------------------------------------------------------
    def evaluate(self, model: Any, tokenizer: Any, dataset: Any, scorer: Scorer, name: str,
                 step: int | None = None) -> EvalResult:
        """Evaluate ``model`` on ``dataset`` (rows with ``prompt``, ``answer``, ``task``); see :class:`EvalResult`."""
        if is_reward_model(model) or is_process_reward_model(model):
            raise ConfigError("The model to evaluate scores text and does not generate (train=reward_model or "
                              "train=prm): evaluate it with eval=best_of_n (or eval=pairwise for a reward model).")
        rows = dataset if self.num_examples is None else dataset.select(range(min(self.num_examples, len(dataset))))
        rows = rows.to_list()
        if not rows:
            raise ValueError("The held-out set is empty.")
        prompts = [r["prompt"] for r in rows]
        start = time.perf_counter()
        greedy = self.generate(model, tokenizer, prompts, desc=f"eval {name}")
        greedy_s = time.perf_counter() - start
        per_task: dict[str, list[bool]] = defaultdict(list)
        per_level: dict[str, list[bool]] = defaultdict(list)  # a curriculum's held-out rows: "task/L<level>"
        samples, correct, formatted, parsed, lengths, truncated, looping = [], 0, 0, 0, 0, 0, 0
        for row, (text, n_tokens, cut) in zip(rows, greedy):
            score = scorer(text, row)
            correct += score.correct
            parsed += score.status != "unparseable"
            formatted += is_well_formatted(text, scorer.fmt)
            lengths += n_tokens
            truncated += cut
            looping += repeats(text)
            per_task[row.get("task", "all")].append(score.correct)
            if row.get("level"):
                per_level[row["level"]].append(score.correct)
            if self.num_samples_saved is None or len(samples) < self.num_samples_saved:
                samples.append({"question": row.get("question"), "gold": row["answer"], "completion": text,
                                "extracted": score.extracted, "status": score.status,
                                **({"why": score.note} if score.note else {})})
        n = len(rows)
        extra = {"generation_s": round(greedy_s, 3), "generated_tokens_per_s": round(lengths / max(greedy_s, 1e-9), 1)}
        if self.k > 1:
            extra.update(self._sampled_metrics(model, tokenizer, rows, prompts, scorer, samples, name))
        if self.validator.measures():
            measured, per_sample = self.validator.measure(prompts, [text for text, _, _ in greedy])
            extra.update(measured)
            for sample, values in zip(samples, per_sample):
                sample.update(values)
        if self.refine is not None:
            extra.update(self._refined(model, tokenizer, rows, [text for text, _, _ in greedy], scorer, samples, name))
        return EvalResult(
            name=name,
            accuracy=correct / n,
            n=n,
            format_rate=formatted / n,
            parse_rate=parsed / n,
            mean_completion_tokens=lengths / n,
            truncation_rate=truncated / n,
            repetition_rate=looping / n,
            per_task={t: sum(v) / len(v) for t, v in sorted(per_task.items())},
            per_level={lv: sum(v) / len(v) for lv, v in sorted(per_level.items())},
            extra=extra,
            samples=samples,
            step=step,
        )

    def _sampled_metrics(self, model: Any, tokenizer: Any, rows: list[dict], prompts: list[list[dict]],
                         scorer: Scorer, samples: list[dict], name: str) -> dict[str, float]:
        """pass@1 (mean sampled accuracy: a random pick's expected accuracy), pass@k, maj@k, self-consistency (the
        mean share of a question's samples whose answer is the majority's) and best-of-k by each reranker over ``k``
        sampled completions per row."""
        k = self.k
        start = time.perf_counter()
        sampled = self.generate(model, tokenizer, prompts, num_samples=k, desc=f"eval {name} ({k} samples each)")
        seconds = time.perf_counter() - start
        texts = [text for text, _, _ in sampled]
        ranked = {name: r.rate([p for p in prompts for _ in range(k)], texts) for name, r in self.rerank.items()}
        p1 = pk = maj = agree = 0.0
        picked = dict.fromkeys(self.rerank, 0)
        for i, row in enumerate(rows):
            scores = [scorer(text, row) for text in texts[i * k : (i + 1) * k]]
            c = sum(s.correct for s in scores)
            p1 += c / k
            pk += pass_at_k(k, c, k)
            voted = majority_answer([s.extracted for s in scores])
            majority = [s for s in scores if s.extracted is not None and s.extracted.strip() == voted]
            maj += any(s.correct for s in majority)
            agree += len(majority) / k  # self-consistency: the share of samples that agree with the majority
            for rname, values in ranked.items():
                picked[rname] += scores[best(values[i * k : (i + 1) * k])].correct
            if i < len(samples):
                samples[i][f"correct_of_{k}"] = c
        n = len(rows)
        return {"k": k, "pass@1": p1 / n, f"pass@{k}": pk / n, f"maj@{k}": maj / n,
                **{f"best_of_{k}/{rname}": hits / n for rname, hits in picked.items()},
                "self_consistency": agree / n, "sampling_s": round(seconds, 3)}

    def _refined(self, model: Any, tokenizer: Any, rows: list[dict], answers: list[str], scorer: Scorer,
                 samples: list[dict], name: str) -> dict[str, float]:
        """Accuracy after each critique-and-refine round of the greedy ``answers`` (greedy critiques and answers),
        and the shares turned wrong -> right and right -> wrong; each saved sample gets its critiques and answers."""
        def generate(prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
            return [text for text, _, _ in self.generate(model, tokenizer, prompts, desc=f"eval {name} (refine)",
                                                         max_new_tokens=max_new_tokens)]

        traces = refine(rows, answers, scorer, self.refine, generate, self.max_new_tokens)
        for sample, trace in zip(samples, traces):
            sample["refined"] = [{"critique": c, "answer": a, "status": s.status}
                                 for c, a, s in zip(trace.critiques, trace.answers[1:], trace.scores[1:])]
        up, down = turned(traces)
        return {**{f"refine_accuracy_{r}": a for r, a in enumerate(accuracy_by_round(traces)[1:], start=1)},
                "refine_wrong_to_right": up, "refine_right_to_wrong": down}


def _sharded(model: Any) -> bool:
    """Whether the weights are split across ranks (DeepSpeed ZeRO-3 or FSDP), so generation must run in step."""
    return any(hasattr(p, "ds_id") or type(p).__name__ == "DTensor" for p in model.parameters()) or any(
        "FullyShardedDataParallel" in type(m).__name__ for m in model.modules())


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = model.generation_config.eos_token_id
    configured = [configured] if isinstance(configured, int) else list(configured or [])
    return {i for i in (tokenizer.eos_token_id, *configured) if i is not None}


def _decode(tokenizer: Any, row: list[int], eos: set[int]) -> Generation:
    """Text up to the first EOS, its token count (EOS included) and whether it ran out of budget instead."""
    end = next((j for j, t in enumerate(row) if t in eos), None)
    if end is not None:
        return tokenizer.decode(row[: end + 1], skip_special_tokens=True), end + 1, False
    return tokenizer.decode(row, skip_special_tokens=True), len(row), True
