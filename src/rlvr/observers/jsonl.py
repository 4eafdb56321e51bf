"""Every event as one JSON line in the run directory (``metrics.jsonl``): training logs, evaluations, stages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

AGAIN = ("final", "eval")  # evaluations a resumed run always does again (a finished run is not resumed)


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

    def on_pipeline_start(self, config: dict, run_dir: str, resume_step: int | None = None, **_: Any) -> None:
        """A fresh run starts the file; a resumed one first cuts it back to ``resume_step`` (the checkpoint's
        step), so every training step appears once."""
        self.path = Path(run_dir) / self.filename
        if resume_step is not None and self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines() if _keep(line, resume_step)]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a" if resume_step is not None else "w")
        self._write({"event": "pipeline_start", "resume_step": resume_step})

    def on_stage_end(self, stage: str, output: dict, **_: Any) -> None:
        self._write({"event": "stage_end", "stage": stage, **output})

    def on_train_log(self, step: int, max_steps: int, metrics: dict, warnings: list[str], stage: str | None = None,
                     **_: Any) -> None:
        self._write({"event": "train", "step": step, **({"stage": stage} if stage else {}), **metrics,
                     **({"warnings": warnings} if warnings else {})})

    def on_evaluation(self, result: Any, **_: Any) -> None:
        self._write({"event": "eval", **result.summary()})

    def on_pipeline_end(self, status: str, error: BaseException | None = None, **_: Any) -> None:
        self._write({"event": "pipeline_end", "status": status, "error": repr(error) if error else None})
        if self._file is not None:
            self._file.close()
            self._file = None


def _keep(line: str, resume_step: int) -> bool:
    """A record of the interrupted run that a resume from ``resume_step`` keeps: everything up to that step,
    except the closing evaluation (``final``, or ``eval`` of an evaluation-only run), which the resumed run does
    again (a torn last line is dropped too)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    step = record.get("step")
    if record.get("event") == "eval" and record.get("name") in AGAIN:
        return False
    return not (record.get("event") in ("train", "eval") and step is not None and step > resume_step)
