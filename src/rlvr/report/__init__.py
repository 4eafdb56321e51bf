"""Reports and plots: a per-run ``report.md`` (``python -m rlvr.report RUN_DIR``) and the benchmark chart."""

from rlvr.report.plots import plot_benchmark, plot_training_curves
from rlvr.report.run_report import write_report

__all__ = ["plot_benchmark", "plot_training_curves", "write_report"]
