"""Data components: each builds training and held-out rows and owns the verifier for its rows."""

from rlvr.data.prompts import AnswerFormat, PromptTemplate
from rlvr.data.reasoning_gym import ReasoningGymData

__all__ = ["AnswerFormat", "PromptTemplate", "ReasoningGymData"]
