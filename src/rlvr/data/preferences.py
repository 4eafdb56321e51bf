"""Preference data for ``dpo``, ``kto``, ``simpo`` and ``reward_model``, from either of two sources:

- **a dataset's own pairs**: rows whose ``chosen`` and ``rejected`` columns (or ``completion`` and ``label``, for
  KTO's unpaired form) the data component filled from the record fields it was told (``data.columns``, e.g.
  ``data=preferences_jsonl``): :func:`dataset_pairs`, :func:`dataset_labels`;
- **the policy's own samples** (the RLVR-native way): ``k`` completions sampled per training prompt with the
  current model, each scored by the run's verifier (:class:`~rlvr.scoring.Scorer`); the best against the worst
  completion of each prompt (by the verifier's value, then: an answer was found at all, :func:`rank`), and
  prompts whose samples all score alike are dropped (they say nothing about what is better): :func:`sample_pairs`.
  For KTO, every sample of a prompt with both correct and incorrect samples, desirable when it scores correct.

Every prompt and completion is conversational (chat messages), as TRL's preference trainers expect; the chat
template of the tokenizer applies when they tokenize. This module needs no training code, so evaluation (held-out
pairs) uses it too.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Literal

from rlvr import distributed
from rlvr.errors import ConfigError

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("chosen", "rejected")
LABEL_COLUMNS = ("completion", "label")
_TRUE, _FALSE = {"true", "1", "yes", "desirable", "good"}, {"false", "0", "no", "undesirable", "bad"}


def reply(text: str) -> list[dict[str, str]]:
    """``text`` as the assistant's turn of a conversation."""
    return [{"role": "assistant", "content": text}]


def dataset_pairs(rows: Any, setting: str) -> list[dict[str, Any]]:
    """``{prompt, chosen, rejected}`` from rows with ``chosen`` and ``rejected`` text columns; without them, a
    ConfigError naming ``setting``, the user's choice that asked for a dataset's pairs.

    >>> rows = [{"prompt": [{"role": "user", "content": "1+1?"}], "chosen": "2", "rejected": "3"}]
    >>> dataset_pairs(rows, "train.preferences=dataset")[0]["chosen"]
    [{'role': 'assistant', 'content': '2'}]
    """
    _need(rows, PAIR_COLUMNS, "chosen/rejected pairs", setting)
    return [{"prompt": r["prompt"], "chosen": reply(str(r["chosen"])), "rejected": reply(str(r["rejected"]))}
            for r in rows]


def dataset_labels(rows: Any, setting: str) -> list[dict[str, Any]]:
    """``{prompt, completion, label}`` (KTO's unpaired form) from rows with ``completion`` and ``label`` columns,
    or else from ``chosen``/``rejected`` pairs (chosen desirable, rejected undesirable).

    >>> [r["label"] for r in dataset_labels([{"prompt": [], "completion": "2", "label": "yes"}], "train.preferences")]
    [True]
    """
    columns = _columns(rows)
    if all(c in columns for c in LABEL_COLUMNS):
        return [{"prompt": r["prompt"], "completion": reply(str(r["completion"])), "label": _label(r["label"])}
                for r in rows]
    return unpair(dataset_pairs(rows, setting))


