"""Console output: a progress bar over training steps, one summary line per logging step, plain-words
warnings when a run cannot learn, and the before/after accuracy at the end."""

from __future__ import annotations

import sys
from typing import Any


class ConsoleObserver:
    """Args: every: print a summary line every N logging steps; warn_every: repeat a warning at most every N steps."""

    def __init__(self, every: int = 1, warn_every: int = 10):
        self.every, self.warn_every = every, warn_every
        self._bar: Any = None
        self._warned: dict[str, int] = {}
        self._logs = 0

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, flush=True)

    def on_pipeline_start(self, config: dict, run_dir: str, **_: Any) -> None:
        self._print(f"[rlvr] run directory: {run_dir}")

    def on_step_start(self, step_name: str, **_: Any) -> None:
        self._print(f"[rlvr] {step_name} ...")

    def on_step_end(self, step_name: str, output: dict, **_: Any) -> None:
        if step_name == "train" and self._bar is not None:
            self._bar.close()
            self._bar = None
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in output.items() if not isinstance(v, (dict, list)))
        if shown:
            self._print(f"[rlvr] {step_name} done: {shown}")

    def on_train_log(self, step: int, max_steps: int, metrics: dict, warnings: list[str], **_: Any) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=max_steps, desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)
        self._bar.update(step - self._bar.n)
        self._logs += 1
        if self._logs % self.every == 0:
            self._print(f"step {step}/{max_steps} | " + summary_line(metrics))
        for w in warnings:
            key = w[:40]
            if step - self._warned.get(key, -10**9) >= self.warn_every:
                self._warned[key] = step
                self._print(f"  WARNING: {w}")

    def on_evaluation(self, result: Any, **_: Any) -> None:
        where = f" (step {result.step})" if result.step is not None else ""
        self._print(
            f"[rlvr] eval {result.name}{where}: accuracy {result.accuracy:.1%} on n={result.n} | format "
            f"{result.format_rate:.0%} | parsed {result.parse_rate:.0%} | {result.mean_completion_tokens:.1f} tokens "
            f"| truncated {result.truncation_rate:.0%}"
            + "".join(f" | {k} {v:.1%}" for k, v in result.extra.items() if k.startswith(("pass@", "maj@")))
        )

    def on_pipeline_end(self, status: str, error: BaseException | None = None, results: dict | None = None,
                        **_: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        results = results or {}
        if status != "success":
            self._print(f"[rlvr] FAILED: {type(error).__name__}: {error}")
            return
        base, final = results.get("baseline"), results.get("final")
        if base and final:
            delta = final["accuracy"] - base["accuracy"]
            self._print(f"[rlvr] accuracy {base['accuracy']:.1%} -> {final['accuracy']:.1%} ({delta:+.1%}) on n={final['n']}")
        for name, path in results.get("artifacts", {}).items():
            self._print(f"[rlvr] {name}: {path}")


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
    if "loss" in m:
        parts.append(f"loss {m['loss']:.4f}")
    if "step_time" in m:
        parts.append(f"{m['step_time']:.1f}s")
    return " | ".join(parts)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
