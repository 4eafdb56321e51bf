"""Observer events and the dispatcher that delivers them.

An observer is any object with some of these methods (all optional, all keyword arguments):

- ``on_pipeline_start(config: dict, run_dir: str)``
- ``on_stage_start(stage: str)`` / ``on_stage_end(stage: str, output: dict)`` around each pipeline stage
  (``setup``, ``data``, ``model``, ``rewards``, ``baseline_eval``, ``train``, ``final_eval``, ``save``; with
  ``pipeline.stages``, ``train:<name>`` and ``eval:<name>`` for each training stage in place of the last two)
- ``on_train_log(step: int, max_steps: int, metrics: dict, warnings: list[str], stage: str)`` at every logging
  step of training (``step`` is the optimizer step, counted on across stages; ``stage`` the stage's name)
- ``on_evaluation(result: EvalResult)`` baseline, during training and final
- ``on_pipeline_end(status: "success" | "failed" | "stopped", error: BaseException | None, results: dict)``
  (``stopped``: a signal or ``train.on_nonfinite_loss=stop`` ended the run after a checkpoint; ``error`` is None)

Observers watch; they never change control flow. One that raises is disabled with a warning, not fatal.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

EVENTS = ("on_pipeline_start", "on_stage_start", "on_stage_end", "on_train_log", "on_evaluation", "on_pipeline_end")


class Observers:
    """Delivers each event to every observer that defines it."""

    def __init__(self, observers: list[Any]):
        self.observers = list(observers)
        self.disabled: list[tuple[Any, BaseException]] = []

    def notify(self, event: str, **payload: Any) -> None:
        if event not in EVENTS:
            raise ValueError(f"Unknown event {event!r}; events are {EVENTS}")
        for obs in list(self.observers):
            hook = getattr(obs, event, None)
            if hook is None:
                continue
            try:
                hook(**payload)
            except Exception as e:  # noqa: BLE001 - a broken observer must not break training
                log.warning("Observer %s raised in %s (%s: %s); it is disabled for the rest of the run",
                            type(obs).__name__, event, type(e).__name__, e)
                self.observers.remove(obs)
                self.disabled.append((obs, e))
