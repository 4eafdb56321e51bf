"""Benchmark: models x tasks on fixed held-out sets, as a Hydra multirun of the evaluation-only pipeline.
Run ``python -m rlvr.benchmark`` (see ``conf/benchmark.yaml``)."""

from rlvr.benchmark.jobs import Model, Task, find, job_config, models, tasks
from rlvr.benchmark.runner import main, run_job, sweep_overrides

__all__ = ["Model", "Task", "find", "job_config", "main", "models", "run_job", "sweep_overrides", "tasks"]
