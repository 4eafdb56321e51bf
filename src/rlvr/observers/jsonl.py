"""Every event as one JSON line in the run directory (``metrics.jsonl``): training logs, evaluations, stages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class JsonlObserver:
    """Args: filename: file name inside the run directory."""

    def __init__(self, filename: str = "metrics.jsonl"):
        self.filename = filename
        self._file: Any = None
        self.path: Path | None = None

    def _write(self, record: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps({"time": time.time(), **record}, default=str) + "\n")
            self._file.flush()

    def on_pipeline_start(self, config: dict, run_dir: str, **_: Any) -> None:
        self.path = Path(run_dir) / self.filename
        self._file = self.path.open("a")
        self._write({"event": "pipeline_start"})

    def on_stage_end(self, stage: str, output: dict, **_: Any) -> None:
        self._write({"event": "stage_end", "stage": stage, **output})

    def on_step_end(self, step_name: str, output: dict, **_: Any) -> None:
        """The orchestrator's former name for ``on_stage_end``."""
        self.on_stage_end(stage=step_name, output=output)

    def on_train_log(self, step: int, max_steps: int, metrics: dict, warnings: list[str], **_: Any) -> None:
        self._write({"event": "train", "step": step, **metrics, **({"warnings": warnings} if warnings else {})})

    def on_evaluation(self, result: Any, **_: Any) -> None:
        self._write({"event": "eval", **result.summary()})

    def on_pipeline_end(self, status: str, error: BaseException | None = None, **_: Any) -> None:
        self._write({"event": "pipeline_end", "status": status, "error": repr(error) if error else None})
        if self._file is not None:
            self._file.close()
            self._file = None
