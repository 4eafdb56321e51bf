"""The reward suite: builds the configured reward functions and adapts them to TRL's GRPOTrainer.

Each function becomes one TRL reward function (so TRL logs ``rewards/<name>/mean`` and applies the weight); the
suite hands them on with their weights, both by name (:class:`rlvr.interfaces.Rewards`). The suite scores each
batch once (shared extraction + verifier), logs parse/wrong/unparseable rates and reward failures per step, and
isolates failures. The rules, in plain words:

- Scoring is shared through a cache of the last batch scored, keyed on the batch's content (its completion texts
  and columns): the functions of one step, called one after another on the same completions, score them once,
  however the caller builds its lists (TRL hands every function the same list; PPO, or a test, may not).

- Reward functions and the shared scoring run in worker processes (``isolation: process``, see
  :mod:`rlvr.rewards.isolation`): each batch is one call, and a call that takes longer than ``timeout_s`` is
  killed with its worker, which is replaced, so a verifier stuck in a huge symbolic expression cannot hang
  training. ``isolation: thread`` runs them in threads of the training process instead, where a call that
  computes past ``timeout_s`` holding the interpreter lock cannot be stopped.
- A function (or the scorer) that cannot be sent to a worker (a lambda, a closure, a class defined inside a
  function: only what pickle can name travels) runs in the training process, in a thread, with one warning
  naming it. It still works; only a hang holding the interpreter lock is not cut off.
- A function that raises, returns garbage or exceeds ``timeout_s`` on a batch is retried sample by sample
  (concurrently on the workers, under one more ``timeout_s`` shared by the batch; with more hung samples than
  workers, samples waiting behind them fail too). The failing samples are masked (``None``) or scored 0, as
  ``on_error`` says; each failure is logged and counted (``reward_failures/<name>``).
- Scoring that exceeds ``timeout_s`` on a batch is retried the same way. A sample whose scoring still fails is
  failed for every function (masked or 0), counted in each function's ``reward_failures/<name>`` and in
  ``score/failed_rate``; the functions get a placeholder ``unparseable`` score for it.

Any callable works by ``_target_``: ours (``reward(completions, *, scores, answer_format, **columns)``) and a
plain TRL-style function ``f(completions, **kwargs)``. Every one gets the completion *texts*, the shared
``scores``, ``answer_format``, the dataset columns, ``prompts`` and ``completion_ids``; a function without
``**kwargs`` gets only the arguments it names. A function target is ``_partial_: true`` (bound with its
parameters, called per batch). A function written for TRL's conversational format (``completion[0]["content"]``,
like ``trl.rewards.think_format_reward``) is listed in ``reward.conversational`` and gets the completions as
TRL has them. A function may return a :class:`~rlvr.interfaces.RewardOutput` (its values and numbers about the
batch, logged each step as ``<name>/<key>``: a learned reward's ``verifier_disagreement``, for one).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import pickle
from collections import Counter
from typing import Any, Callable, Collection, Literal

from rlvr.errors import ConfigError
from rlvr.interfaces import AtLeastOne, Positive, RewardOutput, Rewards, Score
from rlvr.rewards.functions import StrictFormat
from rlvr.rewards.isolation import FAILED, SCORER, Processes, Threads
from rlvr.schema import checked
from rlvr.scoring import Scorer
from rlvr.scoring.completions import completion_text

log = logging.getLogger(__name__)
_RESERVED = {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
SCORE_FAILED = Score(None, "unparseable", 0.0)  # what the functions see for a sample whose scoring failed


@checked("reward")
class RewardSuite:
    """Weighted reward functions from config.

    Args:
        functions: ``{name: reward}``, each built from its own ``_target_`` node (a reward class, or a plain
            function with ``_partial_: true``); the name is what gets logged. A function set to null is left out.
        weights: ``{name: weight}`` in the total reward; a function not named here weighs 1.
        conversational: names of functions written for TRL's conversational format
            (``completion[0]["content"]``, like ``trl.rewards.think_format_reward``): they get the completions as
            TRL has them instead of texts.
        timeout_s: seconds one call (a batch of a reward function, or the scoring of a batch) may take before
            its samples are treated as failed. A new worker's first call also pays for the imports the functions
            and the verifier make then (reasoning-gym: about 1.5 s), so keep it well above that.
        on_error: ``mask`` drops a failed sample from that reward (TRL's ``None``); ``zero`` scores it 0.
        isolation: ``process`` runs reward functions and scoring in worker processes, where a call over
            ``timeout_s`` is killed; ``thread`` runs them in threads of the training process (a call over
            ``timeout_s`` is abandoned, which stops one that waits but not one that computes; the way to step
            through a reward in a debugger).
        workers: worker processes with ``isolation: process``. A batch takes one; a batch retried sample by
            sample spreads over all of them.
        control: a control run, to tell what the verifier teaches from what training teaches anyway (the format,
            the sampling, the step itself): ``random_reward`` gives every correctness function (``role:
            correctness``) a seeded coin flip for each completion instead of the scorer's verdict, at the batch's
            own accuracy, so the reward has the same mean and carries no information about correctness;
            ``format_only`` keeps only the format functions (``role: format``; without one, the prompt's exact
            format, :class:`rlvr.rewards.StrictFormat`). ``none``: the real reward. Evaluation is never affected.
        control_seed: seed of the coin flips (each one is a function of the seed, the step and the completion, so
            a resumed run flips the same coins).
    """

    def __init__(
        self,
        functions: dict[str, Callable[..., list[float | None]] | None],
        weights: dict[str, float] = {},  # noqa: B006 - never mutated
        conversational: list[str] = [],  # noqa: B006
        timeout_s: Positive = 10.0,
        on_error: Literal["mask", "zero"] = "mask",
        isolation: Literal["process", "thread"] = "process",
        workers: AtLeastOne = 2,
        control: Literal["none", "random_reward", "format_only"] = "none",
        control_seed: int = 0,
    ):
        self.functions = {name: fn for name, fn in functions.items() if fn is not None}
        self.control, self.control_seed = control, control_seed
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
        self.weights = {name: float(weights.get(name, 1.0)) for name in self.functions}
        if control == "format_only":
            self._keep_format_only()
        elif control == "random_reward":
            log.warning("control=random_reward: this is a control run; every correctness reward (%s) pays a seeded "
                        "coin flip at the batch's accuracy, not the verifier's verdict (evaluation is unchanged)",
                        ", ".join(n for n, fn in self.functions.items() if getattr(fn, "role", None) == "correctness")
                        or "none configured")
        elif control == "random_reward":
            left = [n for n, fn in self.functions.items() if getattr(fn, "role", None) is None]
            if left:
                log.warning("control=random_reward: reward %s says no role (rlvr.rewards.functions: correctness, "
                            "format or shaping), so it is kept as it is", ", ".join(left))
        self.conversational = set(conversational)
        self.timeout_s, self.on_error, self.isolation, self.workers = timeout_s, on_error, isolation, workers
        self.failures: Counter[str] = Counter()
        self.timeouts: Counter[str] = Counter()
        self.score_failures = 0
        self.metrics: dict[str, dict[str, float]] = {}  # per function: what its last batch reported (RewardOutput)
        self._cache: tuple[tuple[Any, ...], list[Score], set[int]] | None = None  # the last batch: key, scores, failed
        self._scorer: Scorer | None = None  # the scorer the runners below hold
        self._runners: dict[tuple[str, str], Threads | Processes] = {}
        self._pool: Processes | None = None

    def _keep_format_only(self) -> None:
        """``control=format_only``: the format functions alone (the prompt's exact format when none is set)."""
        dropped = [n for n, fn in self.functions.items() if getattr(fn, "role", None) != "format"]
        for name in dropped:
            del self.functions[name], self.weights[name]
        if not self.functions:
            self.functions, self.weights = {"format": StrictFormat()}, {"format": 1.0}
        log.warning("control=format_only: this is a control run; rewards %s (dropped %s)", ", ".join(self.functions),
                    ", ".join(dropped) or "none")

    def coin_flips(self, scores: list[Score], texts: list[str], step: int) -> list[Score]:
        """``control=random_reward``: each score's verdict replaced by a coin that comes up correct with the batch's
        own accuracy; seeded by the seed, the step, the completion's place in the batch and its text."""
        accuracy = sum(s.correct for s in scores) / max(len(scores), 1)
        out = []
        for i, (score, text) in enumerate(zip(scores, texts)):
            digest = hashlib.sha256(f"{self.control_seed}|{step}|{i}|{text}".encode()).digest()
            heads = int.from_bytes(digest[:8], "big") / 2**64 < accuracy
            out.append(Score(score.extracted, "correct" if heads else "wrong", 1.0 if heads else 0.0,
                             note="control=random_reward: a coin flip, not the verifier"))
        return out

    def scores(self, texts: list[str], columns: dict[str, Any], scorer: Scorer) -> tuple[list[Score], set[int]]:
        """The scores of a batch (completion ``texts`` and their rows' ``columns``) and the indices of those whose
        scoring failed: computed once per batch and shared by every function (and by the stats). The batch's
        content is the cache key, so a batch scored again, in lists built anew, is not scored twice."""
        key = (scorer, tuple(texts), repr(sorted(columns.items())))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, *self._score(texts, columns, scorer))
        return self._cache[1], self._cache[2]

    def _score(self, texts: list[str], columns: dict[str, Any], scorer: Scorer) -> tuple[list[Score], set[int]]:
        runner = self._runner(SCORER, scorer)
        try:
            return runner.run(("score", "", texts, columns), self.timeout_s), set()
        except Exception as e:  # noqa: BLE001 - a verifier that hangs or crashes must not stop training
            log.warning("scoring failed on a batch of %d (%s: %s); retrying sample by sample",
                        len(texts), type(e).__name__, e)
        n = len(texts)
        tasks = [("score", "", texts[i : i + 1], _sample(columns, i, n)) for i in range(n)]
        scores: list[Score] = []
        failed: set[int] = set()
        for i, result in enumerate(runner.run_each(tasks, self.timeout_s)):
            if isinstance(result, BaseException):
                log.warning("scoring failed on sample %d (%s: %s)", i, type(result).__name__, result)
                failed.add(i)
                scores.append(SCORE_FAILED)
            else:
                scores.extend(result)
        if failed:
            self.score_failures += len(failed)
            log.warning("scoring: %d of %d samples failed and are %s in every reward", len(failed), n,
                        "masked" if self.on_error == "mask" else "scored 0")
        return scores, failed

    def trl_functions(self, scorer: Scorer) -> Rewards:
        """One TRL-compatible reward function per configured function, and their weights, by name."""
        functions = {name: self._adapt(name, fn, scorer, log_stats=i == 0)
                     for i, (name, fn) in enumerate(self.functions.items())}
        return Rewards(functions, dict(self.weights))

    def _adapt(self, name: str, fn: Callable, scorer: Scorer, log_stats: bool) -> Callable:
        suite = self

        def reward(prompts, completions, completion_ids=None, **kwargs):  # TRL calls with keywords
            texts = [completion_text(c) for c in completions]
            log_metric = kwargs.get("log_metric")
            columns = {k: v for k, v in kwargs.items() if k not in _RESERVED}
            scores, failed = suite.scores(texts, columns, scorer)
            if log_stats and log_metric is not None:
                for key, value in score_stats(scores, failed).items():
                    log_metric(key, value)
            trl_args = {"prompts": prompts, "completions": completions, "completion_ids": completion_ids}
            step = getattr(kwargs.get("trainer_state"), "global_step", 0)
            values = suite.call(name, texts, scores, scorer, columns, trl_args=trl_args, failed=failed, step=step)
            if log_metric is not None:
                log_metric(f"reward_failures/{name}", float(sum(v == FAILED for v in values)))
                for key, value in suite.metrics.pop(name, {}).items():
                    log_metric(f"{name}/{key}", value)
            return [None if v == FAILED and suite.on_error == "mask" else (0.0 if v == FAILED else v) for v in values]

        functools.update_wrapper(reward, fn if hasattr(fn, "__name__") else reward)
        reward.__name__ = name
        return reward

    def call(self, name: str, texts: list[str], scores: list[Score], scorer: Scorer, columns: dict[str, Any],
             trl_args: dict[str, Any] | None = None, failed: Collection[int] = (), step: int = 0) -> list[Any]:
        """Run function ``name`` on the batch; on error or timeout, sample by sample. Failed samples, and those
        in ``failed`` (their scoring failed), read ``"failed"``. Under ``control=random_reward`` a correctness
        function sees coin flips (:meth:`coin_flips`, ``step`` seeds them) instead of the scorer's verdicts. What a
        function reports about the batch (:class:`~rlvr.interfaces.RewardOutput`'s metrics) waits in
        ``metrics[name]`` to be logged."""
        fn = self.functions[name]
        if self.control == "random_reward" and getattr(fn, "role", None) == "correctness":
            scores = self.coin_flips(scores, texts, step)
        kwargs = dict(columns, scores=scores, answer_format=scorer.fmt, **{
            k: v for k, v in (trl_args or {}).items() if k != "completions"})
        completions = trl_args["completions"] if trl_args and name in self.conversational else texts
        kwargs = _accepted(fn, kwargs)
        runner = self._runner(("reward", name), scorer)
        try:
            out = runner.run(("reward", name, completions, kwargs), self.timeout_s)
        except Exception as e:  # noqa: BLE001 - any reward bug must not stop training
            log.warning("reward '%s' failed on a batch of %d (%s: %s); retrying sample by sample",
                        name, len(texts), type(e).__name__, e)
            out = self._one_by_one(name, runner, completions, kwargs, len(texts))
        if isinstance(out, RewardOutput):  # values, and numbers about the batch to log
            self.metrics[name] = out.metrics
            out = out.values
        out = [FAILED if i in failed else v for i, v in enumerate(out)]
        n_failed = sum(v == FAILED for v in out)
        if n_failed:
            self.failures[name] += n_failed
            log.warning("reward '%s': %d of %d samples failed and are %s", name, n_failed, len(out),
                        "masked" if self.on_error == "mask" else "scored 0")
        return out

    def _one_by_one(self, name: str, runner: Threads | Processes, completions: list[Any], kwargs: dict[str, Any],
                    n: int) -> list[Any]:
        """Every sample in its own call, all under one shared deadline, so one slow sample costs one timeout."""
        tasks = [("reward", name, completions[i : i + 1], _sample(kwargs, i, n)) for i in range(n)]
        out: list[Any] = []
        for i, result in enumerate(runner.run_each(tasks, self.timeout_s)):
            if isinstance(result, BaseException):
                if isinstance(result, TimeoutError):
                    self.timeouts[name] += 1
                log.warning("reward '%s' failed on sample %d (%s: %s)", name, i, type(result).__name__, result)
                out.append(FAILED)
            else:
                out.extend(result.values if isinstance(result, RewardOutput) else result)
        return out

    def _runner(self, key: tuple[str, str], scorer: Scorer) -> Threads | Processes:
        """Where the task ``key`` runs; the first call with a scorer starts the workers (and a new scorer,
        new workers holding it)."""
        if self._scorer is not scorer:
            self.close()
            self._start(scorer)
        return self._runners[key]

    def _start(self, scorer: Scorer) -> None:
        objects: dict[tuple[str, str], Any] = {("reward", n): fn for n, fn in self.functions.items()}
        objects[SCORER] = scorer
        threads = Threads(objects)
        self._runners, self._scorer = dict.fromkeys(objects, threads), scorer
        if self.isolation == "thread":
            return
        portable: dict[tuple[str, str], bytes] = {}
        for key, obj in objects.items():
            try:
                portable[key] = pickle.dumps(obj)
            except Exception as e:  # noqa: BLE001 - pickle raises several types
                _in_process(key, f"it cannot be pickled ({type(e).__name__}: {e})")
        if not portable:
            return
        pool = Processes(portable, self.workers, fallback=threads)
        try:
            unloadable = pool.start()
        except Exception as e:  # noqa: BLE001 - e.g. no child processes allowed here
            log.warning("reward worker processes could not be started (%s: %s): reward functions and scoring run "
                        "in threads of the training process, where a call that hangs holding the interpreter lock "
                        "cannot be stopped", type(e).__name__, e)
            return
        self._pool = pool
        for key in portable:
            if key in unloadable:
                _in_process(key, f"a worker process cannot load it ({unloadable[key]})")
            else:
                self._runners[key] = pool

    def close(self) -> None:
        """Stop the worker processes (and wait until they are gone); a later call starts new ones."""
        if self._pool is not None:
            self._pool.close()
        self._pool, self._scorer, self._runners = None, None, {}


def _in_process(key: tuple[str, str], why: str) -> None:
    what = "the scorer (extraction + verifier)" if key == SCORER else f"reward '{key[1]}'"
    log.warning("%s runs in the training process: %s. It works, but a call that hangs holding the interpreter "
                "lock cannot be stopped by reward.timeout_s; define it at module level (a function or class "
                "importable by name) to run it in a worker process.", what, why)


def _sample(values: dict[str, Any], i: int, n: int) -> dict[str, Any]:
    """Sample ``i``'s share of per-sample arguments (lists of length ``n``); the others as they are."""
    return {k: (v[i : i + 1] if _per_sample(v, n) else v) for k, v in values.items()}


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


def score_stats(scores: list[Score], failed: Collection[int] = ()) -> dict[str, float]:
    """Per-batch rates: correct, wrong, unparseable (the prompt/extractor disagreement signal), bad gold, and
    failed (scoring that hung or crashed, ``failed`` holds their indices: none of the others)."""
    n = max(len(scores), 1)
    counts = Counter(s.status for i, s in enumerate(scores) if i not in failed)
    return {
        "score/accuracy": counts["correct"] / n,
        "score/parse_rate": 1 - (counts["unparseable"] + len(failed)) / n,
        "score/wrong_rate": counts["wrong"] / n,
        "score/unparseable_rate": counts["unparseable"] / n,
        "score/bad_gold_rate": counts["bad_gold"] / n,
        "score/failed_rate": len(failed) / n,
    }
