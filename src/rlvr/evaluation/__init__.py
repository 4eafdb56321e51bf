"""Evaluation: held-out accuracy and completion statistics, with the training scorer."""

from rlvr.evaluation.evaluator import Evaluator

__all__ = ["Evaluator"]
