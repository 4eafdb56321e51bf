"""Console output: a progress bar over training steps, one summary line per logging step, plain-words
warnings when a run cannot learn, and the before/after accuracy at the end.

Lines go through the ``rlvr`` logger (INFO, WARNING for the diagnoses), so the run's log file holds what the
console shows; ``hydra/job_logging=rlvr`` prints them as they are on the console (through :class:`TqdmHandler`,
which keeps the progress bar whole) and with timestamps in ``run_pipeline.log``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from tqdm.auto import tqdm

from rlvr.interfaces import PREFERENCE_ACCURACY, PREFERENCE_MARGIN

log = logging.getLogger(__name__)


class TqdmHandler(logging.StreamHandler):
    """A console log handler that writes through ``tqdm.write``: a progress bar on screen is cleared, the line
    printed, and the bar drawn again below it, instead of the line landing in the middle of the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)


class ConsoleObserver:
    """Args: every: print a summary line every N logging steps; warn_every: repeat a warning at most every N steps."""

    def __init__(self, every: int = 1, warn_every: int = 10):
        self.every, self.warn_every = every, warn_every
        self._bar: Any = None
        self._warned: dict[str, int] = {}
        self._logs = 0

    def on_pipeline_start(self, config: dict, run_dir: str, **_: Any) -> None:
        _show_when_unconfigured()
        log.info("[rlvr] run directory: %s", run_dir)

    def on_stage_start(self, stage: str, **_: Any) -> None:
        log.info("[rlvr] %s ...", stage)
        if stage.split(":")[0] == "train":  # "train", or "train:<name>" for each of pipeline.stages
            # Opened now, not at the first log: its clock then starts with the first step, so the rate it shows
            # is the real time per step (a bar opened at the first log would show thousands of steps per second).
            self._open_bar()

    def on_stage_end(self, stage: str, output: dict, **_: Any) -> None:
        if stage.split(":")[0] == "train":
            self._close_bar()
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in output.items() if not isinstance(v, (dict, list)))
        if shown:
            log.info("[rlvr] %s done: %s", stage, shown)


    def on_train_log(self, step: int, max_steps: int, metrics: dict, warnings: list[str], **_: Any) -> None:
        if self._bar is None:  # a training loop run without the stage events (a test, a notebook)
            self._open_bar()
        if self._bar.total != max_steps:
            self._bar.total = max_steps
            self._bar.refresh()
        self._bar.update(step - self._bar.n)
        self._logs += 1
        if self._logs % self.every == 0:
            log.info("step %d/%d | %s", step, max_steps, summary_line(metrics))
        for w in warnings:
            key = w[:40]
            if step - self._warned.get(key, -10**9) >= self.warn_every:
                self._warned[key] = step
                log.warning("  WARNING: %s", w)

    def on_evaluation(self, result: Any, **_: Any) -> None:
        where = f" (step {result.step})" if result.step is not None else ""
        if "pairwise_margin" in result.extra:  # a reward model, on held-out preference pairs
            log.info(f"[rlvr] eval {result.name}{where}: pairwise accuracy {result.accuracy:.1%} on n={result.n} "
                     f"pairs | mean margin {result.extra['pairwise_margin']:.3f}")
            return
        log.info(
            f"[rlvr] eval {result.name}{where}: accuracy {result.accuracy:.1%} on n={result.n} | format "
            f"{result.format_rate:.0%} | parsed {result.parse_rate:.0%} | {result.mean_completion_tokens:.1f} tokens "
            f"| truncated {result.truncation_rate:.0%}"
            + "".join(f" | {k} {v:.1%}" for k, v in result.extra.items()
                      if k.startswith(("pass@", "maj@", "best_of_")))
            + "".join(f" | {level} {v:.1%}" for level, v in result.per_level.items())
        )

    def on_pipeline_end(self, status: str, error: BaseException | None = None, results: dict | None = None,
                        **_: Any) -> None:
        self._close_bar()
        results = results or {}
        if status == "stopped":  # not a failure: the entry point says where it stopped and how to resume
            return
        if status != "success":
            log.error("[rlvr] FAILED: %s: %s", type(error).__name__, error)
            return
        base, final = results.get("baseline"), results.get("final")
        if base and final:
            delta = final["accuracy"] - base["accuracy"]
            log.info(f"[rlvr] accuracy {base['accuracy']:.1%} -> {final['accuracy']:.1%} ({100 * delta:+.1f} points) "
                     f"on n={final['n']}")
        for name, path in results.get("artifacts", {}).items():
            log.info("[rlvr] %s: %s", name, path)

    def _open_bar(self) -> None:
        """A bar over training steps on stderr; its total (max_steps) comes with the first log."""
        self._close_bar()
        self._bar = tqdm(desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _show_when_unconfigured() -> None:
    """Outside a Hydra app (a script, a notebook) nobody configured logging and INFO lines would be dropped:
    give the ``rlvr`` logger a plain console handler then. Configured logging (Hydra's, pytest's) is left alone."""
    package = logging.getLogger("rlvr")
    if not package.hasHandlers():
        handler = TqdmHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        package.addHandler(handler)
        if package.level == logging.NOTSET:
            package.setLevel(logging.INFO)


def summary_line(m: dict[str, float]) -> str:
    parts = []
    if "reward" in m:
        parts.append(f"reward {m['reward']:.3f}±{m.get('reward_std', 0):.2f}")
    if "score/accuracy" in m:
        parts.append(f"acc {m['score/accuracy']:.0%}")
    if "score/parse_rate" in m:
        parts.append(f"parsed {m['score/parse_rate']:.0%}")
    if "completions/mean_length" in m:
        parts.append(f"len {m['completions/mean_length']:.0f}")
    if "completions/clipped_ratio" in m:
        parts.append(f"cut {m['completions/clipped_ratio']:.0%}")
    if "frac_reward_zero_std" in m:
        parts.append(f"flat groups {m['frac_reward_zero_std']:.0%}")
    levels = {k.removeprefix("curriculum/level/"): v for k, v in m.items() if k.startswith("curriculum/level/")}
    if levels:  # a curriculum: each task's level now
        parts.append("level " + ", ".join(f"{task} {v:g}" for task, v in levels.items()))
    if "flat_prompts/skipped" in m:
        parts.append(f"skipped prompts {m['flat_prompts/skipped']:.0f}")
    if "loss" in m:
        parts.append(f"loss {m['loss']:.4f}")
    margin = next((m[k] for k in PREFERENCE_MARGIN if k in m), None)  # preference training
    if margin is not None:
        parts.append(f"margin {margin:.3f}")
    ranked = next((m[k] for k in PREFERENCE_ACCURACY if k in m), None)
    if ranked is not None:
        parts.append(f"pref acc {ranked:.0%}")
    elif "mean_token_accuracy" in m:  # supervised fine-tuning
        parts.append(f"token acc {m['mean_token_accuracy']:.0%}")
    if "step_time" in m:
        parts.append(f"{m['step_time']:.1f}s")
    return " | ".join(parts)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
