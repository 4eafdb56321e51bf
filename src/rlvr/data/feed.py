"""What each generation batch trains on, decided as training goes: rows at the curriculum's current levels, and
prompts whose groups kept coming out flat skipped.

A GRPO group teaches nothing when all its completions get the same reward. :class:`Feed` is handed each
generation batch's rows before the trainer generates (``rows``), and the verdicts afterwards (``observe``):

- with a :class:`~rlvr.data.curriculum.Curriculum`, each row becomes the row of its slot at its task's current
  level, and the verdicts move the levels;
- with ``flat_epochs = k`` (``data.difficulty_filter.flat_epochs``), a prompt whose last k groups were all flat
  (all correct: ``solved``; none correct: ``unsolved``; equal rewards otherwise: ``flat``) is skipped from then
  on: where it comes up, a prompt not skipped takes its place, drawn from the same level's pool (or the training
  rows), seeded by the run's seed, the step and the group. TRL's sampler hands each prompt out once per epoch, so
  k groups are k epochs. A prompt is known by its chat messages, so this works with any dataset.

Everything it decides from is in :meth:`Feed.state_dict`, which the training loop saves in every checkpoint; a
resumed run restores it and chooses the same rows.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import Any

from rlvr.data.curriculum import Curriculum

OUTCOMES = ("solved", "unsolved", "flat")  # why a group taught nothing: all correct, none correct, equal rewards


def prompt_key(row: dict[str, Any]) -> str:
    """A short stable name for a row's prompt (its chat messages)."""
    return hashlib.sha1(repr(row["prompt"]).encode()).hexdigest()[:16]


class Feed:
    """Chooses each generation batch's rows (see the module docstring); ``curriculum`` and ``flat_epochs`` (0:
    never skip) may each be off."""

    def __init__(self, curriculum: Curriculum | None = None, flat_epochs: int = 0):
        self.curriculum, self.flat_epochs = curriculum, flat_epochs
        self.history: dict[str, list[str]] = {}  # prompt -> outcomes of its last groups ("signal" or an OUTCOME)
        self.skipped: dict[str, dict[str, Any]] = {}  # prompt -> why, from which step, its question
        self.replaced: Counter[int] = Counter()  # step -> rows replaced
        self.unreplaced = 0  # skipped prompts that stayed: nothing else was left to draw

    def rows(self, step: int, rows: list[dict[str, Any]], group: int, source: Any, seed: int
             ) -> list[dict[str, Any]]:
        if self.curriculum is not None:
            self.curriculum.decide(step)
            rows = [self.curriculum.row(r) for r in rows]
        if self.skipped:
            rows = self._replace_skipped(step, rows, group, source, seed)
        return rows

    def _replace_skipped(self, step: int, rows: list[dict[str, Any]], group: int, source: Any, seed: int
                         ) -> list[dict[str, Any]]:
        out = list(rows)
        for g in range(0, len(rows), group):
            row = rows[g]
            if prompt_key(row) not in self.skipped:
                continue
            pool = self.curriculum.pool(row["task"]) if self.curriculum is not None else source
            order = list(range(len(pool)))
            random.Random(f"{seed}:{step}:{g}").shuffle(order)
            other = next((pool[i] for i in order if prompt_key(pool[i]) not in self.skipped), None)
            if other is None:
                self.unreplaced += 1
                continue
            if "slot" in row:  # the slot stays the sampler's; the row is the replacement's
                other = {**other, "slot": row["slot"]}
            out[g : g + group] = [dict(other) for _ in range(group)]
            self.replaced[step] += 1
        return out

    def observe(self, step: int, rows: list[dict[str, Any]], correct: list[bool], flat: list[bool],
                group: int) -> None:
        if self.curriculum is not None:
            self.curriculum.observe(step, rows, correct)
        if not self.flat_epochs:
            return
        for g, is_flat in enumerate(flat):
            row, right = rows[g * group], sum(correct[g * group : (g + 1) * group])
            outcome = "signal" if not is_flat else "solved" if right == group else "unsolved" if not right else "flat"
            key = prompt_key(row)
            recent = self.history.setdefault(key, [])
            recent.append(outcome)
            del recent[: -self.flat_epochs]
            if len(recent) == self.flat_epochs and "signal" not in recent and key not in self.skipped:
                why = recent[0] if len(set(recent)) == 1 else "flat"
                self.skipped[key] = {"why": why, "step": step, "task": row.get("task"),
                                     "question": row.get("question")}

    def metrics(self) -> dict[str, float]:
        out = self.curriculum.metrics() if self.curriculum is not None else {}
        if self.flat_epochs:
            reasons = Counter(s["why"] for s in self.skipped.values())
            out["flat_prompts/skipped"] = float(len(self.skipped))
            out.update({f"flat_prompts/skipped_{why}": float(reasons[why]) for why in OUTCOMES})
            out["flat_prompts/replaced"] = float(self.replaced[max(self.replaced, default=0)])
        return out

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"history": self.history, "skipped": self.skipped,
                                 "replaced": {str(k): v for k, v in self.replaced.items()},
                                 "unreplaced": self.unreplaced}
        if self.curriculum is not None:
            state["curriculum"] = self.curriculum.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.skipped = {k: dict(v) for k, v in state["skipped"].items()}
        self.replaced = Counter({int(k): v for k, v in state["replaced"].items()})
        self.unreplaced = state["unreplaced"]
        if self.curriculum is not None:
            self.curriculum.load_state_dict(state["curriculum"])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.curriculum is not None:
            out["curriculum"] = self.curriculum.summary()
        if self.flat_epochs:
            reasons = Counter(s["why"] for s in self.skipped.values())
            out["flat_prompts"] = {"flat_epochs": self.flat_epochs, "prompts_seen": len(self.history),
                                   "skipped": len(self.skipped), **{f"skipped_{w}": reasons[w] for w in OUTCOMES},
                                   "rows_replaced": sum(self.replaced.values()), "not_replaced": self.unreplaced,
                                   "skipped_prompts": sorted(self.skipped.values(), key=lambda s: s["step"])}
        return out
