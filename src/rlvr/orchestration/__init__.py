"""Orchestration: the PipelineOrchestrator and its lifecycle."""

from rlvr.orchestration.orchestrator import PipelineOrchestrator, build

__all__ = ["PipelineOrchestrator", "build"]
