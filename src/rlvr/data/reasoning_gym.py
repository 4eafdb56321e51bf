"""reasoning-gym tasks as a data component: procedurally generated, scored by the task's own verifier.

The held-out set is generated first and every training row whose question appears in it is dropped, so the
two never overlap even for tasks with a small question space (two one-digit terms have ~200 questions).
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import random
from collections import Counter
from typing import Any

from rlvr.data.curriculum import Curriculum, CurriculumSettings, plan
from rlvr.data.difficulty import DifficultyFilter
from rlvr.data.prompts import PromptTemplate
from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, DataSplits
from rlvr.schema import checked
from rlvr.scoring.verifiers import ReasoningGymVerifier

log = logging.getLogger(__name__)


@checked("data")
class ReasoningGymData:
    """Training and held-out sets from one reasoning-gym task or a weighted mixture.

    Args:
        task: reasoning-gym dataset name (``chain_sum``, ``basic_arithmetic``, ``leg_counting``, ...); required
            unless ``mixture`` is set.
        params: generator parameters per task, ``{task_name: {min_terms: 2, ...}}``; those of ``task`` are
            used, so ``data.task=letter_counting`` switches to that task with its own defaults while the
            parameters configured for other tasks stay with them. Checked against the task's config class.
        mixture: optional ``{task_name: {weight: w, params: {...}}}``; when set, ``task``/``params`` are
            ignored and rows are drawn from reasoning-gym's composite dataset, each scored by its own task.
        train_size: training rows generated (before removing overlaps with the held-out set).
        test_size: held-out rows.
        train_seed, test_seed: generator seeds; they must differ.
        curriculum: difficulty levels from reasoning-gym's own curricula, moved by the model's training accuracy,
            per task (:class:`rlvr.data.curriculum.CurriculumSettings`); off until ``attributes`` names one.
            ``train_size`` is then the training rows per level, and held-out sets are generated per level.
        difficulty_filter: drop prompts the base model always or never solves before training, skip prompts whose
            groups keep coming out flat during it (:class:`rlvr.data.difficulty.DifficultyFilter`).
    """

    def __init__(
        self,
        task: str | None = None,
        params: dict[str, dict[str, Any]] = {},  # noqa: B006 - never mutated
        mixture: dict[str, Any] = {},  # noqa: B006
        train_size: AtLeastOne = 1000,
        test_size: AtLeastOne = 96,
        train_seed: int = 1,
        test_seed: int = 2,
        curriculum: CurriculumSettings = CurriculumSettings(),  # noqa: B008 - copied into the schema
        difficulty_filter: DifficultyFilter = DifficultyFilter(),  # noqa: B008
    ):
        if not task and not mixture:
            raise ConfigError("Set data.task (a reasoning-gym task such as chain_sum) or data.mixture.")
        if train_seed == test_seed:
            raise ConfigError("data.train_seed and data.test_seed must differ, or the held-out set is the training "
                              "set.")
        self.task, self.mixture = task, dict(mixture)
        self.params = dict(params.get(task) or {})
        self.train_size, self.test_size = train_size, test_size
        self.train_seed, self.test_seed = train_seed, test_seed
        self.curriculum = curriculum if isinstance(curriculum, CurriculumSettings) else CurriculumSettings(**curriculum)
        self.difficulty_filter = (difficulty_filter if isinstance(difficulty_filter, DifficultyFilter)
                                  else DifficultyFilter(**difficulty_filter))
        self._check_tasks()
        if self.curriculum.enabled:
            if self.difficulty_filter.samples:
                raise ConfigError("data.difficulty_filter.samples measures pass rates on fixed training rows, and "
                                  "data.curriculum generates new ones as levels move: use one of them "
                                  "(data.difficulty_filter.flat_epochs works with a curriculum).")
            plan(self.curriculum, self._base_params(), check_task_params)  # every task, attribute and level

    def _base_params(self) -> dict[str, dict[str, Any]]:
        """Each task's generator parameters as configured."""
        if self.mixture:
            return {name: dict(spec.get("params") or {}) for name, spec in self.mixture.items()}
        return {self.task: self.params}

    def _check_tasks(self) -> None:
        from reasoning_gym.factory import DATASETS

        for name, spec in self.mixture.items():
            if not isinstance(spec, dict) or set(spec) - {"weight", "params"}:
                raise ConfigError(f"data.mixture.{name} must be {{weight: <number>, params: {{...}}}}, got {spec!r}.")
            weight = spec.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
                raise ConfigError(f"data.mixture.{name}.weight must be a positive number, got {weight!r}.")
        for name in self.mixture or [self.task]:
            if name not in DATASETS:
                close = [n for n in DATASETS if name in n or n in name][:5]
                raise ConfigError(
                    f"Unknown reasoning-gym task '{name}' (data.task / data.mixture)."
                    + (f" Close names: {', '.join(close)}." if close else "")
                    + f" {len(DATASETS)} tasks exist; see reasoning_gym.factory.DATASETS."
                )
        checks = [(name, dict(spec.get("params") or {}), f"data.mixture.{name}.params")
                  for name, spec in self.mixture.items()] or [(self.task, self.params, f"data.params.{self.task}")]
        for name, params, where in checks:
            check_task_params(name, params, where)

    @property
    def verifier(self) -> ReasoningGymVerifier:
        return ReasoningGymVerifier()

    def _generate(self, size: int, seed: int) -> list[dict[str, Any]]:
        import reasoning_gym

        if self.mixture:
            from reasoning_gym.composite import DatasetSpec

            specs = [DatasetSpec(name, float(spec.get("weight", 1.0)), dict(spec.get("params") or {}))
                     for name, spec in self.mixture.items()]
            try:
                ds = reasoning_gym.create_dataset("composite", size=size, seed=seed, datasets=specs)
            except TypeError as e:  # an unknown generator parameter of one task
                raise ConfigError(f"data.mixture: a task's params do not fit it: {e}") from None
        else:
            try:
                ds = reasoning_gym.create_dataset(self.task, size=size, seed=seed, **self.params)
            except TypeError as e:  # an unknown generator parameter
                raise ConfigError(f"data.params do not fit reasoning-gym task '{self.task}': {e}") from None
        return [ds[i] for i in range(size)]

    def load(self, prompt: PromptTemplate) -> DataSplits:
        """Build both splits; ``prompt`` turns each question into chat messages."""
        from datasets import Dataset

        if self.curriculum.enabled:
            return self._load_levels(prompt)
        test = self._generate(self.test_size, self.test_seed)
        held_out = {e["question"] for e in test}
        train_all = self._generate(self.train_size, self.train_seed)
        train = [e for e in train_all if e["question"] not in held_out]
        if not train:
            raise ConfigError(
                f"Every generated training question of '{self.task}' is also in the held-out set; "
                "raise the task's difficulty (data.params) or lower data.test_size."
            )

        def row(e: dict[str, Any]) -> dict[str, Any]:
            return _row(prompt, e, e.get("metadata", {}).get("source_dataset", self.task))

        test_rows, test_refused = self._checked([row(e) for e in test])
        train_rows, train_refused = self._checked([row(e) for e in train])
        stats: dict[str, Any] = {"train_rows": len(train_rows), "test_rows": len(test_rows),
                                 "train_dropped_overlap": len(train_all) - len(train),
                                 "train_skipped": sum(train_refused.values()),
                                 "test_skipped": sum(test_refused.values())}
        stats.update({f"skipped/{reason}": n for reason, n in (train_refused + test_refused).most_common()})
        if self.mixture:  # how the weights came out: rows per task in each split
            for split, rows in (("train", train), ("test", test)):
                counts = Counter(e.get("metadata", {}).get("source_dataset", self.task) for e in rows)
                stats.update({f"{split}_rows/{t}": c for t, c in sorted(counts.items())})
        return self.difficulty_filter.attach(DataSplits(Dataset.from_list(train_rows), Dataset.from_list(test_rows),
                                                        stats))

    def _load_levels(self, prompt: PromptTemplate) -> DataSplits:
        """The splits of a curriculum (:mod:`rlvr.data.curriculum`): held-out rows per task and level, training
        slots at the start levels, and the curriculum that refills them as levels move."""
        from datasets import Dataset

        curriculum = Curriculum(self.curriculum, plan(self.curriculum, self._base_params(), check_task_params),
                                functools.partial(self._task_rows, prompt))
        test = curriculum.held_out_rows(self.curriculum.eval_size or self.test_size, self.test_seed)
        if self.mixture:  # each slot's task drawn by the mixture's weights
            names = list(self.mixture)
            weights = [float(self.mixture[n].get("weight", 1.0)) for n in names]
            tasks = random.Random(self.train_seed).choices(names, weights=weights, k=self.train_size)
        else:
            tasks = [self.task] * self.train_size
        train = curriculum.training_rows(tasks, self.train_seed)
        stats: dict[str, Any] = {"train_rows": len(train), "test_rows": len(test)}
        stats.update({f"test_rows/{level}": n for level, n in sorted(Counter(r["level"] for r in test).items())})
        stats.update({f"train_rows/{task}": n for task, n in sorted(curriculum.slots.items()) if self.mixture})
        return self.difficulty_filter.attach(DataSplits(Dataset.from_list(train), Dataset.from_list(test), stats),
                                             curriculum)

    def _task_rows(self, prompt: PromptTemplate, task: str, params: dict[str, Any], size: int, seed: int,
                   level: str) -> list[dict[str, Any]]:
        """``size`` rows of ``task`` generated with ``params`` and ``seed``, marked ``level``; gold checked."""
        import reasoning_gym

        ds = reasoning_gym.create_dataset(task, size=size, seed=seed, **params)
        return self._checked([{**_row(prompt, ds[i], task), "level": level} for i in range(size)])[0]

    def _checked(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Counter]:
        """The rows whose gold the task's own scorer gives full marks; the others are refused and counted (a
        task whose scorer does not accept its own answer would teach nothing, or the wrong thing)."""
        verifier, kept, refused = self.verifier, [], Counter()
        for r in rows:
            try:
                verifier.check_row(r)
                kept.append(r)
            except ValueError:
                refused[f"{r['task']}: the task's scorer rejects its own gold"] += 1
        if refused:
            log.warning("data: refused %d of %d rows (%s)", sum(refused.values()), len(rows),
                        "; ".join(f"{k}: {v}" for k, v in refused.most_common()))
        if not kept:
            raise ConfigError(f"Every generated row of {self.task or ', '.join(self.mixture)} has a gold answer its "
                              "own scorer rejects; pick another task.")
        return kept, refused


