"""Evaluation: held-out accuracy and completion statistics, with the training scorer; pairwise accuracy of a
reward model; best-of-N reranking by a learned scorer; the regression gate that compares two evaluations."""

from rlvr.evaluation.best_of_n import BestOfNEvaluator
from rlvr.evaluation.evaluator import Evaluator
from rlvr.evaluation.gate import RegressionGate
from rlvr.evaluation.pairwise import PairwiseEvaluator

__all__ = ["BestOfNEvaluator", "Evaluator", "PairwiseEvaluator", "RegressionGate"]
