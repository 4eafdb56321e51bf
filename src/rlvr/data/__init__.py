"""Data components: each builds training and held-out rows and owns the verifier for its rows."""

from rlvr.data.finqa import FinQAData
from rlvr.data.prompts import PromptTemplate
from rlvr.data.qa import QAData
from rlvr.data.reasoning_gym import ReasoningGymData

__all__ = ["FinQAData", "PromptTemplate", "QAData", "ReasoningGymData"]
