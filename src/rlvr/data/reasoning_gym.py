"""reasoning-gym tasks as a data component: procedurally generated, scored by the task's own verifier.

The held-out set is generated first and every training row whose question appears in it is dropped, so the
two never overlap even for tasks with a small question space (two one-digit terms have ~200 questions).
"""

from __future__ import annotations

import json
from typing import Any

from rlvr.config.schema import ConfigError
from rlvr.data.prompts import PromptTemplate
from rlvr.interfaces import DataSplits


class ReasoningGymVerifier:
    """reasoning-gym's ``score_answer`` for the row's source task (the entry travels as JSON in ``entry``)."""

    def __call__(self, answer: str, row: dict[str, Any]) -> float:
        import reasoning_gym

        entry = json.loads(row["entry"])
        source = entry.get("metadata", {}).get("source_dataset") or row["task"]
        return float(reasoning_gym.get_score_answer_fn(source)(answer, entry))


class ReasoningGymData:
    """Training and held-out sets from one reasoning-gym task or a weighted mixture.

    Args:
        task: reasoning-gym dataset name (``chain_sum``, ``basic_arithmetic``, ``leg_counting``, ...).
        params: the task's generator parameters (e.g. ``{min_terms: 2, max_digits: 1}``).
        mixture: optional ``{task_name: {weight: w, params: {...}}}``; when set, ``task``/``params`` are
            ignored and rows are drawn from reasoning-gym's composite dataset, each scored by its own task.
        train_size: training rows generated (before removing overlaps with the held-out set).
        test_size: held-out rows.
        train_seed, test_seed: generator seeds; they must differ.
    """

    def __init__(
        self,
        task: str = "chain_sum",
        params: dict[str, Any] = {},  # noqa: B006 - read-only, copied into the schema
        mixture: dict[str, Any] = {},  # noqa: B006
        train_size: int = 1000,
        test_size: int = 96,
        train_seed: int = 1,
        test_seed: int = 2,
    ):
        if train_seed == test_seed:
            raise ConfigError("data.train_seed and data.test_seed must differ, or the held-out set is the training set.")
        if train_size < 1 or test_size < 1:
            raise ConfigError("data.train_size and data.test_size must be at least 1.")
        self.task, self.params, self.mixture = task, dict(params), dict(mixture)
        self.train_size, self.test_size = train_size, test_size
        self.train_seed, self.test_seed = train_seed, test_seed
        self._check_tasks()

    def _check_tasks(self) -> None:
        from reasoning_gym.factory import DATASETS

        for name in self.mixture or [self.task]:
            if name not in DATASETS:
                close = [n for n in DATASETS if name in n or n in name][:5]
                raise ConfigError(
                    f"Unknown reasoning-gym task '{name}' (data.task / data.mixture)."
                    + (f" Close names: {', '.join(close)}." if close else "")
                    + f" {len(DATASETS)} tasks exist; see reasoning_gym.factory.DATASETS."
                )

    @property
    def verifier(self) -> ReasoningGymVerifier:
        return ReasoningGymVerifier()

    def _generate(self, size: int, seed: int) -> list[dict[str, Any]]:
        import reasoning_gym

        if self.mixture:
            specs = [
                {"name": name, "weight": float(spec.get("weight", 1.0)), "config": dict(spec.get("params", {}))}
                for name, spec in self.mixture.items()
            ]
            ds = reasoning_gym.create_dataset("composite", size=size, seed=seed, datasets=specs)
        else:
            try:
                ds = reasoning_gym.create_dataset(self.task, size=size, seed=seed, **self.params)
            except TypeError as e:  # an unknown generator parameter
                raise ConfigError(f"data.params do not fit reasoning-gym task '{self.task}': {e}") from None
        return [ds[i] for i in range(size)]

    def load(self, prompt: PromptTemplate) -> DataSplits:
        """Build both splits; ``prompt`` turns each question into chat messages."""
        from datasets import Dataset

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
            task = e.get("metadata", {}).get("source_dataset", self.task)
            return {
                "prompt": prompt.messages(e["question"]),
                "question": e["question"],
                "answer": str(e["answer"]),
                "task": task,
                "entry": json.dumps(e, default=str),
            }

        stats = {"train_rows": len(train), "test_rows": len(test), "train_dropped_overlap": len(train_all) - len(train)}
        return DataSplits(Dataset.from_list([row(e) for e in train]), Dataset.from_list([row(e) for e in test]), stats)
