"""The reward suite: builds the configured reward functions and adapts them to TRL's GRPOTrainer.

Each function becomes one TRL reward function (so TRL logs ``rewards/<name>/mean`` and applies the weight).
The suite scores each batch once (shared extraction + verifier), logs parse/wrong/unparseable rates and
reward failures per step, and isolates failures: a function that raises or exceeds ``timeout_s`` is retried
sample by sample and the failing samples are masked (``None``) or scored 0, as ``on_error`` says.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
from collections import Counter
from typing import Any, Callable, Literal

from omegaconf import DictConfig, OmegaConf

from rlvr.config.schema import ConfigError, check_node
from rlvr.interfaces import Score
from rlvr.rewards.scoring import Scorer

log = logging.getLogger(__name__)
_RESERVED = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}


class RewardSuite:
    """Weighted reward functions from config.

    Args:
        functions: ``{name: {_target_: ..., weight: float, <params>}}``; the name is what gets logged.
        timeout_s: seconds one call of a reward function may take before its samples are treated as failed.
        on_error: ``mask`` drops a failed sample from that reward (TRL's ``None``); ``zero`` scores it 0.
    """

    validates_children = ("functions",)  # built and checked here, with `weight` taken out

    def __init__(
        self,
        functions: dict[str, Any] = {},  # noqa: B006
        timeout_s: float = 10.0,
        on_error: Literal["mask", "zero"] = "mask",
    ):
        if not functions:
            raise ConfigError("reward.functions is empty: configure at least one reward function.")
        self.timeout_s, self.on_error = timeout_s, on_error
        self.weights: dict[str, float] = {}
        self.functions: dict[str, Callable[..., list[float | None]]] = {}
        from hydra.utils import instantiate

        for name, node in functions.items():
            node = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
            if "_target_" not in node:
                raise ConfigError(f"reward.functions.{name} needs a _target_ (a reward class or function).")
            self.weights[name] = float(node.pop("weight", 1.0))
            check_node(OmegaConf.create(node), f"reward.functions.{name}")
            self.functions[name] = instantiate(node)
        self.failures: Counter[str] = Counter()
        self._pool = cf.ThreadPoolExecutor(max_workers=4, thread_name_prefix="reward")
        self._cache: tuple[Any, list[Score]] | None = None

    def scores(self, batch: list[Any], texts: list[str], columns: dict[str, Any], scorer: Scorer) -> list[Score]:
        """Scores for this batch, computed once and shared by every function (and by the stats).

        TRL hands every reward function the same ``completions`` list object in a step, so its identity keys
        the cache (the cache holds a reference, so the identity cannot be reused while cached).
        """
        if self._cache is None or self._cache[0] is not batch:
            self._cache = (batch, scorer.score_batch(texts, columns))
        return self._cache[1]

    def trl_functions(self, scorer: Scorer) -> tuple[list[Callable], list[float]]:
        """One TRL-compatible reward function per configured function, and their weights."""
        funcs = []
        for i, (name, fn) in enumerate(self.functions.items()):
            funcs.append(self._adapt(name, fn, scorer, log_stats=i == 0))
        return funcs, list(self.weights.values())

    def _adapt(self, name: str, fn: Callable, scorer: Scorer, log_stats: bool) -> Callable:
        suite = self

        def reward(prompts, completions, completion_ids=None, **kwargs):  # TRL calls with keywords
            texts = [_text(c) for c in completions]
            log_metric = kwargs.get("log_metric")
            columns = {k: v for k, v in kwargs.items() if k not in _RESERVED}
            scores = suite.scores(completions, texts, columns, scorer)
            if log_stats and log_metric is not None:
                for key, value in score_stats(scores).items():
                    log_metric(key, value)
            values = suite.call(name, fn, texts, scores, scorer, columns)
            if log_metric is not None:
                log_metric(f"reward_failures/{name}", float(sum(v == "failed" for v in values)))
            return [None if v == "failed" and suite.on_error == "mask" else (0.0 if v == "failed" else v) for v in values]

        functools.update_wrapper(reward, fn if hasattr(fn, "__name__") else reward)
        reward.__name__ = name
        return reward

    def call(self, name, fn, texts, scores, scorer, columns) -> list[Any]:
        """Run ``fn`` on the batch; on error or timeout, sample by sample. Failed samples read ``"failed"``."""
        kwargs = dict(columns, scores=scores, answer_format=scorer.fmt)
        try:
            return self._checked(name, fn, texts, kwargs, len(texts))
        except Exception as e:  # noqa: BLE001 - any reward bug must not stop training
            log.warning("reward '%s' failed on a batch (%s: %s); retrying sample by sample", name, type(e).__name__, e)
        out: list[Any] = []
        for i, text in enumerate(texts):
            one = {k: (v[i : i + 1] if isinstance(v, list) else v) for k, v in kwargs.items()}
            try:
                out.extend(self._checked(name, fn, [text], one, 1))
            except Exception as e:  # noqa: BLE001
                self.failures[name] += 1
                log.warning("reward '%s' failed on a sample (%s: %s): %s", name, type(e).__name__, e, self.on_error)
                out.append("failed")
        return out

    def _checked(self, name, fn, texts, kwargs, n) -> list[float | None]:
        future = self._pool.submit(fn, texts, **kwargs)
        try:
            values = future.result(timeout=self.timeout_s)
        except cf.TimeoutError:
            raise TimeoutError(f"took longer than reward.timeout_s={self.timeout_s}") from None
        if len(values) != n:
            raise ValueError(f"returned {len(values)} values for {n} completions")
        return [None if v is None else float(v) for v in values]


def score_stats(scores: list[Score]) -> dict[str, float]:
    """Per-batch rates: correct, wrong, unparseable (the prompt/extractor disagreement signal), bad gold."""
    n = max(len(scores), 1)
    counts = Counter(s.status for s in scores)
    return {
        "score/accuracy": counts["correct"] / n,
        "score/parse_rate": 1 - counts["unparseable"] / n,
        "score/wrong_rate": counts["wrong"] / n,
        "score/unparseable_rate": counts["unparseable"] / n,
        "score/bad_gold_rate": counts["bad_gold"] / n,
    }


def _text(completion: Any) -> str:
    """TRL passes conversational completions as ``[{"role": "assistant", "content": ...}]``."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
