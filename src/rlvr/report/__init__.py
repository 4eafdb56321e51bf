"""Reports and plots: a per-run ``report.md`` (``python -m rlvr.report_cli RUN_DIR``), and the summary of a sweep
(the benchmark's table and chart) written by a Hydra callback."""

from rlvr.report.plots import plot_benchmark, plot_training_curves
from rlvr.report.run_report import write_report
from rlvr.report.sweep import SweepSummary, summarize, write_summary

__all__ = ["SweepSummary", "plot_benchmark", "plot_training_curves", "summarize", "write_report", "write_summary"]
