"""Evaluation: held-out accuracy and completion statistics, with the training scorer; the regression gate that
compares two evaluations."""

from rlvr.evaluation.evaluator import Evaluator
from rlvr.evaluation.gate import RegressionGate

__all__ = ["Evaluator", "RegressionGate"]
