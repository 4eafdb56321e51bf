"""``data.difficulty_filter``: train only on prompts the model can still learn from, for any dataset.

Two filters, each off by default:

- **Before training** (``samples > 0``): the base model answers every training prompt ``samples`` times
  (sampled, at ``temperature``), the run's :class:`~rlvr.scoring.Scorer` judges each answer, and a prompt is kept
  only when ``min_correct`` to ``max_correct`` of its samples are correct (the defaults, 1 to ``samples - 1``, drop
  exactly the prompts it never or always solves: their GRPO groups would all be flat). The pass rates go to
  ``pass_rates.jsonl`` in the run directory as they are measured, a chunk of prompts at a time, each chunk seeded
  by the run's seed and its position; a run killed during the pass continues from the last complete chunk and
  ends with the same pass rates. Kept and dropped counts (and why) are in ``results.json`` under
  ``pass_rate_filter`` and on the console.
- **During training** (``flat_epochs > 0``, GRPO and RLOO): a prompt whose last ``flat_epochs`` groups were all
  flat is skipped from then on (:class:`rlvr.data.feed.Feed`); counted per step as ``flat_prompts/*``.

This module loads nothing itself: the pipeline calls :meth:`DifficultyFilter.apply` after the model loads.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr.data.curriculum import Curriculum
from rlvr.data.feed import Feed
from rlvr.data.preferences import sample
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Count, DataSplits, Positive

log = logging.getLogger(__name__)


@dataclass
class DifficultyFilter:
    """``data.difficulty_filter`` (every data source has one).

    Attributes:
        samples: completions sampled per training prompt with the base model before training (0: no filter).
        min_correct, max_correct: a prompt is kept when min_correct to max_correct of its samples are correct
            (null: ``samples - 1``); the defaults drop the prompts the base model never or always solves.
        temperature: sampling temperature of that pass (1: the policy's own distribution, as GRPO samples it).
        max_new_tokens: tokens per sampled completion; keep it equal to ``train.max_completion_length``.
        batch_size: completions generated together; a chunk of ``batch_size // samples`` prompts is also the unit
            a killed pass resumes from.
        flat_epochs: during training (GRPO, RLOO), skip a prompt once its last ``flat_epochs`` groups (one per
            epoch) were all flat (0: never).
    """

    samples: Count = 0
    min_correct: Count = 1
    max_correct: Count | None = None
    temperature: Positive = 1.0
    max_new_tokens: AtLeastOne = 40
    batch_size: AtLeastOne = 64
    flat_epochs: Count = 0

    def __post_init__(self) -> None:
        if self.samples and not self.min_correct <= self.band[1] <= self.samples:
            raise ConfigError(f"data.difficulty_filter: 0 <= min_correct ({self.min_correct}) <= max_correct "
                              f"({self.band[1]}) <= samples ({self.samples}) does not hold, so every prompt is "
                              "dropped; change them.")

    @property
    def band(self) -> tuple[int, int]:
        """The correct samples a kept prompt has, at least and at most."""
        return self.min_correct, self.samples - 1 if self.max_correct is None else self.max_correct

    def attach(self, splits: DataSplits, curriculum: Curriculum | None = None) -> DataSplits:
        """``splits`` with what trains on them as training goes (a :class:`Feed` when there is a curriculum or
        ``flat_epochs``) and this filter when it samples before training."""
        if curriculum is not None or self.flat_epochs:
            splits.feed = Feed(curriculum, self.flat_epochs)
        if self.samples:
            splits.pass_rate_filter = self
        return splits

    def apply(self, model: Any, tokenizer: Any, rows: Any, scorer: Any, path: Path, seed: int,
              write: bool = True) -> tuple[Any, dict[str, Any]]:
        """The training rows (a ``datasets.Dataset``) the base ``model`` neither never nor always solves, and what
        was kept and dropped. Pass rates already in ``path`` (a killed pass) are read back, not measured again."""
        records = rows.to_list()
        done = self._read(path, records)
        per_chunk = max(1, self.batch_size // self.samples)
        starts = [s for s in range(0, len(records), per_chunk)
                  if any(i not in done for i in range(s, min(len(records), s + per_chunk)))]
        if starts:
            log.info("[rlvr] difficulty filter: sampling %d completions for each of %d training prompts%s",
                     self.samples, len(records), f" ({len(done)} measured before)" if done else "")
        for start in starts:
            chunk = records[start : start + per_chunk]
            texts = sample(model, tokenizer, [r["prompt"] for r in chunk], k=self.samples,
                           max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=1.0,
                           batch_size=self.batch_size, seed=zlib.crc32(f"{seed}/{start}".encode()))
            for j, row in enumerate(chunk):
                right = sum(scorer(t, row).correct for t in texts[j * self.samples : (j + 1) * self.samples])
                done[start + j] = {"index": start + j, "question": row.get("question"), "task": row.get("task"),
                                   "correct": right, "samples": self.samples, "pass_rate": right / self.samples}
            if write:  # a chunk at a time, on disk before the next one starts
                with open(path, "a") as out:
                    out.write("".join(json.dumps(done[start + j]) + "\n" for j in range(len(chunk))))
                    out.flush()
                    os.fsync(out.fileno())
        verdicts = [self.verdict(done[i]["correct"]) for i in range(len(records))]
        kept = [i for i, v in enumerate(verdicts) if v == "kept"]
        stats = {"prompts": len(records), "samples_per_prompt": self.samples, "kept": len(kept),
                 "dropped_too_hard": verdicts.count("too_hard"), "dropped_too_easy": verdicts.count("too_easy"),
                 "kept_correct": list(self.band),
                 "mean_pass_rate": round(sum(d["pass_rate"] for d in done.values()) / max(1, len(done)), 4),
                 "pass_rates": str(path)}
        log.info("[rlvr] difficulty filter: kept %d of %d training prompts (%d to %d of %d samples correct); dropped "
                 "%d too hard, %d too easy; pass rates in %s", len(kept), len(records), *self.band, self.samples,
                 stats["dropped_too_hard"], stats["dropped_too_easy"], path)
        if not kept:
            raise ConfigError(f"data.difficulty_filter dropped every training prompt (mean pass rate "
                              f"{stats['mean_pass_rate']:.0%}): widen min_correct/max_correct or pick data of another "
                              "difficulty.")
        return rows.select(kept), stats

    def verdict(self, correct: int) -> str:
        """``kept``, ``too_hard`` (fewer than min_correct correct samples) or ``too_easy`` (more than max_correct)."""
        low, high = self.band
        return "too_hard" if correct < low else "too_easy" if correct > high else "kept"

    def _read(self, path: Path, records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Pass rates a killed pass left in ``path`` (a torn last line ignored), checked against ``records``."""
        done: dict[int, dict[str, Any]] = {}
        if not path.is_file():
            return done
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            i = record["index"]
            if i >= len(records) or record["question"] != records[i].get("question") \
                    or record["samples"] != self.samples:
                raise ConfigError(f"{path} holds pass rates of other training prompts or settings (line "
                                  f"{i}); remove it to measure them again.")
            done[i] = record
        return done
