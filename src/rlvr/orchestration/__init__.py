"""Orchestration: the PipelineOrchestrator, its run context and typed results, lifecycle, stages and resume."""

from rlvr.orchestration.context import RunContext, record_failure, write_atomic
from rlvr.orchestration.orchestrator import PipelineOrchestrator, build_pipeline
from rlvr.orchestration.results import Results, StageRecord
from rlvr.orchestration.stages import StagePlan

__all__ = ["PipelineOrchestrator", "Results", "RunContext", "StagePlan", "StageRecord", "build_pipeline",
           "record_failure", "write_atomic"]
