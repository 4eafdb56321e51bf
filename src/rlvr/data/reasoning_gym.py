"""reasoning-gym tasks as a data component: procedurally generated, scored by the task's own verifier.

The held-out set is generated first and every training row whose question appears in it is dropped, so the
two never overlap even for tasks with a small question space (two one-digit terms have ~200 questions).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rlvr.data.prompts import PromptTemplate
from rlvr.errors import ConfigError
from rlvr.interfaces import DataSplits
from rlvr.scoring.verifiers import ReasoningGymVerifier


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
        self.task, self.params, self.mixture = task, _plain(params), _plain(mixture)
        self.train_size, self.test_size = train_size, test_size
        self.train_seed, self.test_seed = train_seed, test_seed
        self._check_tasks()

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

        stats: dict[str, Any] = {"train_rows": len(train), "test_rows": len(test),
                                 "train_dropped_overlap": len(train_all) - len(train)}
        if self.mixture:  # how the weights came out: rows per task in each split
            for split, rows in (("train", train), ("test", test)):
                counts = Counter(e.get("metadata", {}).get("source_dataset", self.task) for e in rows)
                stats.update({f"{split}_rows/{t}": c for t, c in sorted(counts.items())})
        return DataSplits(Dataset.from_list([row(e) for e in train]), Dataset.from_list([row(e) for e in test]), stats)


def _plain(value: Any) -> dict[str, Any]:
    """A plain dict, whether built by Hydra (DictConfig without _convert_) or in code."""
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else dict(value)