def unpair(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each pair as two labelled examples: chosen desirable, rejected undesirable."""
    return [{"prompt": p["prompt"], "completion": p[side], "label": side == "chosen"}
            for p in pairs for side in PAIR_COLUMNS]


@dataclass
class Samples:
    """What :func:`sample_pairs` built: pairs (best vs worst), labelled samples (for KTO) and counts."""

    pairs: list[dict[str, Any]]
    labelled: list[dict[str, Any]]
    stats: dict[str, float] = field(default_factory=dict)

    def rows(self, form: Literal["pairs", "labels"]) -> list[dict[str, Any]]:
        """The pairs or the labelled samples; a ConfigError says what to change when there are none."""
        rows = self.pairs if form == "pairs" else self.labelled
        if not rows:
            alike = "ranked alike" if form == "pairs" else "were all correct or all not"
            raise ConfigError(
                f"No preference data from the policy's samples: the {self.stats['samples_per_prompt']} samples of "
                f"each of the {self.stats['prompts']} prompts {alike} (sampled accuracy "
                f"{self.stats['sample_accuracy']:.0%}). Raise train.samples_per_prompt or train.sample_temperature, "
                "or change the task's difficulty (data.params).")
        return rows


def sample_pairs(model: Any, tokenizer: Any, rows: Any, scorer: Any, *, k: int, max_new_tokens: int,
                 temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 32, seed: int = 0) -> Samples:
    """Sample ``k`` completions per row's prompt with ``model`` and score each with ``scorer``. Pairs: per
    prompt whose samples do not all :func:`rank` alike, the best and the worst (ties: the first sampled).
    Labelled samples (KTO): every sample of a prompt whose samples are neither all correct nor all not, desirable
    when correct. The global RNG is left as it was, so training after this is seeded as without it."""
    rows = list(rows)
    texts = sample(model, tokenizer, [r["prompt"] for r in rows], k=k, max_new_tokens=max_new_tokens,
                   temperature=temperature, top_p=top_p, batch_size=batch_size, seed=seed)
    pairs, labelled, correct, flat = [], [], 0, 0
    for i, row in enumerate(rows):
        completions = texts[i * k : (i + 1) * k]
        scores = [scorer(text, row) for text in completions]
        right = sum(s.correct for s in scores)
        correct += right
        if 0 < right < k:
            labelled += [{"prompt": row["prompt"], "completion": reply(t), "label": s.correct}
                         for t, s in zip(completions, scores)]
        values = [rank(s) for s in scores]
        if max(values) == min(values):
            flat += 1
            continue
        best, worst = values.index(max(values)), values.index(min(values))
        pairs.append({"prompt": row["prompt"], "chosen": reply(completions[best]),
                      "rejected": reply(completions[worst])})
    stats = {"prompts": len(rows), "samples_per_prompt": k, "sample_accuracy": correct / max(1, len(rows) * k),
             "pairs": len(pairs), "prompts_dropped_all_alike": flat, "labelled": len(labelled)}
    log.info("[rlvr] preference data from %d samples of %d prompts (sampled accuracy %.0f%%): %d pairs, %d prompts "
             "dropped as their samples all ranked alike; %d labelled samples.", len(rows) * k, len(rows),
             100 * stats["sample_accuracy"], len(pairs), flat, len(labelled))
    return Samples(pairs, labelled, stats)


def rank(score: Any) -> tuple[float, bool]:
    """How good a scored completion is: the verifier's value, then whether an answer could be read at all (a
    wrong answer in the asked format beats none: the format is half of what the policy must learn)."""
    return score.value, score.status != "unparseable"


def sample(model: Any, tokenizer: Any, prompts: list[list[dict]], *, k: int, max_new_tokens: int,
           temperature: float, top_p: float, batch_size: int, seed: int, prefixes: list[str] | None = None,
           progress: bool = True) -> list[str]:
    """``k`` sampled completions per chat prompt (consecutive, in prompt order), decoded up to EOS; with
    ``prefixes``, each continues the reply its prefix begins (the completion returned is what follows it). A
    progress bar (on stderr, unless ``progress`` is false) counts the prompts: sampling comes before a preference
    loop's first step and may take minutes."""
    import torch
    from tqdm.auto import tqdm

    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # batched generation needs the prompts right-aligned
    device = next(model.parameters()).device
    texts = tokenizer.apply_chat_template(prompts, add_generation_prompt=True, tokenize=False)
    if prefixes is not None:
        texts = [text + prefix for text, prefix in zip(texts, prefixes, strict=True)]
    per_batch = max(1, batch_size // k)
    out: list[str] = []
    bar = tqdm(total=len(texts), desc=f"sampling {k} completions per prompt", unit="prompt", file=sys.stderr,
               leave=None, dynamic_ncols=True, disable=distributed.rank() > 0 or not progress)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
            torch.manual_seed(seed)
            for start in range(0, len(texts), per_batch):
                enc = tokenizer(texts[start : start + per_batch], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(device)
                gen = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
                                     num_return_sequences=k, max_new_tokens=max_new_tokens,
                                     pad_token_id=tokenizer.pad_token_id, use_cache=True)
                out += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                bar.update(len(enc["input_ids"]))
    finally:
        bar.close()
        model.train(was_training)
        tokenizer.padding_side = side
    return out


def _columns(rows: Any) -> list[str]:
    names = getattr(rows, "column_names", None)
    return list(names) if names is not None else (list(rows[0]) if len(rows) else [])


def _need(rows: Any, columns: tuple[str, ...], what: str, setting: str) -> None:
    have = _columns(rows)
    missing = [c for c in columns if c not in have]
    if missing:
        key, _, value = setting.partition("=")
        raise ConfigError(
            f"{setting} needs {what}: the rows have no {', '.join(missing)} column (they have {', '.join(have)}). "
            f"Name the record fields with data.columns (data=preferences_jsonl), or build pairs from the policy's "
            f"samples: {key}=samples.")


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigError(f"A KTO label must be true/false (or 1/0, yes/no), got {value!r}: check the label field "
                      "in data.columns.")