def _row(prompt: PromptTemplate, entry: dict[str, Any], task: str) -> dict[str, Any]:
    """A reasoning-gym entry as a row: chat messages, question, gold, task and the entry (for its scorer)."""
    return {"prompt": prompt.messages(entry["question"]), "question": entry["question"],
            "answer": str(entry["answer"]), "task": task, "entry": json.dumps(entry, default=str)}


def check_task_params(task: str, params: dict[str, Any], where: str) -> None:
    """Build the task's reasoning-gym config now, so an unknown or invalid parameter fails before anything
    loads, naming the key (reasoning-gym checks ranges with ``assert`` in ``validate()``)."""
    import dataclasses

    from reasoning_gym.factory import DATASETS

    config_cls = DATASETS[task][1]
    fields = [f.name for f in dataclasses.fields(config_cls)] if dataclasses.is_dataclass(config_cls) else []
    unknown = [k for k in params if fields and k not in fields]
    if unknown:
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        raise ConfigError(f"Unknown key '{where}.{unknown[0]}' for reasoning-gym task '{task}'."
                          + (f" Did you mean '{close[0]}'?" if close else "")
                          + f" Valid keys: {', '.join(f for f in fields if f not in ('seed', 'size'))}.")
    try:
        config = config_cls(**params)
        if hasattr(config, "validate"):
            config.validate()
    except (AssertionError, ValueError, TypeError) as e:
        raise ConfigError(f"{where}: reasoning-gym rejects {params}: {e or type(e).__name__}.") from None
