"""The run context: what the stages of one run share (where it writes, its seed, what it has measured so far,
and how it tells observers). Stages get it, plus the outputs of earlier stages, as arguments."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.config.secrets import scrub
from rlvr.errors import DiskFull, no_space
from rlvr.files import write_atomic
from rlvr.interfaces import EvalResult
from rlvr.observers import Observers
from rlvr.orchestration.results import Results, samples_path


@dataclass
class RunContext:
    """One run: ``run_dir``, ``seed``, ``results`` (what ``results.json`` holds) and the observers. Under a
    launcher every rank has one, and only the main one (rank 0) writes files and tells observers."""

    run_dir: Path
    seed: int
    observers: Observers
    results: Results
    started: float = field(default_factory=time.time)
    main: bool = True
    secrets: list[str] = field(default_factory=list)  # never written: replaced by <redacted> (rlvr.config.secrets)

    def emit(self, event: str, **payload: Any) -> None:
        if self.main:
            self.observers.notify(event, **payload)

    def write(self, path: Path, text: str) -> None:
        """Write a file of the run (atomically, secrets scrubbed), on the main rank only. A full disk raises
        :class:`DiskFull`, the file as it was before left intact."""
        if not self.main:
            return
        try:
            write_atomic(path, scrub(text, self.secrets))
        except OSError as e:
            if not no_space(e):
                raise
            kept = f"the previous {path.name} is intact" if path.exists() else "no half-written file is left"
            raise DiskFull(e.errno, f"The disk is full ({e.strerror}): {path.name} could not be written in "
                                    f"{path.parent}; {kept}. Free some space and rerun the same command to "
                                    "resume.") from e

    def record_evaluation(self, result: EvalResult, stage_dir: Path | None = None) -> None:
        """Keep an evaluation in the results, its samples in ``samples_<name>.jsonl``, and tell observers. The
        run's own (``baseline``, ``final``, ``eval``) and those during training go into the results; a stage's
        evaluation goes into its directory (``stage_dir``), and the stage's record keeps its summary."""
        summary = result.summary()
        if result.name == "baseline":
            self.results.baseline = summary
        elif result.name == "final":
            self.results.final = summary
        elif result.name == "eval":
            self.results.eval = summary
        elif stage_dir is None:
            self.results.during_training.append(summary)
        lines = "".join(json.dumps(s, default=str) + "\n" for s in result.samples)
        self.write(samples_path(stage_dir or self.run_dir, result.name), lines)
        self.emit("on_evaluation", result=result)
        self.write_results()

    def write_results(self) -> Path:
        """``results.json``, rewritten whole and atomically (a kill never leaves half a file)."""
        self.results.run.wall_time_s = round(time.time() - self.started, 1)
        path = self.run_dir / "results.json"
        self.write(path, json.dumps(self.results.to_json(), indent=2, default=str))
        return path


def record_failure(run_dir: Path, error: BaseException) -> str:
    """Mark a job that raised as failed in its ``results.json`` (keeping what the pipeline measured), with its
    error line and traceback; returns the error line. A sweep records a failed job this way and goes on."""
    import traceback

    line = (str(error).strip().splitlines() or [""])[0]
    line = f"{type(error).__name__}: {line}" if line else type(error).__name__
    path = run_dir / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault("run", {}).update(status="failed", error=line, traceback="".join(
        traceback.format_exception(type(error), error, error.__traceback__)))
    write_atomic(path, json.dumps(results, indent=2, default=str))
    return line

