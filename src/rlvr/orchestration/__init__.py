"""Orchestration: the PipelineOrchestrator, its run context and lifecycle."""

from rlvr.orchestration.context import RunContext, write_atomic
from rlvr.orchestration.orchestrator import PipelineOrchestrator, build_pipeline

__all__ = ["PipelineOrchestrator", "RunContext", "build_pipeline", "write_atomic"]
