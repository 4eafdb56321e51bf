"""The reward suite: builds the configured reward functions and adapts them to TRL's GRPOTrainer.

Each function becomes one TRL reward function (so TRL logs ``rewards/<name>/mean`` and applies the weight).
The suite scores each batch once (shared extraction + verifier), logs parse/wrong/unparseable rates and
reward failures per step, and isolates failures: a function that raises, returns garbage or exceeds
``timeout_s`` is retried sample by sample (concurrently, under one more ``timeout_s``) and the failing samples
are masked (``None``) or scored 0, as ``on_error`` says; each failure is logged and counted.

Any callable works by ``_target_``: ours (``reward(completions, *, scores, answer_format, **columns)``) and a
plain TRL-style function ``f(completions, **kwargs)``. Every one gets the completion *texts*, the shared
``scores``, ``answer_format``, the dataset columns, ``prompts`` and ``completion_ids``; a function without
``**kwargs`` gets only the arguments it names. A function target is ``_partial_: true`` (bound with its
parameters, called per batch). A function written for TRL's conversational format (``completion[0]["content"]``,
like ``trl.rewards.think_format_reward``) is listed in ``reward.conversational`` and gets the completions as TRL
has them.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
import time
from collections import Counter
from typing import Any, Callable, Literal

from rlvr.errors import ConfigError
from rlvr.interfaces import Positive, Score
from rlvr.scoring import Scorer

log = logging.getLogger(__name__)
_RESERVED = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
FAILED = "failed"


class RewardSuite:
    """Weighted reward functions from config.

    Args:
        functions: ``{name: reward}``, each built from its own ``_target_`` node (a reward class, or a plain
            function with ``_partial_: true``); the name is what gets logged. A function set to null is left out.
        weights: ``{name: weight}`` in the total reward; a function not named here weighs 1.
        conversational: names of functions written for TRL's conversational format
            (``completion[0]["content"]``, like ``trl.rewards.think_format_reward``): they get the completions as
            TRL has them instead of texts.
        timeout_s: seconds one call of a reward function may take before its samples are treated as failed.
        on_error: ``mask`` drops a failed sample from that reward (TRL's ``None``); ``zero`` scores it 0.
    """

    def __init__(
        self,
        functions: dict[str, Callable[..., list[float | None]] | None],
        weights: dict[str, float] = {},  # noqa: B006 - never mutated
        conversational: list[str] = [],  # noqa: B006
        timeout_s: Positive = 10.0,
        on_error: Literal["mask", "zero"] = "mask",
    ):
        self.functions = {name: fn for name, fn in functions.items() if fn is not None}
        if not self.functions:
            raise ConfigError("reward.functions is empty (or all null): configure at least one reward function.")
        for key, names in (("weights", list(weights)), ("conversational", list(conversational))):
            unknown = [n for n in names if n not in functions]
            if unknown:
                raise ConfigError(f"reward.{key} names {', '.join(unknown)}, which reward.functions does not have "
                                  f"(functions: {', '.join(functions)}).")
        for name, fn in self.functions.items():
            if not callable(fn):
                raise ConfigError(f"reward.functions.{name} needs a _target_: a reward class, or a function with "
                                  f"`_partial_: true` (got {fn!r}).")
        if timeout_s <= 0:
            raise ConfigError(f"reward.timeout_s must be positive, got {timeout_s}.")
        self.weights = {name: float(weights.get(name, 1.0)) for name in self.functions}
        self.conversational = set(conversational)
        self.timeout_s, self.on_error = timeout_s, on_error
        self.failures: Counter[str] = Counter()
        self.timeouts: Counter[str] = Counter()
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
            trl_args = {"prompts": prompts, "completions": completions, "completion_ids": completion_ids}
            values = suite.call(name, fn, texts, scores, scorer, columns, trl_args=trl_args)
            if log_metric is not None:
                log_metric(f"reward_failures/{name}", float(sum(v == FAILED for v in values)))
            return [None if v == FAILED and suite.on_error == "mask" else (0.0 if v == FAILED else v) for v in values]

        functools.update_wrapper(reward, fn if hasattr(fn, "__name__") else reward)
        reward.__name__ = name
        return reward

    def call(self, name: str, fn: Callable, texts: list[str], scores: list[Score], scorer: Scorer,
             columns: dict[str, Any], trl_args: dict[str, Any] | None = None) -> list[Any]:
        """Run ``fn`` on the batch; on error or timeout, sample by sample. Failed samples read ``"failed"``."""
        kwargs = dict(columns, scores=scores, answer_format=scorer.fmt, **{
            k: v for k, v in (trl_args or {}).items() if k != "completions"})
        completions = trl_args["completions"] if trl_args and name in self.conversational else texts
        kwargs = _accepted(fn, kwargs)
        deadline = time.monotonic() + self.timeout_s
        try:
            values = _Call(fn, completions, kwargs).result(deadline, self.timeout_s)
            out = _check(values, len(texts))
        except Exception as e:  # noqa: BLE001 - any reward bug must not stop training
            log.warning("reward '%s' failed on a batch of %d (%s: %s); retrying sample by sample",
                        name, len(texts), type(e).__name__, e)
            out = self._one_by_one(name, fn, completions, kwargs, len(texts))
        failed = sum(v == FAILED for v in out)
        if failed:
            self.failures[name] += failed
            log.warning("reward '%s': %d of %d samples failed and are %s", name, failed, len(out),
                        "masked" if self.on_error == "mask" else "scored 0")
        return out

    def _one_by_one(self, name: str, fn: Callable, completions: list[Any], kwargs: dict[str, Any], n: int) -> list:
        """Every sample in its own thread under one shared deadline, so one slow sample costs one timeout."""
        deadline = time.monotonic() + self.timeout_s
        calls = [_Call(fn, completions[i : i + 1], {k: (v[i : i + 1] if _per_sample(v, n) else v)
                                                     for k, v in kwargs.items()})
                 for i in range(n)]
        out: list[Any] = []
        for i, call in enumerate(calls):
            try:
                out.extend(_check(call.result(deadline, self.timeout_s), 1))
            except Exception as e:  # noqa: BLE001
                if isinstance(e, TimeoutError):
                    self.timeouts[name] += 1
                log.warning("reward '%s' failed on sample %d (%s: %s)", name, i, type(e).__name__, e)
                out.append(FAILED)
        return out


class _Call:
    """One call of a reward function in a daemon thread: a call that never returns is abandoned (Python
    cannot kill a thread) without holding up training or any later call."""

    def __init__(self, fn: Callable, completions: list[Any], kwargs: dict[str, Any]):
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, completions, kwargs), daemon=True,
                                        name="reward")
        self._thread.start()

    def _run(self, fn: Callable, completions: list[Any], kwargs: dict[str, Any]) -> None:
        try:
            self._value = fn(completions, **kwargs)
        except BaseException as e:  # noqa: BLE001 - even SystemExit from a user function is only a failure
            self._error = e

    def result(self, deadline: float, timeout_s: float) -> Any:
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            raise TimeoutError(f"took longer than reward.timeout_s={timeout_s}")
        if self._error is not None:
            if isinstance(self._error, Exception):
                raise self._error
            raise RuntimeError(f"{type(self._error).__name__}: {self._error}")
        return self._value


def _check(values: Any, n: int) -> list[Any]:
    """Floats or None, one per completion; a non-finite value marks that sample failed."""
    values = list(values)
    if len(values) != n:
        raise ValueError(f"returned {len(values)} values for {n} completions")
    out: list[Any] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        f = float(v)
        out.append(f if math.isfinite(f) else FAILED)
    return out


def _per_sample(value: Any, n: int) -> bool:
    return isinstance(value, list) and len(value) == n


def _accepted(fn: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    """All of ``kwargs`` for a function with ``**kwargs``; otherwise only those it names."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


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
