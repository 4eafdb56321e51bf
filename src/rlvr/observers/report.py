"""Writes the run's ``report.md`` (config, curves, baseline vs final, sample completions) and its plots into
the run directory when the pipeline ends, successful or not, and names them in the closing lines of the
console and log. Same as ``python -m rlvr.report_cli RUN_DIR``."""

from __future__ import annotations

import logging
from typing import Any

from rlvr.report import write_report

log = logging.getLogger(__name__)


class ReportObserver:
    """Args: filename: report file in the run directory; num_samples: questions whose completions are shown
    (those that changed verdict between baseline and final first)."""

    def __init__(self, filename: str = "report.md", num_samples: int = 4):
        self.filename, self.num_samples = filename, num_samples
        self.run_dir: str | None = None
        self.path: Any = None

    def on_pipeline_start(self, config: dict, run_dir: str, **_: Any) -> None:
        self.run_dir = run_dir

    def on_pipeline_end(self, status: str, error: BaseException | None = None, results: dict | None = None,
                        **_: Any) -> None:
        if self.run_dir is None:
            return
        self.path = write_report(self.run_dir, results=results, status=status, num_samples=self.num_samples,
                                 filename=self.filename)
        # Said here, not by the console observer: whatever the observers' order, the report exists by now.
        log.info("[rlvr] report: %s", self.path)
        plots = sorted((self.path.parent / "plots").glob("*.png"))
        if plots:
            log.info("[rlvr] plots: %s", ", ".join(str(p) for p in plots))
