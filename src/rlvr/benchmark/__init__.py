"""Benchmark: models x tasks on fixed held-out sets, in parallel across GPUs. Run ``python -m rlvr.benchmark``."""

from rlvr.benchmark.models import ModelSource, load_model, resolve_model
from rlvr.benchmark.runner import (
           Benchmark,
           Job,
           work_units,
           worker_devices,
           write_summary,
)

__all__ = ["Benchmark", "Job", "ModelSource", "load_model", "resolve_model", "work_units", "worker_devices",
           "write_summary"]
