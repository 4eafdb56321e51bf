"""Orchestration: the PipelineOrchestrator, its run context, lifecycle and stages."""

from rlvr.orchestration.context import RunContext, record_failure, write_atomic
from rlvr.orchestration.orchestrator import PipelineOrchestrator, build_pipeline
from rlvr.orchestration.stages import StagePlan

__all__ = ["PipelineOrchestrator", "RunContext", "StagePlan", "build_pipeline", "record_failure", "write_atomic"]
