"""Writes the run's ``report.md`` (config, curves, baseline vs final, sample completions) and its plots into
the run directory when the pipeline ends, successful or not. Same as ``python -m rlvr.report RUN_DIR``."""

from __future__ import annotations

from typing import Any


class ReportObserver:
    """Args: filename: report file in the run directory; num_samples: completions shown per evaluation."""

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
        from rlvr.report import write_report

        self.path = write_report(self.run_dir, results=results, status=status, num_samples=self.num_samples,
                                 filename=self.filename)
